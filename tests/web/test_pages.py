"""The pages as each user gets them: what they show, what RBAC hides, and how device strings are
escaped."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.testclient import TestClient

from kubevirt_usb.web.app import build_app
from kubevirt_usb.web.config import WebConfig
from kubevirt_usb.web.context import WebContext
from kubevirt_usb.web.kubeapi import UserAPI
from tests.web.support import ALICE, MALLORY, VERA, WebThread

Client = Callable[[str], httpx.Client]


def test_devices_by_node_with_who_uses_them(signed_in: Client) -> None:
    page = signed_in(ALICE).get("/devices").text
    assert 'id="node-node1"' in page
    assert 'id="node-node2"' in page
    for text in ("46f4-0001-aaa1", "AAA1", "2-1", "serial: AAA1", "FT232 Serial", "0403:6001"):
        assert text in page
    assert '<a href="/namespaces/default/vms/vm2">default/vm2</a>' in page  # AAA2 is in vm2
    assert "5 of 5 devices" in page
    assert 'sse-connect="/live/devices"' in page


def test_markup_and_control_characters_in_device_strings_are_text(signed_in: Client) -> None:
    page = signed_in(ALICE).get("/devices").text
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>1</b>" not in page
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)" \
           "&gt;\\x1b[31mRED\\u202e" in page
    assert "EVIL\\x07&lt;b&gt;1&lt;/b&gt;" in page
    assert "\x1b" not in page
    assert "\u202e" not in page


def test_filters(signed_in: Client) -> None:
    client = signed_in(ALICE)
    page = client.get("/devices", params={"node": "node2", "state": "Absent"}).text
    assert "1 of 5 devices" in page
    assert 'data-device="46f4-0001-gone"' in page
    assert 'data-device="46f4-0001-aaa1"' not in page
    assert 'sse-connect="/live/devices?node=node2&amp;state=Absent"' in page
    part = client.get("/devices", params={"q": "ft232"},
                      headers={"HX-Request": "true", "HX-Target": "devices-live"})
    assert part.text.lstrip().startswith('<div id="devices-live"')
    assert "1 of 5 devices" in part.text
    assert "<html" not in part.text
    empty = client.get("/devices", params={"q": "no such thing"}).text
    assert "No devices match the filters" in empty


def test_the_vm_page_shows_attachments_and_slots(signed_in: Client) -> None:
    page = signed_in(ALICE).get("/namespaces/default/vms/vm2").text
    assert 'data-attachment="vm2-held"' in page
    assert 'data-phase="Attached"' in page
    assert 'data-bytes="123456"' in page
    assert "120.6 KiB" in page
    assert 'data-path="Local" data-path-reason="SameNode"' in page
    assert "SameNode, slot 3 (Direct)" in page
    assert "The VM runs on this node: streaming straight into usb-redir slot 3." in page
    assert 'data-slots-used="1"' in page
    assert "held by <span class=\"kvu-mono\">vm2-held</span>" in page
    assert 'data-slot="4"' in page
    assert ">Detach</button>" in page
    assert 'id="attach-form"' in page
    assert 'sse-connect="/live/namespaces/default/vms/vm2"' in page


def test_a_viewer_sees_attachments_read_only(signed_in: Client) -> None:
    page = signed_in(VERA).get("/namespaces/default/vms/vm2").text
    assert 'data-attachment="vm2-held"' in page
    assert ">Detach</button>" not in page
    assert 'id="attach-form"' not in page
    assert 'id="read-only"' in page
    devices = signed_in(VERA).get("/devices").text
    assert "Attach…" not in devices
    assert 'id="read-only"' in devices


def test_a_user_without_rights_in_the_namespace_sees_nothing_of_it(signed_in: Client) -> None:
    client = signed_in(MALLORY)
    page = client.get("/namespaces/default/vms/vm2").text
    assert "vm2-held" not in page
    assert "123456" not in page
    assert "You cannot see the attachments in default" in page
    assert 'User &#34;mallory&#34; cannot list resource &#34;usbattachments&#34;' in page
    assert 'id="attach-form"' not in page
    assert 'id="read-only"' in page
    vms = client.get("/namespaces/default/vms").text
    assert "You cannot see the VMs in default" in vms


def test_the_vms_of_a_namespace(signed_in: Client) -> None:
    client = signed_in(ALICE)
    page = client.get("/namespaces/default/vms").text
    assert 'data-vm="vm1"' in page
    assert 'data-vm="vm2"' in page
    assert client.get("/namespaces", params={"namespace": "team-a"}).headers["location"] == \
        "/namespaces/team-a/vms"
    missing = client.get("/namespaces/default/vms/nope").text
    assert "There is no VM nope in namespace default." in missing
    bad = client.get("/namespaces/default/vms/Not_A_Name")
    assert bad.status_code == 404
    assert client.get("/namespaces/Not_A_Namespace/vms").status_code == 404


def test_policies_are_read_only_unless_cluster_admin(signed_in: Client, web: WebThread) -> None:
    page = signed_in(ALICE).get("/policies").text
    assert 'data-policy="default-sticks"' in page
    assert "vendor=46f4" in page
    assert 'id="read-only"' in page
    assert 'id="grant-form"' not in page
    assert "Revoke default" not in page
    admin = signed_in(web.cluster.server.admin_token).get("/policies").text
    assert 'id="grant-form"' in admin
    assert 'aria-label="Revoke default"' in admin


def test_the_audit_trail(signed_in: Client, web: WebThread) -> None:
    web.cluster.create({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "vm2-held.1", "namespace": "default"},
        "involvedObject": {"apiVersion": "usb.kubevirt-usb.io/v1alpha1",
                           "kind": "USBAttachment", "name": "vm2-held", "namespace": "default"},
        "reason": "Attached", "message": "46f4-0001-aaa2 <attached> to vm2", "type": "Normal",
        "source": {"component": "kubevirt-usb-controller"},
        "lastTimestamp": "2026-11-01T10:00:00Z"})
    admin = signed_in(web.cluster.server.admin_token).get("/events").text
    assert "46f4-0001-aaa2 &lt;attached&gt; to vm2" in admin
    assert "in every namespace" in admin
    alice = signed_in(ALICE).get("/events").text  # may not list events everywhere
    assert "46f4-0001-aaa2 &lt;attached&gt; to vm2" in alice
    assert "in default" in alice
    vm_page = signed_in(ALICE).get("/namespaces/default/vms/vm2").text
    assert "46f4-0001-aaa2 &lt;attached&gt; to vm2" in vm_page


def test_live_parts_stream_as_server_sent_events(signed_in: Client) -> None:
    client = signed_in(ALICE)
    with client.stream("GET", "/live/namespaces/default/vms/vm2") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        names = []
        for line in events.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            if len(names) == 4:
                break
    assert names == ["summary", "attachments", "slots", "events"]


def test_the_attach_card_for_a_picked_device(signed_in: Client) -> None:
    card = signed_in(ALICE).get("/attach-form", params={"namespace": "default",
                                                        "device": "46f4-0001-aaa1"}).text
    assert card.lstrip().startswith('<div class="pf-v6-c-card kvu-card" id="attach-card"')
    # it reloads itself when an attach or detach settles (its free devices changed)
    assert 'hx-trigger="kvu-devices-changed from:body"' in card
    assert 'hx-get="/attach-form?namespace=default&amp;vm="' in card
    assert '<option value="46f4-0001-aaa1" selected>' in card
    assert '<option value="vm1">vm1</option>' in card
    assert '<option value="46f4-0001-aaa2"' not in card  # in use by vm2: not offered
    for_vm1 = signed_in(ALICE).get("/attach-form", params={"namespace": "default", "vm": "vm1",
                                                           "fixed": "1"}).text
    assert "Attach a device to vm1" in for_vm1
    assert '<input type="hidden" name="vm" value="vm1">' in for_vm1
    assert 'hx-get="/attach-form?namespace=default&amp;vm=vm1&amp;fixed=1"' in for_vm1
    elsewhere = signed_in(ALICE).get("/attach-form", params={"namespace": "team-a"}).text
    assert 'id="read-only"' in elsewhere
    assert "namespace team-a" in elsewhere


def test_an_api_server_that_cannot_be_asked_is_not_called_read_only() -> None:
    """Read-only means the API said no; when it cannot be asked at all, the page says that."""
    context = WebContext.create(WebConfig(secure_cookies=False),
                                api=UserAPI(server="https://127.0.0.1:9", verify=False,
                                            timeout=2))
    session = context.sessions.create(token=ALICE, user="alice")
    with TestClient(build_app(context), raise_server_exceptions=False,
                    cookies={context.config.session_cookie: session.id}) as client:
        for path in ("/devices", "/policies", "/attach-form?namespace=default"):
            page = client.get(path).text
            assert 'id="permissions-unknown"' in page, path
            assert "Cannot check your permissions" in page
            assert "the API server cannot be reached" in page
            assert "Read-only" not in page
            assert 'id="attach-form"' not in page
            assert 'id="grant-form"' not in page
