"""Ending a task that is being stopped, without losing the caller's own cancellation.

On Python 3.11, `asyncio.wait_for` returns the inner result when a cancellation of the caller
arrives as the inner awaitable completes: the cancellation is lost and the caller goes on as if
nobody had asked it to stop (a stream went on streaming, a loop never ended). Waiting with a
time limit is `asyncio.timeout()` (it turns the lost race into a delivered cancellation); a task
being stopped is waited for with `end_task`.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def end_task(task: asyncio.Future[Any], *, within: float) -> None:
    """Wait up to `within` seconds for `task` to end, then cancel it and wait until it has
    ended. Its result, failure or cancellation is dropped (the caller is stopping it). A
    cancellation of the caller is never dropped: it cancels `task` too, waits until it has
    ended and propagates."""
    try:
        await asyncio.wait({task}, timeout=within)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        raise
    if not task.cancelled():
        task.exception()  # retrieved: asyncio does not report it as never retrieved
