"""Attach, detach, grant, revoke: done with the user's own token, each behind a CSRF check, each
answering with progress or with the API's own reason for refusing."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from starlette.testclient import TestClient

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web.app import build_app
from kubevirt_usb.web.config import WebConfig
from kubevirt_usb.web.context import WebContext
from kubevirt_usb.web.kubeapi import UserAPI
from kubevirt_usb.web.session import identity_for_session
from tests.web.conftest import csrf_of
from tests.web.support import ALICE, EVE, MALLORY, WebThread

Client = Callable[[str], httpx.Client]
ATTACHMENTS = f"/apis/{API_VERSION}/namespaces/default/usbattachments"
POLICIES = f"/apis/{API_VERSION}/usbpolicies"


def _post(client: httpx.Client, web: WebThread, path: str, data: dict[str, str],
          *, csrf: str | None = None) -> httpx.Response:
    token = csrf if csrf is not None else csrf_of(client.get("/devices").text)
    return client.post(path, data=data, headers={"X-CSRF-Token": token, "HX-Request": "true",
                                                 "Origin": web.url})


def _attachments_of(web: WebThread, vm: str) -> list[str]:
    return [a["metadata"]["name"] for a in web.cluster.list(ATTACHMENTS) if a["spec"]["vm"] == vm]


def test_attach_shows_progress_until_the_vm_has_the_device(signed_in: Client,
                                                           web: WebThread) -> None:
    client = signed_in(ALICE)
    answer = _post(client, web, "/namespaces/default/attachments",
                   {"vm": "vm1", "device": "0403-6001-ft0001"})
    assert answer.status_code == 200, answer.text
    name = re.search(r'id="progress-([a-z0-9-]+)"', answer.text)
    assert name is not None
    assert name[1].startswith("vm1-")
    assert "Attaching name=0403-6001-ft0001 to vm1" in answer.text
    poll = f"/namespaces/default/attachments/{name[1]}/progress"
    assert f'hx-get="{poll}" hx-trigger="every 1s"' in answer.text
    created = web.cluster.get(f"{ATTACHMENTS}/{name[1]}")
    assert created is not None
    assert created["spec"] == {"vm": "vm1",
                                                       "device": {"name": "0403-6001-ft0001"}}
    web.cluster.set_status(created, {"phase": "Connecting", "device": "0403-6001-ft0001",
                                     "node": "node1"})
    connecting_answer = client.get(poll, headers={"HX-Request": "true"})
    assert "HX-Trigger" not in connecting_answer.headers  # nothing changed hands yet
    connecting = connecting_answer.text
    assert 'data-settled="false"' in connecting
    assert 'class="kvu-current">Connecting' in connecting
    web.cluster.set_status(created, {"phase": "Attached", "bytesToVM": 4096})
    attached_answer = client.get(poll, headers={"HX-Request": "true"})
    assert attached_answer.headers["HX-Trigger"] == "kvu-devices-changed"  # cards reload
    attached = attached_answer.text
    assert 'data-settled="true"' in attached
    assert "hx-trigger" not in attached
    assert "0403-6001-ft0001 is in vm1." in attached


def test_a_refusal_by_the_controller_settles_with_its_reason(signed_in: Client,
                                                             web: WebThread) -> None:
    client = signed_in(ALICE)
    answer = _post(client, web, "/namespaces/default/attachments",
                   {"vm": "vm1", "selector": "serial=NOPE1"})
    name = re.search(r'id="progress-([a-z0-9-]+)"', answer.text)
    assert name is not None
    created = web.cluster.get(f"{ATTACHMENTS}/{name[1]}")
    assert created is not None
    assert created["spec"]["device"] == {"serial": "NOPE1"}
    web.cluster.set_status(created, {"phase": "WaitingForDevice",
                                     "message": "no plugged-in device matches serial=NOPE1"})
    said = client.get(f"/namespaces/default/attachments/{name[1]}/progress").text
    assert "WaitingForDevice: not attached yet" in said
    assert "no plugged-in device matches serial=NOPE1" in said
    assert 'data-settled="true"' in said


def test_detach_shows_progress_until_the_attachment_is_gone(signed_in: Client,
                                                            web: WebThread) -> None:
    client = signed_in(ALICE)
    made = _post(client, web, "/namespaces/default/attachments",
                 {"vm": "vm1", "selector": "serial=DETACH1"})
    name = re.search(r'id="progress-([a-z0-9-]+)"', made.text)
    assert name is not None
    answer = _post(client, web, f"/namespaces/default/attachments/{name[1]}/detach", {})
    assert answer.status_code == 200
    assert "Detached from vm1" in answer.text
    assert 'data-settled="true"' in answer.text
    assert name[1] not in _attachments_of(web, "vm1")
    again = client.get(f"/namespaces/default/attachments/{name[1]}/detach-status?vm=vm1").text
    assert "Detached from vm1" in again
    twice = _post(client, web, f"/namespaces/default/attachments/{name[1]}/detach", {})
    assert twice.status_code == 404
    assert "Nothing to detach" in twice.text
    assert f"There is no attachment {name[1]} in namespace default" in twice.text


def test_bad_input_is_explained_before_the_api_sees_it(signed_in: Client,
                                                       web: WebThread) -> None:
    client = signed_in(ALICE)
    before = _attachments_of(web, "vm1")
    answer = _post(client, web, "/namespaces/default/attachments",
                   {"vm": "vm1", "selector": "serial"})
    assert answer.status_code == 400
    assert "cannot read &#39;serial&#39;" in answer.text
    assert _attachments_of(web, "vm1") == before


def test_a_user_without_rights_gets_the_apis_reason(signed_in: Client, web: WebThread) -> None:
    client = signed_in(MALLORY)
    before = _attachments_of(web, "vm1")
    answer = _post(client, web, "/namespaces/default/attachments",
                   {"vm": "vm1", "device": "46f4-0001-aaa1"})
    assert answer.status_code == 403
    assert "The API server refused the attachment" in answer.text
    assert "User &#34;mallory&#34; cannot create resource &#34;usbattachments&#34;" in answer.text
    assert _attachments_of(web, "vm1") == before
    detach = _post(client, web, "/namespaces/default/attachments/vm2-held/detach", {})
    assert detach.status_code == 403
    assert web.cluster.get(f"{ATTACHMENTS}/vm2-held") is not None


def test_the_apis_reason_shows_hidden_characters_visibly(signed_in: Client,
                                                         web: WebThread) -> None:
    """A refusal echoes the user's name, which an identity provider may fill with anything."""
    answer = _post(signed_in(EVE), web, "/namespaces/default/attachments",
                   {"vm": "vm1", "device": "46f4-0001-aaa1"})
    assert answer.status_code == 403
    assert "User &#34;eve\\u202egnp.exe&#34; cannot create resource" in answer.text
    assert "\u202e" not in answer.text


