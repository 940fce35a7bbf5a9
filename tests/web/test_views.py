"""What the pages show, computed from API objects without I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web import views
from tests.web.support import EVIL_PRODUCT, device

NOW = dt.datetime(2026, 11, 1, 10, 5, 0, tzinfo=dt.UTC)


def _device(name: str = "d1", **kwargs: Any) -> dict[str, Any]:
    obj, status = device(name, node=kwargs.pop("node", "node1"), port=kwargs.pop("port", "2-1"),
                         serial=kwargs.pop("serial", "AAA1"),
                         product=kwargs.pop("product", "Stick"), **kwargs)
    return {**obj, "status": status, "metadata": {**obj["metadata"],
                                                  "creationTimestamp": "2026-11-01T09:00:00Z"}}


def _attachment(name: str, *, vm: str = "vm1", **status: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": "default",
                         "creationTimestamp": "2026-11-01T10:00:00Z"},
            "spec": {"vm": vm, "device": {"serial": "AAA1"}}, "status": status}


def test_age_and_bytes_read_like_kubectl() -> None:
    assert views.age("2026-11-01T10:04:48Z", now=NOW) == "12s"
    assert views.age("2026-11-01T09:00:00.5Z", now=NOW) == "1h"
    assert views.age("2026-10-29T10:05:00+00:00", now=NOW) == "3d"
    assert views.age("not a time", now=NOW) == ""
    assert [views.format_bytes(n) for n in (0, 512, 1536, 5 * 1024 * 1024, 3 * 1024 ** 4)] == \
        ["0 B", "512 B", "1.5 KiB", "5.0 MiB", "3072.0 GiB"]


def test_a_free_device_row() -> None:
    row = views.device_row(_device(), attachments={}, now=NOW)
    assert (row.name, row.node, row.ids, row.product, row.serial, row.port) == \
        ("d1", "node1", "46f4:0001", "Stick", "AAA1", "2-1")
    assert row.identity == "serial: AAA1"
    assert (row.state, row.free, row.used_by, row.since_age) == ("Available", True, "", "1h")
    assert row.label == "Stick (AAA1) on node1"


def test_a_device_in_use_is_used_since_its_attachment_attached() -> None:
    claimed = _device(claim={"namespace": "default", "attachment": "a1", "vm": "vm1"})
    index = {("default", "a1"): _attachment("a1", attachedSince="2026-11-01T10:04:00Z")}
    row = views.device_row(claimed, attachments=index, now=NOW)
    assert (row.state, row.used_by, row.free, row.since_age) == ("In use", "default/vm1",
                                                                 False, "1m")
    hidden = views.device_row(claimed, attachments={}, now=NOW)
    assert hidden.since_age == ""  # the user cannot see the attachment: no guess


def test_an_absent_device_is_absent_since_it_left() -> None:
    gone = _device(present=False)
    gone["status"]["absentSince"] = "2026-11-01T10:00:00Z"
    row = views.device_row(gone, attachments={}, now=NOW)
    assert (row.state, row.free, row.since_age, row.state_tone) == ("Absent", False, "5m",
                                                                    "grey")


def test_hardware_strings_are_made_printable() -> None:
    row = views.device_row(_device(product=EVIL_PRODUCT, serial="S\x07"), attachments={},
                           now=NOW)
    assert "\x1b" not in row.product
    assert "\\x1b" in row.product
    assert row.serial == "S\\x07"


def test_filters_and_grouping_by_node() -> None:
    rows = views.device_rows([_device("b", node="node2", serial="B1"),
                              _device("a", node="node1", serial="A1", port="2-2"),
                              _device("c", node="node1", serial="C1", port="2-1",
                                      claim={"namespace": "ns", "attachment": "x", "vm": "vm9"})],
                             now=NOW)
    assert [(g.node, [r.name for r in g.rows]) for g in views.devices_by_node(rows)] == \
        [("node1", ["c", "a"]), ("node2", ["b"])]
    only = views.DeviceFilter.from_query({"node": "node1", "state": "In use"})
    assert [r.name for g in views.devices_by_node(rows, keep=only) for r in g.rows] == ["c"]
    text = views.DeviceFilter.from_query({"q": "vm9"})
    assert [r.name for g in views.devices_by_node(rows, keep=text) for r in g.rows] == ["c"]
    assert views.DeviceFilter.from_query({"state": "Exploded"}).state == ""
    assert only.query() == {"node": "node1", "state": "In use"}
    assert views.devices_by_node(rows)[0].count("In use") == 1
    assert views.node_names(rows) == ["node1", "node2"]


def test_attachment_rows_and_the_four_slots() -> None:
    attached = _attachment("a1", phase="Attached", bytesToVM=2048, bytesFromVM=10,
                           device="d1", node="node1", attachedSince="2026-11-01T10:04:00Z")
    waiting = _attachment("a2", phase="WaitingForDevice", message="no device matches")
    other_vm = _attachment("a3", vm="vm2", phase="Attached")
    connecting = _attachment("a0", phase="Connecting", device="d0",
                             attachedSince="2026-11-01T10:00:00Z")
    rows = views.attachment_rows([waiting, attached, other_vm, connecting], now=NOW, vm="vm1")
    assert [r.name for r in rows] == ["a0", "a1", "a2"]
    first = rows[1]
    assert (first.shown_phase, first.phase_tone, first.to_vm, first.from_vm, first.since_age) \
        == ("Attached", "green", "2.0 KiB", "10 B", "1m")
    assert rows[2].wants == "serial=AAA1"
    assert rows[2].phase_tone == "orange"
    assert (rows[2].path, rows[2].slot) == ("", "")  # no stream, no path
    elsewhere = views.attachment_row(_attachment(
        "a4", phase="Attached", path="API", pathReason="VMIOnOtherNode",
        pathMessage="VMI default/vm1 runs on node node2.", slotKind="VirtHandler"), now=NOW)
    assert (elsewhere.path, elsewhere.path_reason, elsewhere.path_message, elsewhere.slot) == (
        "API", "VMIOnOtherNode", "VMI default/vm1 runs on node node2.", "VirtHandler")
    # the waiting one holds no slot; the holders fill the first slots, oldest first
    shown = views.slots(rows)
    assert [(s.position, s.attachment.name if s.attachment else None) for s in shown] == \
        [(1, "a0"), (2, "a1"), (3, None), (4, None)]


def test_a_slot_number_is_shown_only_while_a_stream_holds_it() -> None:
    local: dict[str, Any] = {"path": "Local", "pathReason": "SameNode", "slot": 3,
                             "slotKind": "Direct"}
    shown = {phase: views.attachment_row(_attachment("a1", phase=phase, **local), now=NOW).slot
             for phase in ("Connecting", "Attached", "Failed", "NotAllowed", "Bound")}
    assert shown == {"Connecting": "slot 3 (Direct)", "Attached": "slot 3 (Direct)",
                     "Failed": "", "NotAllowed": "", "Bound": ""}


def test_a_failed_stream_still_holds_its_slot_as_the_controller_counts_it() -> None:
    failed = _attachment("a1", phase="Failed", device="d1", lastError="device busy")
    refused = _attachment("a2", phase="NotAllowed", message="no policy")
    shown = views.slots(views.attachment_rows([failed, refused], now=NOW, vm="vm1"))
    assert [s.attachment.name if s.attachment else None for s in shown] == ["a1", None, None, None]


def test_a_deleted_attachment_shows_as_detaching() -> None:
    going = _attachment("a1", phase="Attached")
    going["metadata"]["deletionTimestamp"] = "2026-11-01T10:04:59Z"
    row = views.attachment_row(going, now=NOW)
    assert (row.shown_phase, row.phase_tone) == ("Detaching", "grey")
    assert views.slots([row])[0].attachment is None  # its slot is on its way to being free


def test_vm_rows_join_vmis_and_attachments() -> None:
    vm = {"metadata": {"name": "vm1", "namespace": "default"},
          "spec": {"template": {"spec": {"domain": {"devices": {"clientPassthrough": {}}}}}},
          "status": {"printableStatus": "Running"}}
    vmi = {"metadata": {"name": "vm1"}, "status": {"nodeName": "node1"}}
    stopped = {"metadata": {"name": "vm0", "namespace": "default"}, "spec": {}}
    attachments = views.attachment_rows(
        [_attachment("a1", phase="Attached"), _attachment("a2", phase="Pending")], now=NOW)
    rows = views.vm_rows([vm, stopped], vmis=[vmi], attachments=attachments)
    assert [(r.name, r.status, r.node, r.passthrough, r.attachments, r.attached)
            for r in rows] == [("vm0", "Unknown", "", False, 0, 0),
                               ("vm1", "Running", "node1", True, 2, 1)]
    assert rows[1].status_tone == "green"


def test_policy_rows() -> None:
    policy = {"metadata": {"name": "p", "creationTimestamp": "2026-11-01T10:00:00Z",
                           "resourceVersion": "7"},
              "spec": {"namespaces": ["b", "a"], "devices": {},
                       "namespaceSelector": {"matchLabels": {"usb": "yes"},
                                             "matchExpressions": [
                                                 {"key": "tier", "operator": "In",
                                                  "values": ["1", "2"]}]}}}
    row, = views.policy_rows([policy], now=NOW)
    assert (row.name, row.namespaces, row.devices, row.age) == ("p", ["b", "a"], "every device",
                                                                "5m")
    assert row.namespace_selector == "usb=yes, tier In (1,2)"
    assert views.selector_summary({"vendorId": "46f4", "serial": "A"}) == "vendor=46f4, serial=A"


def test_event_rows_keep_ours_newest_first() -> None:
    def event(name: str, when: str, *, api: str = API_VERSION, kind: str = "USBAttachment",
              **extra: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "default"}, "lastTimestamp": when,
                "involvedObject": {"apiVersion": api, "kind": kind, "name": "a1",
                                   "namespace": "default"},
                "reason": "Attached", "message": f"msg {name}", "type": "Normal",
                "source": {"component": "kubevirt-usb-controller"}, **extra}

    events = [event("old", "2026-11-01T09:00:00Z"), event("new", "2026-11-01T10:04:00Z",
                                                          type="Warning", count=3),
              event("pod", "2026-11-01T10:04:30Z", api="v1", kind="Pod"),
              event("dev", "2026-11-01T10:00:00Z", kind="USBDevice")]
    rows = views.event_rows(events, now=NOW)
    assert [r.message for r in rows] == ["msg new", "msg dev", "msg old"]
    assert (rows[0].tone, rows[0].count, rows[0].age, rows[0].object, rows[0].source) == \
        ("orange", 3, "1m", "USBAttachment default/a1", "kubevirt-usb-controller")
    only = views.EventFilter(kind="USBAttachment", names=frozenset({"a1"}))
    assert [r.message for r in views.event_rows(events, now=NOW, keep=only)] == \
        ["msg new", "msg old"]
    assert len(views.event_rows(events, now=NOW, limit=1)) == 1


def test_an_attachment_time_that_is_no_time_is_shown_as_text() -> None:
    row = views.attachment_row(_attachment("a1", phase="Attached",
                                           attachedSince="\x1b[31m\u202e" + "9" * 500), now=NOW)
    assert row.since == "\\x1b[31m\\u202e" + "9" * 58 + "…"
    assert row.since_age == ""
