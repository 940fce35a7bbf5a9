"""Events posted in the background; a failure is counted, never raised."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from kubevirt_usb.controller.events import Event, attachment_ref
from kubevirt_usb.controller.recorder import EventRecorder
from tests.controller.cluster import Kit

MOMENT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


async def test_events_are_posted_and_failures_counted(kit: Kit) -> None:
    recorder = EventRecorder(kit.client, instance="r1", wall=lambda: MOMENT, senders=2)
    recorder.start()
    recorder.emit(Event(about=attachment_ref(kit.namespace, "a1", "u"), type="Normal",
                        reason="Bound", message="hello"))
    recorder.emit(Event(about=attachment_ref("no-such-namespace", "a1", "u"), type="Normal",
                        reason="Bound", message="lost"))
    await recorder.stop()
    assert (recorder.posted, recorder.failed) == (1, 1)
    [posted] = await kit.events(name="a1")
    assert (posted["message"], posted["firstTimestamp"], posted["reportingInstance"]) == (
        "hello", "2026-01-02T03:04:05Z", "r1")


async def test_a_flush_cancelled_as_the_last_event_is_posted_is_cancelled(kit: Kit) -> None:
    recorder = EventRecorder(kit.client, instance="r1", wall=lambda: MOMENT)  # no senders:
    recorder.emit(Event(about=attachment_ref(kit.namespace, "a1", "u"), type="Normal",
                        reason="Bound", message="hello"))  # this test posts it
    flushing = asyncio.create_task(recorder.flush(timeout=60))
    await asyncio.sleep(0)  # it waits for the event to be posted
    recorder.queue.get_nowait()
    recorder.queue.task_done()  # posted, as the controller stopping cancels the flush
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
