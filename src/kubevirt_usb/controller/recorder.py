"""Posting the controller's Events in the background, so the audit trail never slows a bind.

Events are best effort, as with client-go's recorder: a failed post is logged and dropped.
`flush()` waits until everything emitted so far was posted (or failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lightkube.resources.core_v1 import Event as EventResource

from kubevirt_usb.clock import WallClock, rfc3339
from kubevirt_usb.controller.events import Event, event_body
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import KubeError

log = logging.getLogger(__name__)



class EventRecorder:
    """Posts Events from a queue with a few concurrent senders."""

    def __init__(self, client: KubeClient, *, instance: str, wall: WallClock,
                 senders: int = 4) -> None:
        self.client = client
        self.instance = instance
        self.wall = wall
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.senders = senders
        self.posted = 0
        self.failed = 0
        self._tasks: list[asyncio.Task[None]] = []

    def emit(self, event: Event) -> None:
        self.queue.put_nowait(event)

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._send()) for _ in range(self.senders)]

    async def _send(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                body = event_body(event, now=rfc3339(self.wall()), instance=self.instance)
                await self.client.create(EventResource, body)
                self.posted += 1
            except KubeError as exc:
                self.failed += 1
                log.warning("cannot post Event %s for %s %s: %s", event.reason,
                            event.about.kind, event.about.name, exc.message)
            finally:
                self.queue.task_done()

    async def flush(self, *, timeout: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):  # not wait_for: see kubevirt_usb.tasks
            async with asyncio.timeout(timeout):
                await self.queue.join()

    async def stop(self, *, timeout: float = 5.0) -> None:
        if self._tasks:
            await self.flush(timeout=timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
