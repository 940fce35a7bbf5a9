"""The fault proxy in front of the API: forwards, cuts every open connection, refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio

from kubevirt_usb.sandbox.fault_proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = FaultProxy(target_port=server.sockets[0].getsockname()[1])
    await proxy.start()
    yield proxy
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_it_forwards_until_cut_and_then_the_client_sees_the_connection_end(
        proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    assert proxy.cut() == 2  # both sides of the one connection
    with contextlib.suppress(ConnectionResetError):  # an abort may also read as a reset
        assert await asyncio.wait_for(reader.read(1), 10) == b""
    writer.close()
    reader, writer = await _connect(proxy)  # a new connection works again
    writer.write(b"pong")
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"pong"
    writer.close()


async def test_while_refusing_new_connections_are_closed_at_once(proxy: FaultProxy) -> None:
    proxy.refusing = True
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(1), 10) == b""
    writer.close()
    proxy.refusing = False
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    writer.close()
