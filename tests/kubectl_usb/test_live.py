"""watch: state from events, redrawn screens and aligned change lines."""

from __future__ import annotations

import datetime as dt

from kubevirt_usb.kubectl_usb.live import (
    CLEAR,
    Lines,
    apply_event,
    as_deleted,
    frame,
    sorted_objects,
)
from kubevirt_usb.kubectl_usb.views import attachment_table
from tests.kubectl_usb.cluster import attachment_obj

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
A = attachment_obj("a", vm="vm1", device={"name": "d1"}, status={"phase": "Pending"})
B = attachment_obj("b", vm="vm2", device={"name": "d2"})


def test_events_change_the_state() -> None:
    state = apply_event({}, "ADDED", B)
    state = apply_event(state, "ADDED", A)
    assert [o["metadata"]["name"] for o in sorted_objects(state)] == ["a", "b"]
    moved = {**A, "status": {"phase": "Attached"}}
    state = apply_event(state, "MODIFIED", moved)
    assert sorted_objects(state)[0]["status"]["phase"] == "Attached"
    assert apply_event(state, "BOOKMARK", A) == state
    assert sorted_objects(apply_event(state, "DELETED", A)) == [B]


def test_a_deleted_object_reads_as_deleted() -> None:
    assert as_deleted(A, field="phase")["status"]["phase"] == "Deleted"
    assert A["status"]["phase"] == "Pending"


def test_a_frame_clears_the_screen() -> None:
    screen = frame(attachment_table([A], now=NOW), title="USB attachments")
    assert screen.startswith(CLEAR + "USB attachments\n\nNAME")
    assert frame(attachment_table([], now=NOW), title="t").endswith("(none)\n")


def test_change_lines_align_with_the_first_table() -> None:
    lines = Lines(lambda objs: attachment_table(list(objs), now=NOW), status_field="phase")
    first = lines.start([A]).splitlines()
    change = lines.change("DELETED", A).splitlines()
    assert len(change) == 1
    assert first[0].index("PHASE") == change[0].index("Deleted")


def test_an_empty_first_table_leaves_room_for_what_comes() -> None:
    lines = Lines(lambda objs: attachment_table(list(objs), now=NOW), status_field="phase",
                  min_widths=[10, 5])
    header = lines.start([])
    assert header.index("VM") == 13
    assert lines.change("ADDED", A).index("vm1") == 13
    longer = attachment_obj("a-much-longer-name", vm="vm1", device={})
    assert lines.change("ADDED", longer).index("vm1") == len("a-much-longer-name") + 3
    assert lines.change("ADDED", A).index("vm1") == len("a-much-longer-name") + 3
