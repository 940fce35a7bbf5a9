"""--wait: progress of an attach or detach, and the loop that waits for it (fake clock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.waiting import (
    Done,
    Progress,
    Refused,
    Waiting,
    attach_progress,
    detach_progress,
    wait_for,
)
from tests.kubectl_usb.cluster import attachment_obj, field_notes_devices

WANTED = "default/vm1-46f4-0001-aaa1"
MINE = {"namespace": "default", "attachment": "vm1-46f4-0001-aaa1", "vm": "vm1"}
THEIRS = {"namespace": "lab", "attachment": "x-46f4-0001-aaa1", "vm": "x"}


def attachment(phase: str | None = None, message: str = "") -> dict[str, object]:
    status = {"phase": phase, "message": message} if phase else {}
    return attachment_obj("vm1-46f4-0001-aaa1", vm="vm1", device={"serial": "AAA1"},
                          status=status)


def test_attached_is_done() -> None:
    progress = attach_progress(attachment("Attached"), None, wanted=WANTED)
    assert isinstance(progress, Done)


def test_waiting_phases_show_their_message() -> None:
    assert attach_progress(attachment(), None, wanted=WANTED) == Waiting("Pending")
    assert attach_progress(attachment("NoFreeSlot", "all 4 slots busy"), None,
                           wanted=WANTED) == Waiting("NoFreeSlot: all 4 slots busy")
    mine = field_notes_devices(claim_aaa1=MINE)[0]
    assert attach_progress(attachment("Bound"), mine, wanted=WANTED) == Waiting("Bound")


def test_not_allowed_is_refused_with_the_allow_command() -> None:
    progress = attach_progress(attachment("NotAllowed"), None, wanted=WANTED)
    assert isinstance(progress, Refused)
    assert progress.error.code is ExitCode.REFUSED
    assert progress.error.message == (
        f"attachment {WANTED} is NotAllowed: no USBPolicy lets namespace default use this "
        "device; a cluster admin can allow it: kubectl usb allow --namespace default "
        "--serial AAA1")
    told = attach_progress(attachment("NotAllowed", "ask: kubectl usb allow --namespace "
                                      "default --serial AAA1"), None, wanted=WANTED)
    assert isinstance(told, Refused)
    assert told.error.message.count("kubectl usb allow") == 1


def test_failed_is_refused() -> None:
    progress = attach_progress(attachment("Failed", "device cannot be opened"), None,
                               wanted=WANTED)
    assert isinstance(progress, Refused)
    assert progress.error.message == (f"attachment {WANTED} Failed: device cannot be opened")


def test_a_device_taken_by_someone_else_meanwhile_is_refused() -> None:
    theirs = field_notes_devices(claim_aaa1=THEIRS)[0]
    progress = attach_progress(attachment("WaitingForDevice"), theirs, wanted=WANTED)
    assert isinstance(progress, Refused)
    assert "is in use by VM lab/x" in progress.error.message


def test_a_deleted_attachment_ends_the_wait() -> None:
    progress = attach_progress(None, None, wanted=WANTED)
    assert isinstance(progress, Refused)
    assert progress.error.code is ExitCode.NOT_FOUND


def test_detach_waits_for_deletion_then_release() -> None:
    key = ("default", "vm1-46f4-0001-aaa1")
    held = field_notes_devices(claim_aaa1=MINE)
    assert detach_progress([attachment()], held, gone=[key]) == Waiting(
        "waiting for default/vm1-46f4-0001-aaa1 to be deleted")
    assert detach_progress([], held, gone=[key]) == Waiting(
        "waiting for 46f4-0001-aaa1 to be released")
    assert isinstance(detach_progress([], field_notes_devices(), gone=[key]), Done)
    other = field_notes_devices(claim_aaa1=THEIRS)
    assert isinstance(detach_progress([], other, gone=[key]), Done)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def steps(*answers: Progress) -> Callable[[], Awaitable[Progress]]:
    queue = list(answers)

    async def step() -> Progress:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return step


async def test_wait_reports_each_new_line_once_and_returns_when_done() -> None:
    fake, lines = FakeTime(), list[str]()
    done = await wait_for(steps(Waiting("Pending"), Waiting("Pending"), Waiting("Bound"),
                                Done({"ok": True})),
                          timeout=10, what="it", clock=fake.clock, sleep=fake.sleep,
                          report=lines.append)
    assert done.obj == {"ok": True}
    assert lines == ["Pending", "Bound"]


async def test_wait_raises_a_refusal() -> None:
    fake = FakeTime()
    refusal = CLIError("no", code=ExitCode.REFUSED)
    with pytest.raises(CLIError) as caught:
        await wait_for(steps(Waiting("Pending"), Refused(refusal)), timeout=10, what="it",
                       clock=fake.clock, sleep=fake.sleep, report=lambda _: None)
    assert caught.value is refusal


async def test_wait_times_out_naming_the_last_state() -> None:
    fake = FakeTime()
    with pytest.raises(CLIError) as caught:
        await wait_for(steps(Waiting("VMNotReady: VM is stopped")), timeout=3,
                       what="default/a to be Attached", clock=fake.clock, sleep=fake.sleep,
                       report=lambda _: None, interval=1)
    assert caught.value.code is ExitCode.TIMEOUT
    assert caught.value.message == ("timed out after 3s waiting for default/a to be Attached "
                                    "(last seen: VMNotReady: VM is stopped)")
    assert sum(fake.slept) == 3
