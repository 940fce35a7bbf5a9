"""The web UI as an ASGI application: routes, the vendored static files, security headers, and
what happens when a user is not signed in, their token expired, a CSRF check failed or the API
refused.

    app = build_app(WebContext.create(config, api=UserAPI(server=..., verify=...)))
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
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
from kubevirt_usb.web.kubeapi import APIFailure, Unauthenticated
from kubevirt_usb.web.security import SecurityHeaders

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _problem(request: Request, *, tone: str, title: str, text: str, status: int) -> Response:
    template = "_alert.html" if is_htmx(request) else "error.html"
    return web(request).templates.response(template, status=status, tone=tone, title=title,
                                           text=text)


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
    return _problem(request, tone="danger", title="The API server refused", text=exc.message,
                    status=status)


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
                            APIFailure: _api_failure})
    app.state.web = context
    return app
