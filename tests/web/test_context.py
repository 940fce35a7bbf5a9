"""Who is asking: a signed-in session, or (behind OpenShift's oauth-proxy) the token the proxy
hands over; and the namespace a request works in."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from kubevirt_usb.models import API_VERSION
from tests.web.conftest import csrf_of
from tests.web.support import ALICE, MALLORY, Cluster, WebThread


@pytest.fixture(scope="module")
def proxied(cluster: Cluster) -> Iterator[WebThread]:
    served = WebThread(cluster, auth="proxy").start()
    yield served
    served.stop()


def _as(token: str, *, user: str = "") -> dict[str, str]:
    return {"X-Forwarded-Access-Token": token, "X-Forwarded-User": user}


def test_behind_the_proxy_each_request_carries_the_users_token(proxied: WebThread) -> None:
    with httpx.Client(base_url=proxied.url) as client:
        page = client.get("/namespaces/default/vms/vm2", headers=_as(ALICE, user="alice"))
        assert page.status_code == 200
        assert 'data-attachment="vm2-held"' in page.text
        assert "Sign out" not in page.text  # the proxy owns the session
        assert '<span class="kvu-user" id="signed-in-user">alice</span>' in page.text
        assert "set-cookie" not in page.headers
        other = client.get("/namespaces/default/vms/vm2", headers=_as(MALLORY))
        assert "vm2-held" not in other.text
        assert "cannot list resource" in other.text


def test_behind_the_proxy_without_a_token_or_with_an_expired_one(proxied: WebThread) -> None:
    with httpx.Client(base_url=proxied.url) as client:
        assert client.get("/devices").headers["location"] == "/oauth/start"
        assert client.get("/devices", headers=_as("expired")).headers["location"] == \
            "/oauth/start"
        mangled = client.get("/devices", headers={b"X-Forwarded-Access-Token": b"tok\xe9n"})
        assert (mangled.status_code, mangled.headers["location"]) == (303, "/oauth/start")
        live = client.get("/live/devices", headers={b"X-Forwarded-Access-Token": b"tok\xe9n"})
        assert live.text.startswith("event: expired\n")
        assert client.get("/login").headers["location"] == "/oauth/start"


def test_behind_the_proxy_changes_need_the_token_bound_csrf(proxied: WebThread,
                                                            cluster: Cluster) -> None:
    with httpx.Client(base_url=proxied.url) as client:
        csrf = csrf_of(client.get("/devices", headers=_as(ALICE)).text)
        form = {"vm": "vm1", "selector": "serial=PROXY1"}
        forged = client.post("/namespaces/default/attachments", data=form,
                             headers={**_as(ALICE), "X-CSRF-Token": csrf_of(
                                 client.get("/devices", headers=_as(MALLORY)).text)})
        assert forged.status_code == 403
        done = client.post("/namespaces/default/attachments", data=form,
                           headers={**_as(ALICE), "X-CSRF-Token": csrf, "HX-Request": "true"})
        assert done.status_code == 200, done.text
    made = [a for a in cluster.list(f"/apis/{API_VERSION}/namespaces/default/usbattachments")
            if a["spec"]["device"] == {"serial": "PROXY1"}]
    assert len(made) == 1


def test_the_namespace_comes_from_the_url(
        signed_in: Callable[[str], httpx.Client]) -> None:
    client = signed_in(ALICE)
    assert 'value="team-a"' in client.get("/devices?namespace=team-a").text
    fallback = client.get("/devices?namespace=Not_Valid").text
    assert 'id="attach-namespace" value="default"' in fallback


def test_a_name_no_object_can_have_is_not_found_and_never_asked_of_the_api(
        signed_in: Callable[[str], httpx.Client], web: WebThread) -> None:
    client = signed_in(ALICE)
    csrf = csrf_of(client.get("/devices").text)
    changes = {"X-CSRF-Token": csrf, "Origin": web.url, "HX-Request": "true"}
    for method, path, what in [
            ("GET", "/namespaces/Not_Valid/vms", "namespace"),
            ("GET", f"/namespaces/default/vms/{'a' * 300}", "VM"),
            ("GET", "/namespaces/default/attachments/VM2-HELD/progress", "attachment"),
            ("GET", "/namespaces/default/attachments/x..y/detach-status", "attachment"),
            ("POST", "/namespaces/default/attachments/VM2-HELD/detach", "attachment"),
            ("POST", "/policies/Default-Sticks/revoke", "policy"),
            ("POST", "/policies/Default-Sticks/delete", "policy")]:
        answer = client.request(method, path, data={"namespace": "default"},
                                headers=changes if method == "POST" else {})
        assert answer.status_code == 404, (path, answer.text)
        assert "Not found" in answer.text
        assert f"so there is no such {what}" in answer.text
    assert web.cluster.get(f"/apis/{API_VERSION}/namespaces/default/usbattachments/vm2-held")
    policy = web.cluster.get(f"/apis/{API_VERSION}/usbpolicies/default-sticks")
    assert policy is not None
    assert policy["spec"]["namespaces"] == ["default"]


def test_a_form_that_cannot_be_read_says_why_and_changes_nothing(
        signed_in: Callable[[str], httpx.Client], web: WebThread) -> None:
    client = signed_in(ALICE)
    csrf = csrf_of(client.get("/devices").text)
    attachments = f"/apis/{API_VERSION}/namespaces/default/usbattachments"
    before = web.cluster.list(attachments)
    headers = {"X-CSRF-Token": csrf, "Origin": web.url, "HX-Request": "true",
               "Content-Type": "application/x-www-form-urlencoded"}
    for body, said in [(b"vm=vm1&device=" + b"a" * 1_000_000, "the form is too large"),
                       (b"vm=vm1&device=\xff\xfe", "the form is not UTF-8")]:
        answer = client.post("/namespaces/default/attachments", content=body, headers=headers)
        assert answer.status_code == 400
        assert "This form cannot be sent" in answer.text
        assert said in answer.text
        logout = client.post("/logout", content=body, headers=headers)
        assert logout.status_code == 400
        assert said in logout.text
    unchecked = client.post("/namespaces/default/attachments",
                            content=b"vm=vm1&device=" + b"a" * 1_000_000,
                            headers={**headers, "X-CSRF-Token": ""})
    assert unchecked.status_code == 403  # the CSRF check comes first
    assert web.cluster.list(attachments) == before
    assert client.get("/session").status_code == 204
