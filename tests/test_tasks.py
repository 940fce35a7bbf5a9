"""Ending a task being stopped: the task's own outcome is dropped, the caller's cancellation
never is."""

from __future__ import annotations

import asyncio

import pytest

from kubevirt_usb.tasks import end_task


async def test_a_caller_cancelled_as_the_task_ends_is_still_cancelled() -> None:
    ending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stopping = asyncio.create_task(end_task(ending, within=60))
    await asyncio.sleep(0)  # end_task waits for it
    ending.set_result(None)  # the task ends...
    stopping.cancel()  # ...as whoever stops it is cancelled itself
    with pytest.raises(asyncio.CancelledError):
        await stopping


async def test_a_caller_cancelled_while_waiting_cancels_the_task_too() -> None:
    forever = asyncio.create_task(asyncio.Event().wait())
    stopping = asyncio.create_task(end_task(forever, within=60))
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert forever.cancelled()


async def test_a_task_that_does_not_end_in_time_is_cancelled() -> None:
    forever = asyncio.create_task(asyncio.Event().wait())
    await end_task(forever, within=0)
    assert forever.cancelled()


async def test_the_tasks_failure_or_cancellation_is_dropped() -> None:
    async def fail() -> None:
        raise RuntimeError("broken")

    failed = asyncio.create_task(fail())
    await end_task(failed, within=60)
    cancelled = asyncio.create_task(asyncio.sleep(60))
    cancelled.cancel()
    await end_task(cancelled, within=60)
    assert isinstance(failed.exception(), RuntimeError)
    assert cancelled.cancelled()
