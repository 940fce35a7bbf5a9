"""The controller's queue of objects to reconcile (client-go's workqueue, reduced).

A key is in the queue at most once; a key being processed is never handed to a second worker,
and when it is added again meanwhile it is queued once more after `done`. So each object is
reconciled by one worker at a time, in the order keys were first added, and a burst of events
for one object costs one reconcile. `add_after` adds a key later (a timer, not a loop);
`retry` adds it after a per-key exponential backoff that `forget` resets.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from kubevirt_usb.kube.retry import Backoff, RandomSource, backoff_delay

K = TypeVar("K", bound=Hashable)
RETRY_BACKOFF = Backoff(base=0.05, cap=30.0)


class WorkQueue(Generic[K]):
    def __init__(self, *, backoff: Backoff = RETRY_BACKOFF,
                 rand: RandomSource = random.random) -> None:
        self._queue: OrderedDict[K, None] = OrderedDict()
        self._processing: set[K] = set()
        self._again: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._ready = asyncio.Event()
        self._closed = False
        self.backoff = backoff
        self.rand = rand

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, in progress or scheduled."""
        return not self._queue and not self._processing and not self._timers

    def add(self, key: K) -> None:
        if self._closed:
            return
        if key in self._processing:
            self._again.add(key)
            return
        if key not in self._queue:
            self._queue[key] = None
            self._notify()

    def add_all(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.add(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` in `delay` seconds (an earlier pending timer for it wins)."""
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        pending = self._timers.get(key)
        if pending is not None:
            if pending.when() <= loop.time() + delay:
                return
            pending.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: K) -> float:
        """Add `key` again after its backoff; returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = backoff_delay(failures, policy=self.backoff, rand=self.rand)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key was handled: its next failure starts the backoff afresh."""
        self._failures.pop(key, None)

    def _notify(self) -> None:
        self._ready.set()

    async def get(self) -> K:
        """The next key to process; call `done(key)` when finished with it."""
        while not self._queue and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            raise asyncio.CancelledError
        key, _ = self._queue.popitem(last=False)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def close(self) -> None:
        """Stop: cancel timers, wake waiting workers (their `get` raises CancelledError)."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._notify()
