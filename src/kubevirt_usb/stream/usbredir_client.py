"""The websocket to a VMI's `usbredir` subresource, spoken exactly like `virtctl usbredir`.

`GET /apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{vmi}/usbredir`
upgraded to a websocket with subprotocol `plain.kubevirt.io`, bearer token, TLS with the cluster CA,
usbredir bytes in binary frames (text frames carry nothing). Nothing on the path sends keepalives,
so this side pings. Buffers are bounded both ways: a slow reader slows the writer down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
)
from websockets.typing import Subprotocol

from kubevirt_usb import __version__
from kubevirt_usb.stream.endpoint import APIEndpoint, usbredir_path
from kubevirt_usb.stream.failures import ConnectFailed, StreamBroken, rejection

SUBPROTOCOL = "plain.kubevirt.io"
USER_AGENT = f"kubevirt-usb/{__version__}"
MAX_FRAME = 1 << 20
"""Largest frame accepted from the server (virt-handler sends at most 10226 bytes per frame)."""
MAX_QUEUED_FRAMES = 16
WRITE_LIMIT = 1 << 16
"""Bytes the websocket may buffer for sending before `send` waits for the network."""
CHUNK = 1 << 16
"""Bytes read from the local usbredir connection per frame."""


@dataclass(kw_only=True)
class ByteCounters:
    """Bytes a stream carried, counted as they are delivered."""

    to_vm: int = 0
    """From the local usbredir host (the device side) to the VM."""
    from_vm: int = 0


class UsbredirConnection:
    """One open usbredir stream to a VMI."""

    def __init__(self, websocket: ClientConnection) -> None:
        self._ws = websocket

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    @property
    def latency(self) -> float:
        """Round trip of the last answered ping, in seconds (0 until a pong came back)."""
        return self._ws.latency

    async def send(self, data: bytes) -> None:
        """Send usbredir bytes as one binary frame; waits while the network is backed up."""
        try:
            await self._ws.send(data)
        except ConnectionClosedOK:
            raise
        except ConnectionClosed as exc:
            raise _broken(exc) from exc

    async def recv(self) -> bytes | None:
        """The next usbredir bytes; None once the stream closed cleanly. Skips text frames."""
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosedOK:
                return None
            except ConnectionClosed as exc:
                raise _broken(exc) from exc
            if isinstance(message, bytes):
                return message

    async def close(self) -> None:
        await self._ws.close()

    async def __aenter__(self) -> UsbredirConnection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


async def open_usbredir(
    endpoint: APIEndpoint,
    *,
    namespace: str,
    vmi: str,
    connect_timeout: float = 10.0,
    ping_interval: float | None = 10.0,
    ping_timeout: float | None = 20.0,
) -> UsbredirConnection:
    """Open the VMI's usbredir stream. Raises `HandshakeRejected` (with the server's `Status`
    message) when the server refuses it, `ConnectFailed` when the server cannot be reached."""
    url = endpoint.websocket_url(usbredir_path(namespace=namespace, vmi=vmi))
    headers = {}
    token = endpoint.bearer_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tls: dict[str, Any] = {}
    if endpoint.is_tls():
        tls["ssl"] = endpoint.ssl_context()
        if endpoint.tls_server_name:
            tls["server_hostname"] = endpoint.tls_server_name
    try:
        websocket = await connect(
            url,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers=headers,
            user_agent_header=USER_AGENT,
            compression=None,
            proxy=endpoint.proxy,
            open_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_size=MAX_FRAME,
            max_queue=MAX_QUEUED_FRAMES,
            write_limit=WRITE_LIMIT,
            **tls,
        )
    except InvalidStatus as exc:
        response = exc.response
        raise rejection(status_code=response.status_code, body=response.body,
                        phrase=response.reason_phrase) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ConnectFailed(detail=f"{url}: {exc or type(exc).__name__}") from exc
    return UsbredirConnection(websocket)


async def splice(
    conn: UsbredirConnection,
    *,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counters: ByteCounters,
    chunk_size: int = CHUNK,
) -> None:
    """Copy usbredir bytes between a local connection and the stream until either side ends.
    Returns when one side closed cleanly; raises `StreamBroken` when one broke. Closes both."""
    up = asyncio.create_task(_local_to_vm(reader, conn, counters, chunk_size))
    down = asyncio.create_task(_vm_to_local(conn, writer, counters))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        results = await asyncio.gather(up, down, return_exceptions=True)
        await _close_both(conn, writer)
    failures = [r for r in results if isinstance(r, Exception)]
    failures.sort(key=lambda failure: not isinstance(failure, StreamBroken))
    if failures:
        raise failures[0]


async def serve_usbredir_bridge(
    endpoint: APIEndpoint,
    *,
    namespace: str,
    vmi: str,
    listen_host: str = "127.0.0.1",
    listen_port: int = 0,
    on_listening: Callable[[int], None] | None = None,
    connect_timeout: float = 10.0,
    ping_interval: float | None = 10.0,
    counters: ByteCounters | None = None,
) -> ByteCounters:
    """What `virtctl usbredir` does for the stock tool: listen, take ONE connection (from
    `usbredirect --to host:port`), then open the VMI's stream and splice the two. The stream is
    opened only once the tool connected, so a device it could not open never takes a slot.
    `on_listening` gets the port (useful with `listen_port=0`)."""
    counters = counters if counters is not None else ByteCounters()
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if accepted.done():
            writer.close()  # one device per bridge, as usbredirect handles one per process
        else:
            accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_client, listen_host, listen_port)
    try:
        if on_listening is not None:
            on_listening(server.sockets[0].getsockname()[1])
        reader, writer = await accepted
    finally:
        server.close()
    try:
        conn = await open_usbredir(endpoint, namespace=namespace, vmi=vmi,
                                   connect_timeout=connect_timeout, ping_interval=ping_interval)
    except BaseException:
        writer.close()
        raise
    await splice(conn, reader=reader, writer=writer, counters=counters)
    return counters


async def _local_to_vm(reader: asyncio.StreamReader, conn: UsbredirConnection,
                       counters: ByteCounters, chunk_size: int) -> None:
    while True:
        try:
            data = await reader.read(chunk_size)
        except OSError as exc:
            raise StreamBroken(side="local", detail=str(exc) or type(exc).__name__) from exc
        if not data:
            return
        try:
            await conn.send(data)
        except ConnectionClosedOK:
            return
        counters.to_vm += len(data)


async def _vm_to_local(conn: UsbredirConnection, writer: asyncio.StreamWriter,
                       counters: ByteCounters) -> None:
    while (data := await conn.recv()) is not None:
        try:
            writer.write(data)
            await writer.drain()
        except OSError as exc:
            raise StreamBroken(side="local", detail=str(exc) or type(exc).__name__) from exc
        counters.from_vm += len(data)


async def _close_both(conn: UsbredirConnection, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionClosed):
        await conn.close()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _broken(exc: ConnectionClosed) -> StreamBroken:
    """The peer's close code, else ours (1011 after a missed ping), else 1006: no close frame."""
    close = exc.rcvd or exc.sent
    if close is None:
        return StreamBroken(side="remote", code=1006, detail=str(exc))
    return StreamBroken(side="remote", code=close.code, detail=close.reason or str(exc))
