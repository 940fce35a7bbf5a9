"""The attachment status the agent applies, computed from plain values."""

from __future__ import annotations

from kubevirt_usb.redirect import status
from kubevirt_usb.redirect.outcome import Cause, Context, Outcome, decide
from kubevirt_usb.redirect.pathchoice import API, Local, PathReason
from kubevirt_usb.redirect.status import StreamStatus, path_chosen, status_fields

CTX = Context(device="USB device d", node="node1", port_path="2-1", namespace="default",
              vm="vm1")
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:01:00Z"


def test_a_new_stream_continues_the_attachments_counters() -> None:
    fresh = status.seeded({"bytesToVM": 10, "bytesFromVM": 2, "reconnects": 3,
                           "phase": "Attached"}, now=T0)
    assert (fresh.bytes_to_vm, fresh.bytes_from_vm, fresh.reconnects) == (10, 2, 3)
    assert fresh.phase == "Connecting"
    assert status.seeded(None, now=T0).bytes_to_vm == 0
    assert status.seeded({"bytesToVM": "junk"}, now=T0).bytes_to_vm == 0


def test_attached_sets_the_condition_true_and_attached_since() -> None:
    st = status.attached(status.seeded(None, now=T0), message="Streaming.", now=T1,
                         reconnect=False)
    fields = status.status_fields(st)
    assert fields["phase"] == "Attached"
    assert fields["attachedSince"] == T1
    assert fields["conditions"] == [{"type": "Connected", "status": "True", "reason": "Attached",
                                     "message": "Streaming.", "lastTransitionTime": T1}]
    assert fields["reconnects"] == 0
    assert "lastError" not in fields


def test_a_failure_clears_attached_since_and_keeps_the_error() -> None:
    st = status.attached(status.seeded(None, now=T0), message="m", now=T1, reconnect=False)
    result = Outcome(cause=Cause.NO_FREE_SLOT, kubevirt="Internal error occurred: ...")
    st = status.ended(st, decision=decide(result, CTX), outcome=result, now=T2)
    fields = status.status_fields(st)
    assert fields["phase"] == "Failed"
    assert "attachedSince" not in fields
    assert fields["lastError"] == "NoFreeSlot: Internal error occurred: ..."
    condition = fields["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "NoFreeSlot")
    assert condition["lastTransitionTime"] == T2


def test_the_transition_time_moves_only_when_connected_flips() -> None:
    st = status.seeded(None, now=T0)
    st = status.connecting(st, message="again", now=T1)
    assert st.transition_time == T0
    st = status.attached(st, message="m", now=T1, reconnect=True)
    assert (st.transition_time, st.reconnects) == (T1, 1)


def test_only_counter_changes_are_recognised() -> None:
    st = status.seeded(None, now=T0)
    assert status.only_counters_changed(st, status.counted(st, to_vm=5, from_vm=1))
    assert not status.only_counters_changed(st, status.connecting(st, message="x", now=T0))


def test_the_apply_body_names_the_attachment() -> None:
    body = status.apply_object(namespace="default", name="att1",
                               status=status.seeded(None, now=T0))
    assert body["kind"] == "USBAttachment"
    assert body["metadata"] == {"name": "att1", "namespace": "default"}
    assert body["status"]["bytesToVM"] == 0


def test_the_path_and_its_reason_are_published_with_the_slot_the_agent_took() -> None:
    local = Local(pid=120, slot=3, pod="virt-launcher-vm1-abcde",
                  path="/proc/120/root/run/kubevirt-private/u/virt-usbredir-3")
    on_local = status_fields(path_chosen(StreamStatus(), local))
    assert {k: on_local[k] for k in ("path", "pathReason", "slot", "slotKind")} == {
        "path": "Local", "pathReason": "SameNode", "slot": 3, "slotKind": "Direct"}
    assert "slot 3 of virt-launcher pod virt-launcher-vm1-abcde" in on_local["pathMessage"]
    moved = API(reason=PathReason.VMI_ON_OTHER_NODE, message="VMI default/vm1 runs on node2.")
    on_api = status_fields(path_chosen(path_chosen(StreamStatus(), local), moved))
    assert {k: on_api.get(k) for k in ("path", "pathReason", "pathMessage", "slot",
                                        "slotKind")} == {
        "path": "API", "pathReason": "VMIOnOtherNode",
        "pathMessage": "VMI default/vm1 runs on node2.", "slot": None, "slotKind": "VirtHandler"}
    full = API(reason=PathReason.NO_FREE_SLOT, message="All usb-redir slots are held.")
    assert "slotKind" not in status_fields(path_chosen(StreamStatus(), full))
    assert "path" not in status_fields(StreamStatus())


def test_the_end_of_a_binding_removes_what_only_a_running_stream_holds() -> None:
    local = Local(pid=120, slot=3, pod="virt-launcher-vm1-abcde",
                  path="/proc/120/root/run/kubevirt-private/u/virt-usbredir-3")
    running = status.counted(status.attached(path_chosen(status.seeded(None, now=T0), local),
                                             message="Streaming.", now=T1, reconnect=False),
                             to_vm=4096, from_vm=64)
    broke = status.ended(running, decision=decide(Outcome(cause=Cause.STREAM_BROKEN,
                                                          detail="code 1006"), CTX),
                         outcome=Outcome(cause=Cause.STREAM_BROKEN, detail="code 1006"), now=T2)
    fields = status.released_fields(broke, now=T2)
    for stream_only in ("path", "pathReason", "pathMessage", "slot", "slotKind", "attachedSince",
                        "phase", "message"):
        assert stream_only not in fields
    assert (fields["bytesToVM"], fields["bytesFromVM"], fields["reconnects"]) == (4096, 64, 0)
    assert fields["lastError"] == broke.last_error
    assert fields["conditions"] == [{
        "type": "Connected", "status": "False", "reason": "Released",
        "message": "The stream ended: the attachment no longer holds the device.",
        "lastTransitionTime": T2}]
    body = status.released_object(namespace="default", name="att1", status=running, now=T2)
    assert body["metadata"] == {"name": "att1", "namespace": "default"}
    assert body["status"]["conditions"][0]["lastTransitionTime"] == T2  # it was connected
    assert "lastError" not in body["status"]
