"""What list, status and watch print: rows people read, and the forms scripts parse."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb.clock import rfc3339
from kubevirt_usb.kubectl_usb.tables import MAX_CELL
from kubevirt_usb.kubectl_usb.views import (
    OUTPUTS,
    attachment_message,
    attachment_row,
    device_row,
    device_state,
    render_attachments,
    render_devices,
    render_object,
)
from tests.kubectl_usb.cluster import attachment_obj, field_notes_devices

NOW = dt.datetime(2025, 1, 10, 12, 0, 0, tzinfo=dt.UTC)
CLAIM = {"namespace": "default", "attachment": "vm1-46f4-0001-aaa1", "vm": "vm1"}


def test_a_device_row() -> None:
    aaa1 = field_notes_devices(claim_aaa1=CLAIM)[0]
    assert device_row(aaa1, now=NOW) == ["46f4-0001-aaa1", "node1", "46f4:0001",
                                         "QEMU USB HARDDRIVE", "AAA1", "2-1", "serial", "InUse",
                                         "default/vm1"]
    wide = device_row(aaa1, now=NOW, wide=True)
    assert wide[9:14] == ["QEMU", "QEMU", "2/2", "480M", "default/vm1-46f4-0001-aaa1"]


def test_device_states() -> None:
    aaa1, aaa2, _ = field_notes_devices(claim_aaa1=CLAIM)
    assert device_state(aaa1) == "InUse"
    assert device_state(aaa2) == "Available"
    gone = {**aaa2, "status": {**aaa2["status"], "present": False, "state": "Absent"}}
    assert device_state(gone) == "Absent"
    assert device_state({"metadata": {"name": "new"}}) == "Unknown"


def test_the_device_table_shows_both_identical_sticks_distinctly() -> None:
    table = render_devices(field_notes_devices(), output="table", now=NOW)
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "NODE", "ID", "PRODUCT", "SERIAL", "PORT", "IDENTITY",
                                "STATE", "USED-BY"]
    rows = [line.split("   ") for line in lines[1:]]
    assert [r[0].strip() for r in rows] == ["46f4-0001-aaa1", "46f4-0001-aaa2",
                                            "0403-6001-ft0001"]
    assert "AAA1" in lines[1]
    assert "2-1" in lines[1]
    assert "AAA2" in lines[2]
    assert "2-2" in lines[2]


def test_scripts_get_a_kubectl_style_list_or_names() -> None:
    devices = field_notes_devices()
    as_json = json.loads(render_devices(devices, output="json", now=NOW))
    assert as_json["kind"] == "List"
    assert [d["status"]["serial"] for d in as_json["items"]] == ["AAA1", "AAA2", "FT0001"]
    as_yaml = yaml.safe_load(render_devices(devices, output="yaml", now=NOW))
    assert as_yaml == as_json
    assert render_devices(devices, output="name", now=NOW).splitlines() == [
        "usbdevice.usb.kubevirt-usb.io/46f4-0001-aaa1",
        "usbdevice.usb.kubevirt-usb.io/46f4-0001-aaa2",
        "usbdevice.usb.kubevirt-usb.io/0403-6001-ft0001"]
    assert render_devices(devices, output="table", now=NOW, headers=False).startswith(
        "46f4-0001-aaa1")


def test_an_attached_attachment_row() -> None:
    attached = attachment_obj("vm1-46f4-0001-aaa1", vm="vm1", device={"name": "46f4-0001-aaa1"},
                              status={"phase": "Attached", "device": "46f4-0001-aaa1",
                                      "node": "node1", "bytesToVM": 64 * 1024 * 1024,
                                      "bytesFromVM": 2048, "reconnects": 1,
                                      "lastError": "connection reset",
                                      "attachedSince": rfc3339(NOW - dt.timedelta(minutes=5)),
                                      "path": "API", "pathReason": "VMIOnOtherNode",
                                      "slotKind": "VirtHandler"})
    assert attachment_row(attached, now=NOW) == [
        "vm1-46f4-0001-aaa1", "vm1", "Attached", "46f4-0001-aaa1", "node1", "API", "64.0MiB",
        "2.0KiB", "5m", "last error: connection reset"]
    assert attachment_row(attached, now=NOW, wide=True)[10:] == [
        "1", "connection reset", "46f4-0001-aaa1", "VMIOnOtherNode", "VirtHandler"]
    assert attachment_row(attached, now=NOW, with_namespace=True)[0] == "default"


def test_a_slot_is_shown_only_while_a_stream_holds_it() -> None:
    local = {"device": "46f4-0001-aaa1", "node": "node1", "path": "Local",
             "pathReason": "SameNode", "slot": 3, "slotKind": "Direct"}
    rows = {phase: attachment_row(attachment_obj("a1", vm="vm1", device={"serial": "AAA1"},
                                                 status={**local, "phase": phase}),
                                  now=NOW, wide=True)[-1]
            for phase in ("Connecting", "Attached", "Failed", "NotAllowed", "Bound")}
    assert rows == {"Connecting": "3 (Direct)", "Attached": "3 (Direct)", "Failed": "-",
                    "NotAllowed": "-", "Bound": "-"}


def test_a_waiting_attachment_says_why() -> None:
    waiting = attachment_obj("a", vm="vm1", device={"serial": "AAA9"},
                             status={"phase": "WaitingForDevice",
                                     "message": "no device matches serial AAA9"})
    row = attachment_row(waiting, now=NOW)
    assert row[2:4] == ["WaitingForDevice", "-"]
    assert row[5] == "-"  # no path before a stream
    assert row[8:] == ["-", "no device matches serial AAA9"]
    assert attachment_message(attachment_obj("b", vm="v", device={})) == ""
    assert attachment_row(attachment_obj("b", vm="v", device={}), now=NOW)[2] == "Pending"


def test_long_messages_are_cut_in_the_table_not_in_wide() -> None:
    long = "x" * 100
    waiting = attachment_obj("a", vm="vm1", device={}, status={"phase": "Failed",
                                                                "message": long})
    assert attachment_row(waiting, now=NOW)[-1] == "x" * 57 + "..."
    assert render_attachments([waiting], output="wide", now=NOW).count(long) == 1


def test_one_object_for_scripts() -> None:
    attachment = attachment_obj("a", vm="vm1", device={"name": "d"})
    assert render_object(attachment, output="name",
                         kind="usbattachment.usb.kubevirt-usb.io") == \
        "usbattachment.usb.kubevirt-usb.io/a\n"
    assert json.loads(render_object(attachment, output="json", kind="x")) == attachment


# ---- hostile strings --------------------------------------------------------------------------
# Objects whose fields hold anything JSON can: terminal escapes, carriage returns, newlines, bidi
# overrides, lone surrogates, rich-style markup, huge strings, or numbers, lists and maps where
# text belongs. Every output form renders; a table keeps one line per object, shows nothing a
# terminal would act on, and cuts huge cells.

_HOSTILE = st.one_of(
    st.text(alphabet=st.characters(codec=None), max_size=30),
    st.sampled_from(["\x1b[2J\x1b[31mred", "a\rb", "line1\nline2", "\u202eevil", "[bold]x[/]",
                     "\x9b31m", "\ud800", "<script>alert(1)</script>", "x" * 5000]),
)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _HOSTILE,
                     lambda inner: st.lists(inner, max_size=2)
                     | st.dictionaries(_HOSTILE, inner, max_size=2), max_leaves=4)
_DEVICE_FIELDS = ["node", "vendorId", "productId", "productName", "product", "serial",
                  "portPath", "state", "present", "busNumber", "deviceNumber", "vendorName",
                  "manufacturer", "speed", "lastSeen", "identity"]
_ATTACHMENT_FIELDS = ["phase", "device", "node", "bytesToVM", "bytesFromVM", "attachedSince",
                      "message", "lastError", "reconnects"]


def _hostile_object(fields: list[str], spec: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({
        "metadata": st.fixed_dictionaries({"name": st.just("obj1"),
                                           "namespace": st.just("default")}),
        "spec": spec,
        "status": st.dictionaries(st.sampled_from(fields), _JSON),
    })


_HOSTILE_DEVICES = st.lists(_hostile_object(_DEVICE_FIELDS, st.fixed_dictionaries(
    {}, optional={"claimRef": st.dictionaries(st.sampled_from(["namespace", "attachment", "vm"]),
                                              _JSON)})), max_size=3)
_HOSTILE_ATTACHMENTS = st.lists(_hostile_object(_ATTACHMENT_FIELDS, st.fixed_dictionaries(
    {}, optional={"vm": _JSON, "device": _JSON})), max_size=3)


def _assert_safe_table(text: str, *, rows: int) -> None:
    lines = text.splitlines()
    assert len(lines) == rows + 1
    assert all(len(line) < 20 * MAX_CELL for line in lines)
    hidden = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    assert not [ch for ch in text.replace("\n", "") if unicodedata.category(ch) in hidden]


@settings(max_examples=60)
@given(devices=_HOSTILE_DEVICES, output=st.sampled_from(OUTPUTS))
def test_hostile_device_fields_render_safely(devices: list[Any], output: str) -> None:
    text = render_devices(devices, output=output, now=NOW)
    if output in ("table", "wide"):
        _assert_safe_table(text, rows=len(devices))


@settings(max_examples=60)
@given(attachments=_HOSTILE_ATTACHMENTS, output=st.sampled_from(OUTPUTS))
def test_hostile_attachment_fields_render_safely(attachments: list[Any], output: str) -> None:
    text = render_attachments(attachments, output=output, now=NOW, with_namespace=True)
    if output in ("table", "wide"):
        _assert_safe_table(text, rows=len(attachments))


def test_a_terminal_escape_in_a_message_is_shown_not_acted_on() -> None:
    attachment = attachment_obj("a1", vm="vm1", device={"name": "d1"}, status={
        "phase": "Failed", "message": "\x1b[2J\x1b[Hall good\rline\u202e"})
    text = render_attachments([attachment], output="wide", now=NOW)
    assert "\\x1b[2J\\x1b[Hall good\\x0dline\\u202e" in text
    assert "\x1b" not in text
    assert "\r" not in text
