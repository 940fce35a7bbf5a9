"""The web UI as an ASGI application: routes, the vendored static files, security headers, and
what happens when a user is not signed in, their token expired, a CSRF check failed or the API
refused.

    app = build_app(WebContext.create(config, api=UserAPI(server=..., verify=...)))
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kubevirt_usb.web import actions, auth, pages
from kubevirt_usb.web.context import (
    CSRFRejected,
    SignInRequired,
    WebContext,
    is_htmx,
    sign_in_redirect,
    web,
)
from kubevirt_usb.web.forms import FormError
from kubevirt_usb.web.kubeapi import APIFailure, Unauthenticated
from kubevirt_usb.web.security import SecurityHeaders, security_headers

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _problem(request: Request, *, tone: str, title: str, text: str, status: int,
             headers: dict[str, str] | None = None) -> Response:
    template = "_alert.html" if is_htmx(request) else "error.html"
    return web(request).templates.response(template, status=status, headers=headers, tone=tone,
                                           title=title, text=text)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    expired = isinstance(exc, Unauthenticated) or (isinstance(exc, SignInRequired)
                                                   and exc.expired)
    return sign_in_redirect(request, expired=expired)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    log.warning("refused a state change without a valid CSRF token or from another origin: "
                "%s %s", request.method, request.url.path)
    return _problem(request, tone="danger", title="Refused",
                    text="This request did not come from this UI's own page (CSRF check "
                         "failed). Reload the page and try again.", status=403)


async def _api_failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIFailure)
    status = exc.code if 400 <= exc.code < 600 else 502
    title = "Cannot reach the API server" if exc.unreachable else "The API server refused"
    return _problem(request, tone="danger", title=title, text=exc.message, status=status)


_HTTP_TITLES = {404: "Not found", 405: "Not allowed here"}


def _http_text(request: Request, code: int) -> str:
    if code == 404:
        return f"There is no page at {request.url.path}. Start again from the devices."
    if code == 405:
        return (f"{request.url.path} does not answer {request.method} requests. Use the "
                "buttons and links of the UI's pages.")
    return HTTPStatus(code).phrase


async def _http_error(request: Request, exc: Exception) -> Response:
    """Not found, wrong method (and any other HTTP error) as a page, never a bare text."""
    assert isinstance(exc, HTTPException)
    default = exc.detail == HTTPStatus(exc.status_code).phrase
    return _problem(request, tone="danger",
                    title=_HTTP_TITLES.get(exc.status_code, HTTPStatus(exc.status_code).phrase),
                    text=_http_text(request, exc.status_code) if default else exc.detail,
                    status=exc.status_code, headers=dict(exc.headers or {}))


async def _form_error(request: Request, exc: Exception) -> Response:
    return _problem(request, tone="danger", title="This form cannot be sent", text=str(exc),
                    status=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A bug: a page saying so (the traceback goes to the log, not to the user), with the
    security headers, which the middleware inside the error handler cannot add."""
    response = _problem(request, tone="danger", title="Something went wrong",
                        text="The UI failed to answer this request; its log says why. Reload "
                             "the page to try again.", status=500)
    response.headers.update(security_headers(https=web(request).config.https))
    response.headers["Cache-Control"] = "no-store"
    return response


async def _home(request: Request) -> Response:
    return RedirectResponse("/devices", status_code=303)


async def _healthz(request: Request) -> Response:
    return Response("ok", media_type="text/plain")


def routes() -> list[Route | Mount]:
    ns = "/namespaces/{namespace}"
    pairs = [("/devices", pages.devices_plan), (f"{ns}/vms", pages.vms_plan),
             (f"{ns}/vms/{{vm}}", pages.vm_plan), ("/policies", pages.policies_plan),
             ("/events", pages.events_plan)]
    out: list[Route | Mount] = [
        Route("/", _home), Route("/healthz", _healthz),
        Route("/login", auth.login_form, methods=["GET"]),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/session", auth.session_check),
        Route("/namespaces", pages.switch_namespace),
        Route("/attach-form", pages.attach_form_fragment),
        Route(f"{ns}/attachments", actions.attach, methods=["POST"]),
        Route(f"{ns}/attachments/{{name}}/progress", actions.attach_status),
        Route(f"{ns}/attachments/{{name}}/detach", actions.detach, methods=["POST"]),
        Route(f"{ns}/attachments/{{name}}/detach-status", actions.detach_status),
        Route("/policies/grant", actions.grant, methods=["POST"]),
        Route("/policies/{name}/revoke", actions.revoke, methods=["POST"]),
        Route("/policies/{name}/delete", actions.delete_policy, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    for path, plan in pairs:
        out += [Route(path, pages.page(plan)), Route(f"/live{path}", pages.live(plan))]
    return out


def build_app(context: WebContext) -> Starlette:
    """The UI for `context` (settings, API pool, sessions, clock)."""
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders, https=context.config.https)],
        exception_handlers={SignInRequired: _sign_in_required,
                            Unauthenticated: _sign_in_required,
                            CSRFRejected: _csrf_rejected,
                            APIFailure: _api_failure,
                            FormError: _form_error,
                            HTTPException: _http_error,
                            Exception: _unexpected})
    app.state.web = context
    return app
