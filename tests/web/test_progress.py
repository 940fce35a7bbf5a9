"""How far an attach or detach has come, from the attachment as the API shows it."""

from __future__ import annotations

from typing import Any

import pytest

from kubevirt_usb.web.progress import attach_progress, detach_progress


def _attachment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "vm1-abc"}, "spec": {"vm": "vm1"}, "status": status}


@pytest.mark.parametrize(("status", "step", "text"), [
    ({}, 0, "Waiting for the controller"),
    ({"phase": "Bound", "device": "d1", "node": "node1"}, 1, "Bound to d1 on node1"),
    ({"phase": "Connecting"}, 2, "connecting the device"),
    ({"phase": "Connecting", "message": "opening 2-1"}, 2, "opening 2-1"),
])
def test_an_attach_on_its_way_keeps_asking(status: dict[str, Any], step: int,
                                           text: str) -> None:
    shown = attach_progress(_attachment(**status), vm="vm1", device="serial=AAA1")
    assert (shown.settled, shown.step, shown.tone) == (False, step, "info")
    assert text in shown.text
    assert shown.title == "Attaching serial=AAA1 to vm1"


def test_attached_settles_with_where_and_how_much() -> None:
    shown = attach_progress(_attachment(phase="Attached", device="d1", bytesToVM=1024,
                                        bytesFromVM=1024), vm="vm1", device="serial=AAA1")
    assert (shown.settled, shown.tone, shown.step, shown.title) == (True, "success", 3,
                                                                     "Attached to vm1")
    assert shown.text == "d1 is in vm1."


@pytest.mark.parametrize(("phase", "tone"), [("NotAllowed", "danger"), ("Failed", "danger"),
                                             ("NoFreeSlot", "warning"),
                                             ("WaitingForDevice", "warning"),
                                             ("VMNotReady", "warning")])
def test_a_refusal_settles_with_the_controllers_reason(phase: str, tone: str) -> None:
    said = attach_progress(_attachment(phase=phase, message=f"because <{phase}>\x1b"), vm="vm1",
                           device="x")
    assert (said.settled, said.tone, said.step) == (True, tone, -1)
    assert said.text == f"because <{phase}>\\x1b"
    silent = attach_progress(_attachment(phase=phase), vm="vm1", device="x")
    assert silent.text  # a default explanation when the controller gave none


def test_an_attachment_deleted_meanwhile() -> None:
    assert attach_progress(None, vm="vm1", device="x").title == "Not attached to vm1"
    going = _attachment(phase="Attached")
    going["metadata"]["deletionTimestamp"] = "2026-11-01T10:00:00Z"
    assert attach_progress(going, vm="vm1", device="x").title == "Detaching"


def test_detach_asks_until_the_attachment_is_gone() -> None:
    waiting = detach_progress(_attachment(phase="Attached"), vm="vm1")
    assert (waiting.settled, waiting.title) == (False, "Detaching from vm1")
    done = detach_progress(None, vm="vm1")
    assert (done.settled, done.tone, done.title) == (True, "success", "Detached from vm1")
