"""What every request handler of the UI shares: the app's settings and services (`WebContext`),
who is asking (`Visitor`, with their own API client), the CSRF check, and the way back to sign-in.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubevirt_usb.web.config import WebConfig
from kubevirt_usb.web.forms import (
    MAX_FORM_BYTES,
    FormError,
    check_namespace,
    check_object_name,
    parse_form,
)
from kubevirt_usb.web.kubeapi import UserAPI, UserClient
from kubevirt_usb.web.render import Templates
from kubevirt_usb.web.security import same_origin
from kubevirt_usb.web.session import (
    Identity,
    SessionStore,
    csrf_matches,
    identity_for_proxy_token,
    identity_for_session,
)

Now = Callable[[], dt.datetime]


@dataclass
class WebContext:
    """The UI's settings and services; tests build one with their own API, clock and secret."""

    config: WebConfig
    api: UserAPI
    sessions: SessionStore
    templates: Templates
    now: Now
    secret: bytes

    @classmethod
    def create(cls, config: WebConfig, *, api: UserAPI, now: Now | None = None,
               monotonic: Callable[[], float] | None = None,
               secret: bytes | None = None) -> WebContext:
        sessions = SessionStore(clock=monotonic or time.monotonic,
                                idle_timeout=config.session_idle_timeout,
                                max_age=config.session_max_age)
        return cls(config=config, api=api, sessions=sessions, templates=Templates(),
                   now=now or (lambda: dt.datetime.now(dt.UTC)),
                   secret=secret or secrets.token_bytes(32))


class SignInRequired(Exception):
    """Nobody is signed in (or their token stopped working)."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("sign in required")
        self.expired = expired


class CSRFRejected(Exception):
    """A state change that did not come from this UI's own page."""


@dataclass(frozen=True)
class Visitor:
    """The signed-in user of one request: their identity and their own API client."""

    identity: Identity
    client: UserClient

    @property
    def csrf(self) -> str:
        return self.identity.csrf

    @property
    def user(self) -> str:
        return self.identity.user


def web(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def visitor(request: Request, *, touch: bool = True) -> Visitor:
    """The user behind the request, or SignInRequired. `touch=False`: a check on the user's
    behalf that does not count as their use of the session (see `SessionStore.get`)."""
    ctx = web(request)
    if ctx.config.auth == "proxy":
        token = request.headers.get("x-forwarded-access-token", "").strip()
        if not token:
            raise SignInRequired()
        user = request.headers.get("x-forwarded-user", "") or request.headers.get(
            "x-forwarded-email", "")
        identity = identity_for_proxy_token(token, user=user)
    else:
        session_id = request.cookies.get(ctx.config.session_cookie, "")
        session = ctx.sessions.get(session_id, touch=touch) if session_id else None
        if session is None:
            raise SignInRequired(expired=bool(session_id))
        identity = identity_for_session(session, secret=ctx.secret)
    return Visitor(identity=identity, client=ctx.api.as_user(identity.token))


async def read_form(request: Request) -> dict[str, str]:
    """The posted form, read no further than `MAX_FORM_BYTES` (FormError when it is larger, or
    not a form)."""
    if int(request.headers.get("content-length", "0") or "0") > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("the form is too large")
    return parse_form(bytes(body))


async def posted(request: Request) -> tuple[Visitor, dict[str, str]]:
    """The user behind a state change and its form, once the CSRF check passed (a form that
    cannot be read is a FormError, raised only after the check)."""
    who = visitor(request)
    problem: FormError | None = None
    try:
        form = await read_form(request)
    except FormError as exc:
        form, problem = {}, exc
    require_csrf(request, who, form)
    if problem is not None:
        raise problem
    return who, form


def require_csrf(request: Request, who: Visitor, form: dict[str, str]) -> None:
    """Refuse a state change unless it comes from our own page with the user's CSRF token."""
    presented = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not same_origin(request.headers) or not csrf_matches(who.csrf, presented):
        raise CSRFRejected()


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def end_session(request: Request) -> None:
    ctx = web(request)
    session_id = request.cookies.get(ctx.config.session_cookie)
    if session_id:
        ctx.sessions.drop(session_id)


def sign_in_redirect(request: Request, *, expired: bool) -> Response:
    """Back to sign-in: a redirect for the browser, HX-Redirect for htmx."""
    ctx = web(request)
    end_session(request)
    if ctx.config.auth == "proxy":
        target = ctx.config.sign_in_url
    else:
        target = "/login?expired=1" if expired else "/login"
    if is_htmx(request):
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if ctx.config.auth == "login":
        response.delete_cookie(ctx.config.session_cookie, path="/",
                               secure=ctx.config.secure_cookies, httponly=True,
                               samesite="strict")
    return response


def page_context(request: Request, who: Visitor, *, active: str, namespace: str,
                 **extra: Any) -> dict[str, Any]:
    """What the page frame (masthead, navigation) needs, plus `extra`."""
    ctx = web(request)
    return {"user": who.user, "csrf": who.csrf, "active": active, "namespace": namespace,
            "login_mode": ctx.config.auth == "login", **extra}


def path_name(request: Request, key: str, *, what: str) -> str:
    """The object name in the URL's `key` part; a 404 (never an API request) when no object
    can have it."""
    try:
        return check_object_name(str(request.path_params[key]), what=what)
    except FormError as exc:
        raise HTTPException(404, detail=f"{exc}, so there is no such {what}") from None


def namespace_of(request: Request) -> str:
    """The namespace the user is working in: the path's (404 when it cannot be one), else the
    query's, else the configured default."""
    if "namespace" in request.path_params:
        try:
            return check_namespace(str(request.path_params["namespace"]))
        except FormError as exc:
            raise HTTPException(404, detail=f"{exc}, so there is no such namespace") from None
    try:
        return check_namespace(request.query_params.get("namespace", ""))
    except FormError:
        return web(request).config.default_namespace
