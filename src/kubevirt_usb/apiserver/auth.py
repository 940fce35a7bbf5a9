"""Who is asking: bearer tokens to users, as the API emulator's authenticator sees them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class UserInfo:
    """An authenticated user, as a real kube-apiserver's authenticator hands it to authorization."""

    name: str
    groups: tuple[str, ...] = field(default=())
    uid: str = ""

    @classmethod
    def service_account(cls, *, namespace: str, name: str) -> UserInfo:
        return cls(
            name=f"system:serviceaccount:{namespace}:{name}",
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                    "system:authenticated"),
        )


ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))
