"""Events posted in the background; a failure is counted, never raised."""

from __future__ import annotations

import datetime as dt

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
