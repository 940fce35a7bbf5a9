"""The work queue: each key once, one worker per key, timers and backoff."""

from __future__ import annotations

import asyncio

from kubevirt_usb.controller.workqueue import WorkQueue
from kubevirt_usb.kube.retry import Backoff


async def test_keys_are_deduplicated_and_kept_in_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_all(["a", "b", "a", "c"])
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_in_progress_is_queued_again_only_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0
    assert not q.idle
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert q.idle


async def test_a_waiting_worker_wakes_when_a_key_arrives() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 5) == "x"


async def test_add_after_and_retry_use_timers() -> None:
    q: WorkQueue[str] = WorkQueue(backoff=Backoff(base=0.01, cap=0.02), rand=lambda: 0.0)
    q.add_after("later", 0.01)
    assert len(q) == 0
    assert not q.idle
    assert await asyncio.wait_for(q.get(), 5) == "later"
    q.done("later")
    assert q.retry("k") == 0.005  # half the first step, no jitter
    assert q.retry("k") == 0.01  # grows (the earlier, sooner timer stays)
    q.forget("k")
    assert await asyncio.wait_for(q.get(), 5) == "k"


async def test_close_wakes_workers_and_drops_timers() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("never", 60)
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.close()
    await asyncio.gather(getter, return_exceptions=True)
    assert getter.cancelled() or isinstance(getter.exception(), asyncio.CancelledError)
    q.add("ignored")
    assert len(q) == 0
