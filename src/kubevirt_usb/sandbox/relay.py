"""Copying one stream into another: the byte relay under the sandbox's TCP bridges (the slot
bridge to a VM guest's usb-redir sockets, the fault proxy in front of the API emulator)."""

from __future__ import annotations

import asyncio
import contextlib


async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy src to dst until src ends, then close dst."""
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while data := await src.read(1 << 18):
            dst.write(data)
            await dst.drain()
    dst.close()
