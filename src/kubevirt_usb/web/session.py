"""Who is using the UI: sign-in sessions (standalone mode), the identity behind each request, and
the CSRF tokens that tie every state change to it.

A session lives in server memory; the browser only holds its random id in a cookie, never the
token. Behind OpenShift's oauth-proxy there is no session: the proxy hands each request the
user's token (X-Forwarded-Access-Token), and the CSRF token is keyed by that token, so every
replica of the UI agrees on it and nobody without the token can make one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Identity:
    """The user behind one request: their token and the CSRF token their changes must carry."""

    token: str
    csrf: str
    session_id: str | None = None
    user: str = ""


@dataclass
class Session:
    id: str
    token: str
    user: str
    created: float
    last_seen: float


@dataclass
class SessionStore:
    """Sign-in sessions in memory, ended after `idle_timeout` unused or `max_age` in all."""

    clock: Clock
    idle_timeout: float = 8 * 3600.0
    max_age: float = 12 * 3600.0
    _sessions: dict[str, Session] = field(default_factory=dict)

    def create(self, *, token: str, user: str) -> Session:
        self._expire()
        now = self.clock()
        session = Session(id=secrets.token_urlsafe(32), token=token, user=user, created=now,
                          last_seen=now)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str, *, touch: bool = True) -> Session | None:
        """The live session with this id, or None; a request marks it used (`touch`), a check
        made on the user's behalf (an open live page asking whether they are still signed in)
        does not, so that it cannot keep an idle session alive."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_timeout or now - session.created > self.max_age:
            self._sessions.pop(session_id, None)
            return None
        if touch:
            session.last_seen = now
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        for session_id in list(self._sessions):
            self.get(session_id, touch=False)

    def __len__(self) -> int:
        return len(self._sessions)


def identity_for_session(session: Session, *, secret: bytes) -> Identity:
    """The identity of a signed-in session; its CSRF token is bound to the session."""
    return Identity(token=session.token, csrf=csrf_token(secret, f"session:{session.id}"),
                    session_id=session.id, user=session.user)


def identity_for_proxy_token(token: str, *, user: str = "") -> Identity:
    """The identity of a request that oauth-proxy authenticated (no session of our own)."""
    return Identity(token=token, csrf=csrf_token(token.encode(), "kubevirt-usb-csrf"), user=user)


def csrf_token(key: bytes, binding: str) -> str:
    """The CSRF token for everything done under `binding`, keyed by `key`."""
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def csrf_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected, presented or "")
