"""The byte relay under the sandbox's bridges, over real sockets."""

from __future__ import annotations

import asyncio
import socket

from kubevirt_usb.sandbox.relay import pump


async def test_pump_copies_until_the_source_ends_then_closes_the_destination() -> None:
    # sender -> source | pump | destination -> receiver; `streams` keeps every pair alive (a
    # collected one would close its socket)
    ends = [*socket.socketpair(), *socket.socketpair()]
    streams = [await asyncio.open_connection(sock=end) for end in ends]
    (_, sender), (source, _), (_, destination), (receiver, _) = streams
    payload = bytes(range(256)) * 4096  # 1 MiB: more than one read
    sender.write(payload)
    sender.close()
    _, received, _ = await asyncio.gather(pump(source, destination), receiver.read(),
                                          sender.wait_closed())
    assert received == payload  # all of it, then the end of the stream
    assert destination.is_closing()
    for _, writer in streams:
        writer.close()