def test_state_changes_need_the_csrf_token_and_our_origin(signed_in: Client,
                                                          web: WebThread) -> None:
    client = signed_in(ALICE)
    before = _attachments_of(web, "vm1")
    form = {"vm": "vm1", "device": "46f4-0001-aaa1"}
    missing = client.post("/namespaces/default/attachments", data=form,
                          headers={"Origin": web.url})
    assert missing.status_code == 403
    assert "CSRF check failed" in missing.text
    wrong = _post(client, web, "/namespaces/default/attachments", form, csrf="f" * 64)
    assert wrong.status_code == 403
    csrf = csrf_of(client.get("/devices").text)
    cross = client.post("/namespaces/default/attachments", data=form,
                        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    other_user = signed_in(ALICE)  # a token from another session is no good either
    stolen = _post(other_user, web, "/namespaces/default/attachments", form, csrf=csrf)
    assert stolen.status_code == 403
    assert _attachments_of(web, "vm1") == before
    for path in ("/policies/grant", "/policies/default-sticks/revoke",
                 "/policies/default-sticks/delete", "/namespaces/default/attachments/x/detach"):
        assert client.post(path, data={"namespace": "default"}).status_code == 403


def test_admins_grant_and_revoke_namespaces(signed_in: Client, web: WebThread) -> None:
    admin = signed_in(web.cluster.server.admin_token)
    created = _post(admin, web, "/policies/grant",
                    {"namespace": "team-a", "selector": "vendor=0403", "name": "team-a-serial"})
    assert created.status_code == 200
    assert "Granted team-a" in created.text
    assert "lets team-a attach vendor=0403" in created.text
    extended = _post(admin, web, "/policies/grant", {"namespace": "team-b",
                                                     "policy": "team-a-serial"})
    assert "Policy team-a-serial now includes team-b." in extended.text
    policy = web.cluster.get(f"{POLICIES}/team-a-serial")
    assert policy is not None
    assert policy["spec"]["namespaces"] == ["team-a", "team-b"]
    revoked = _post(admin, web, "/policies/team-a-serial/revoke", {"namespace": "team-a"})
    assert "Policy team-a-serial no longer includes team-a." in revoked.text
    policy = web.cluster.get(f"{POLICIES}/team-a-serial")
    assert policy is not None
    assert policy["spec"]["namespaces"] == ["team-b"]
    deleted = _post(admin, web, "/policies/team-a-serial/delete", {})
    assert "Deleted policy team-a-serial" in deleted.text
    assert web.cluster.get(f"{POLICIES}/team-a-serial") is None


def test_only_admins_grant(signed_in: Client, web: WebThread) -> None:
    refused = _post(signed_in(ALICE), web, "/policies/grant", {"namespace": "default"})
    assert refused.status_code == 403
    assert "User &#34;alice&#34; cannot create resource &#34;usbpolicies&#34;" in refused.text
    revoke = _post(signed_in(ALICE), web, "/policies/default-sticks/revoke",
                   {"namespace": "default"})
    assert revoke.status_code == 403
    policy = web.cluster.get(f"{POLICIES}/default-sticks")
    assert policy is not None
    assert policy["spec"]["namespaces"] == ["default"]


def test_an_api_server_that_is_gone_is_said_so() -> None:
    context = WebContext.create(WebConfig(secure_cookies=False),
                                api=UserAPI(server="https://127.0.0.1:9", verify=False,
                                            timeout=2))
    session = context.sessions.create(token=ALICE, user="alice")
    csrf = identity_for_session(session, secret=context.secret).csrf
    with TestClient(build_app(context), raise_server_exceptions=False,
                    cookies={context.config.session_cookie: session.id}) as client:
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true", "Origin": "http://testserver"}
        for path, form in [("/namespaces/default/attachments", {"vm": "vm1", "device": "a"}),
                           ("/namespaces/default/attachments/vm2-held/detach", {}),
                           ("/policies/grant", {"namespace": "default"}),
                           ("/policies/default-sticks/delete", {})]:
            answer = client.post(path, data=form, headers=headers)
            assert answer.status_code == 502, path
            assert "Cannot reach the API server" in answer.text
            assert "the API server cannot be reached (ConnectError); try again when it " \
                   "answers" in answer.text
            assert ALICE not in answer.text
        progress = client.get("/namespaces/default/attachments/vm2-held/progress")
        assert "Cannot reach the API server" in progress.text
