"""The application as a whole: routes, vendored assets, headers, and error pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from kubevirt_usb.web.app import STATIC, build_app, routes
from kubevirt_usb.web.security import CONTENT_SECURITY_POLICY
from tests.web.support import ALICE, WebThread

TEMPLATES = Path(STATIC).parent / "templates"


def test_every_page_has_a_live_twin() -> None:
    paths = {getattr(r, "path", "") for r in routes()}
    for page in ("/devices", "/namespaces/{namespace}/vms", "/namespaces/{namespace}/vms/{vm}",
                 "/policies", "/events"):
        assert page in paths
        assert f"/live{page}" in paths


def test_pages_and_assets_carry_the_security_headers(web: WebThread,
                                                     signed_in: Callable[[str], httpx.Client]
                                                     ) -> None:
    client = signed_in(ALICE)
    for path in ("/devices", "/login", "/static/htmx/htmx.min.js"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/devices").headers["cache-control"] == "no-store"


def test_the_vendored_assets_are_served(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        login = client.get("/login").text
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', login)
        assert "/static/patternfly/patternfly-base.css" in assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        for script in ("/static/htmx/htmx.min.js", "/static/htmx/sse.min.js"):
            assert client.get(script).status_code == 200
        fonts = re.findall(r'url\("\./(assets/fonts/RedHat(?:Text|Display|Mono)/[^"]+VF\.woff2)"',
                           client.get("/static/patternfly/patternfly-base.css").text)
        assert len(fonts) == 3
        for font in fonts:
            assert client.get(f"/static/patternfly/{font}").status_code == 200


def test_templates_load_nothing_from_elsewhere() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r'(?:src|href|action|sse-connect|hx-\w+)="(?:https?:)?//', text), \
            template.name
        assert "<script>" not in text
        assert " style=" not in text
        assert "on" + "click" not in text


def test_home_health_and_unknown_paths(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        assert client.get("/").headers["location"] == "/devices"
        assert client.get("/healthz").text == "ok"
        missing = client.get("/no/such/page")
        assert missing.status_code == 404
        assert "<!doctype html>" in missing.text
        assert "There is no page at /no/such/page." in missing.text
        assert missing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        fragment = client.get("/no/such/page", headers={"HX-Request": "true"})
        assert 'id="action-alert"' in fragment.text
        assert "<!doctype html>" not in fragment.text
        wrong = client.get("/policies/grant")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST"
        assert "/policies/grant does not answer GET requests" in wrong.text
        assert wrong.headers["x-content-type-options"] == "nosniff"


def test_a_bug_is_a_page_with_the_headers_not_a_stack(web: WebThread) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug with a secret-token-1234 in its text")

    assert web.context is not None
    app = build_app(web.context)
    app.router.routes.append(Route("/broken", broken))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken")
    assert answer.status_code == 500
    assert "Something went wrong" in answer.text
    assert "secret-token-1234" not in answer.text
    assert "Traceback" not in answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_refusals_are_pages_for_browsers_and_fragments_for_htmx(
        signed_in: Callable[[str], httpx.Client]) -> None:
    client = signed_in(ALICE)
    page = client.post("/policies/grant", data={})
    assert page.status_code == 403
    assert "<!doctype html>" in page.text
    fragment = client.post("/policies/grant", data={}, headers={"HX-Request": "true"})
    assert fragment.status_code == 403
    assert "<!doctype html>" not in fragment.text
    assert 'id="action-alert"' in fragment.text
