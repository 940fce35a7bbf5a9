"""Signing in and out (standalone mode): the user pastes a token (`oc whoami -t`, or the one
`kubevirt-usb sandbox` prints); the API server says whose it is; the token stays on the server,
the browser gets only a random session id in a Secure, HttpOnly, SameSite=Strict cookie.

The sign-in form has its own CSRF token, bound to a random pre-sign-in cookie, so another site
cannot sign a browser in under someone else's account.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubevirt_usb.web.context import (
    end_session,
    posted,
    read_form,
    sign_in_redirect,
    visitor,
    web,
)
from kubevirt_usb.web.forms import FormError
from kubevirt_usb.web.kubeapi import MAX_TOKEN, APIFailure, Unauthenticated, is_bearer_token
from kubevirt_usb.web.security import same_origin
from kubevirt_usb.web.session import csrf_matches, csrf_token


def _login_page(request: Request, *, message: str = "", status: int = 200) -> Response:
    ctx = web(request)
    if ctx.config.auth != "login":
        return RedirectResponse(ctx.config.sign_in_url, status_code=303)
    pre = secrets.token_urlsafe(24)
    expired = request.query_params.get("expired") == "1"
    response = ctx.templates.response(
        "login.html", status=status, csrf=csrf_token(ctx.secret, f"login:{pre}"),
        message=message, expired=expired and not message)
    response.set_cookie(ctx.config.login_cookie, pre, max_age=1800, path="/", httponly=True,
                        secure=ctx.config.secure_cookies, samesite="strict")
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    ctx = web(request)
    if ctx.config.auth != "login":
        return RedirectResponse(ctx.config.sign_in_url, status_code=303)
    try:
        form = await read_form(request)
    except FormError as exc:
        return _login_page(request, message=str(exc), status=400)
    pre = request.cookies.get(ctx.config.login_cookie, "")
    if not (pre and same_origin(request.headers)
            and csrf_matches(csrf_token(ctx.secret, f"login:{pre}"), form.get("csrf_token"))):
        return _login_page(request, message="The sign-in form expired; please try again.",
                           status=403)
    token = form.get("token", "").strip()
    if not token:
        return _login_page(request, message="Paste an API token.", status=400)
    if not is_bearer_token(token):
        return _login_page(request, message="This is not an API token: a token is one word of "
                           f"at most {MAX_TOKEN} visible ASCII characters, as oc whoami -t "
                           "prints it. Paste it again.", status=400)
    try:
        user = await ctx.api.as_user(token).whoami()
    except Unauthenticated:
        return _login_page(request, message="The API server did not accept this token.",
                           status=401)
    except APIFailure as exc:
        return _login_page(request, message=f"The API server cannot tell whose token this is: "
                                            f"{exc.message}", status=502)
    end_session(request)
    session = ctx.sessions.create(token=token, user=user)
    response = RedirectResponse("/devices", status_code=303)
    response.set_cookie(ctx.config.session_cookie, session.id, path="/", httponly=True,
                        secure=ctx.config.secure_cookies, samesite="strict")
    response.delete_cookie(ctx.config.login_cookie, path="/", httponly=True,
                           secure=ctx.config.secure_cookies, samesite="strict")
    return response


async def logout(request: Request) -> Response:
    await posted(request)
    return sign_in_redirect(request, expired=False)


async def session_check(request: Request) -> Response:
    """204 while signed in; otherwise back to sign-in (live pages ask when told so)."""
    visitor(request)
    return Response(status_code=204)
