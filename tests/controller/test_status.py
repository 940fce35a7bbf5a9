"""The controller's status fields: applied only when they change; transition times kept; the
agent's phase and message left alone when asked."""

from __future__ import annotations

from kubevirt_usb.controller.model import Attachment, AttachmentStatus, Condition
from kubevirt_usb.controller.status import DesiredStatus, condition, status_fields

BOUND = condition("Bound", True, "Bound", "bound")


def test_a_new_status_carries_every_owned_field_with_transition_times() -> None:
    a = Attachment(namespace="ns", name="a", generation=2)
    fields = status_fields(a, DesiredStatus(phase="Bound", message="m", device="d", node="n",
                                            vmi_uid="i", conditions=(BOUND,)), now="T1")
    assert fields == {"phase": "Bound", "message": "m", "device": "d", "node": "n",
                      "vmiUID": "i", "observedGeneration": 2,
                      "conditions": [{"type": "Bound", "status": "True", "reason": "Bound",
                                      "message": "bound", "lastTransitionTime": "T1",
                                      "observedGeneration": 2}]}


def test_the_same_status_is_not_written_again() -> None:
    held = Condition("Bound", "True", "Bound", "bound", last_transition_time="T0")
    theirs = Condition("Connected", "True", "Attached", "streaming")
    a = Attachment(namespace="ns", name="a", generation=2, status=AttachmentStatus(
        phase="Bound", message="m", device="d", conditions=(held, theirs),
        observed_generation=2))
    desired = DesiredStatus(phase="Bound", message="m", device="d", conditions=(BOUND,))
    assert status_fields(a, desired, now="T1") is None
    newer = Attachment(namespace="ns", name="a", generation=3, status=a.status)
    fields = status_fields(newer, desired, now="T1")
    assert fields is not None
    assert fields["conditions"][0]["lastTransitionTime"] == "T0"
    assert [c["type"] for c in fields["conditions"]] == ["Bound"]  # the agent's stay its own


def test_left_to_the_agent_phase_and_message_are_not_applied() -> None:
    held = Condition("Bound", "True", "Bound", "bound", last_transition_time="T0")
    a = Attachment(namespace="ns", name="a", status=AttachmentStatus(
        phase="Attached", message="streaming", device="d", conditions=(held,),
        observed_generation=1))
    assert status_fields(a, DesiredStatus(phase=None, message="x", device="d",
                                          conditions=(BOUND,)), now="T1") is None
    lost = condition("Bound", False, "Gone", "gone")
    fields = status_fields(a, DesiredStatus(phase=None, message="x", conditions=(lost,)),
                           now="T1")
    assert fields is not None
    assert "phase" not in fields
    assert "message" not in fields
    assert "device" not in fields
    assert fields["conditions"][0]["lastTransitionTime"] == "T1"
