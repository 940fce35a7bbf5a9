"""Signing in and out with a token, the session cookie, and the way back when a token expires."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from kubevirt_usb.apiserver.auth import UserInfo
from tests.web.conftest import csrf_of
from tests.web.support import ALICE, Cluster, WebThread


def _login_form(client: httpx.Client) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found[1]


def test_pages_need_a_signed_in_user(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        answer = client.get("/namespaces/default/vms/vm1")
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
        htmx = client.get("/devices", headers={"HX-Request": "true"})
        assert (htmx.status_code, htmx.headers["hx-redirect"]) == (401, "/login")
        live = client.get("/live/devices")
        assert live.text.startswith("event: expired\n")
        assert 'hx-get="/session"' in live.text


def test_signing_in_gives_an_opaque_session_cookie(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        csrf = _login_form(client)
        answer = client.post("/login", data={"csrf_token": csrf, "token": ALICE},
                             headers={"Origin": web.url})
        assert (answer.status_code, answer.headers["location"]) == (303, "/devices")
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert ALICE not in cookie
        assert ALICE not in str(answer.headers)
        page = client.get("/devices")
        assert page.status_code == 200
        assert '<span class="kvu-user" id="signed-in-user">alice</span>' in page.text
        assert ALICE not in page.text


def test_secure_cookies_by_default(cluster: Cluster) -> None:
    secure = WebThread(cluster).start()
    try:
        with httpx.Client(base_url=secure.url) as client:
            page = client.get("/login")
            assert page.headers["set-cookie"].startswith("__Host-kvu-login=")
            assert "Secure" in page.headers["set-cookie"]
    finally:
        secure.stop()


def test_a_wrong_token_is_refused(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        csrf = _login_form(client)
        answer = client.post("/login", data={"csrf_token": csrf, "token": "guess"},
                             headers={"Origin": web.url})
        assert answer.status_code == 401
        assert "The API server did not accept this token." in answer.text
        assert client.get("/devices").status_code == 303


def test_what_cannot_be_a_token_is_said_so(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        for token in ("tokén-with-accent", "two words", "line\r\nX-Injected: 1", "nul\x00",
                      "a" * 9000):
            answer = client.post("/login", data={"csrf_token": _login_form(client),
                                                 "token": token}, headers={"Origin": web.url})
            assert answer.status_code == 400, token
            assert "This is not an API token: a token is one word of at most 8192 visible " \
                   "ASCII characters" in answer.text
            assert token not in answer.text
        empty = client.post("/login", data={"csrf_token": _login_form(client), "token": " "},
                            headers={"Origin": web.url})
        assert "Paste an API token." in empty.text
        assert client.get("/devices").status_code == 303


def test_the_sign_in_form_has_its_own_csrf_check(web: WebThread) -> None:
    with httpx.Client(base_url=web.url) as client:
        _login_form(client)
        forged = client.post("/login", data={"csrf_token": "0" * 64, "token": ALICE},
                             headers={"Origin": web.url})
        assert forged.status_code == 403
    with httpx.Client(base_url=web.url) as other:  # another site posting its own form
        csrf = _login_form(other)
        cross = other.post("/login", data={"csrf_token": csrf, "token": ALICE},
                           headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert "session" not in cross.headers.get("set-cookie", "")


def test_an_expired_token_goes_back_to_sign_in(web: WebThread, cluster: Cluster,
                                               signed_in: Callable[[str], httpx.Client]) -> None:
    token = cluster.server.add_user(UserInfo(name="alice", groups=("system:authenticated",)))
    client = signed_in(token)
    assert client.get("/devices").status_code == 200
    cluster.background.call(lambda: cluster.server.authenticator.tokens.pop(token))
    answer = client.get("/namespaces/default/vms/vm1")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login?expired=1")
    login = client.get("/login?expired=1")
    assert "Your session has ended" in login.text
    again = client.get("/devices")  # the session is gone, not just refused once
    assert again.headers["location"] in ("/login", "/login?expired=1")


def test_signing_out_ends_the_session(web: WebThread,
                                      signed_in: Callable[[str], httpx.Client]) -> None:
    client = signed_in(ALICE)
    csrf = csrf_of(client.get("/devices").text)
    refused = client.post("/logout", data={"csrf_token": "bad"}, headers={"Origin": web.url})
    assert refused.status_code == 403
    answer = client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": web.url})
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert client.get("/devices").status_code == 303
    assert client.get("/session").status_code == 303


def test_the_session_check(signed_in: Callable[[str], httpx.Client]) -> None:
    assert signed_in(ALICE).get("/session").status_code == 204
