"""The seam to mount more API groups on the API emulator (the virt-api emulator serves
`subresources.kubevirt.io` through it).

An extension gets an `APIContext`: read access to stored objects and the emulator's authorizer,
exactly what an aggregated API server gets from the real kube-apiserver (the object store through
its own client, the user from `X-Remote-User`/`X-Remote-Group`). Both are coroutines: behind a real
kube-apiserver (sandbox/aggregated.py) they are a GET and a SubjectAccessReview over the network.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.routing import BaseRoute

from kubevirt_usb.apiserver.auth import UserInfo


class APIContext(Protocol):
    async def get_object(
        self, *, group: str, resource: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """The stored object as a client would read it, or None."""
        ...

    async def is_allowed(
        self,
        *,
        user: UserInfo,
        verb: str,
        group: str,
        resource: str,
        subresource: str = "",
        namespace: str = "",
        name: str = "",
    ) -> bool:
        """What the emulator's RBAC authorizer decides for this request."""
        ...


class Extension(Protocol):
    """An API group served beside the built-in ones.

    The emulator authenticates every request (HTTP and websocket) before it reaches an extension's
    routes and puts the `UserInfo` in `scope["state"]["user"]`; the extension authorizes itself.
    """

    group: str
    version: str

    def api_resources(self) -> list[dict[str, Any]]:
        """The `resources` of this group/version's `APIResourceList` for discovery."""
        ...

    def routes(self, context: APIContext) -> list[BaseRoute]:
        """Starlette routes, with full paths (`/apis/<group>/<version>/...`)."""
        ...
