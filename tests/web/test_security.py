"""The browser-facing defences: CSP and other headers, and the same-origin check."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from kubevirt_usb.web.security import (
    CONTENT_SECURITY_POLICY,
    SecurityHeaders,
    same_origin,
    security_headers,
)


def test_the_policy_allows_only_this_server() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "img-src", "font-src", "connect-src"):
        assert directives[kind] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY


def test_hsts_only_over_https() -> None:
    assert "Strict-Transport-Security" in security_headers(https=True)
    assert "Strict-Transport-Security" not in security_headers(https=False)


def test_same_origin() -> None:
    assert same_origin({"host": "ui:8080", "origin": "http://ui:8080",
                        "sec-fetch-site": "same-origin"})
    assert same_origin({"host": "ui:8080"})  # old clients: the CSRF token still decides
    assert same_origin({"host": "internal:8080", "x-forwarded-host": "usb.apps.example.com",
                        "origin": "https://usb.apps.example.com"})
    assert not same_origin({"host": "ui:8080", "origin": "https://evil.example"})
    assert not same_origin({"host": "ui:8080", "origin": "null"})
    assert not same_origin({"host": "ui:8080", "sec-fetch-site": "cross-site"})
    assert not same_origin({"host": "ui:8080", "sec-fetch-site": "same-site",
                            "origin": "http://ui:8080"})


def test_every_response_carries_the_headers() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/page", hello), Route("/static/x.css", hello)])
    client = TestClient(SecurityHeaders(app, https=False))
    page = client.get("/page")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/static/x.css").headers["cache-control"].startswith("public")
