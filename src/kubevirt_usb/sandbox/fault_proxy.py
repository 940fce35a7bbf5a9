"""A TCP proxy in front of the API emulator that can fail the network: `cut()` drops every open
connection at once (the agent and the controller see ECONNRESET / EOF without a websocket close
frame), and while `refusing` new connections are closed at once (the API server is unreachable).
The data-path tests and the chaos soak put it between the product and the API.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kubevirt_usb.sandbox.relay import pump


@dataclass
class FaultProxy:
    """Forwards TCP connections from `listen_port` to `target_port` on 127.0.0.1; `cut()` drops
    every open connection at once."""

    target_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    cuts: int = 0
    refusing: bool = False
    """While True, new connections are closed at once (the API server is unreachable)."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._open.update({writer, up_writer})

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._open.difference_update({writer, up_writer})

    def cut(self) -> int:
        """Abort every open connection (both sides); how many there were."""
        count = len(self._open)
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        self.cuts += 1
        return count

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
