"""How the web UI behaves: how users sign in, sessions and cookies, the namespace it opens on.
(Where the API server is comes separately, as the `UserAPI` pool.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMode = Literal["login", "proxy"]


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """`auth="proxy"`: behind OpenShift's oauth-proxy, which sets X-Forwarded-Access-Token on
    every request; `auth="login"`: standalone, users paste a token into the sign-in form."""

    auth: AuthMode = "login"
    secure_cookies: bool = True
    https: bool = False  # the UI itself is served over TLS (adds HSTS)
    sign_in_url: str = "/oauth/start"  # proxy mode: where a user whose token expired goes
    default_namespace: str = "default"
    session_idle_timeout: float = 8 * 3600.0
    session_max_age: float = 12 * 3600.0

    @property
    def session_cookie(self) -> str:
        return "__Host-kvu-session" if self.secure_cookies else "kvu-session"

    @property
    def login_cookie(self) -> str:
        return "__Host-kvu-login" if self.secure_cookies else "kvu-login"
