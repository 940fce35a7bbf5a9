"""The QMP client against a scripted peer and against a real (bootless) QEMU."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubevirt_usb.sandbox.qmp import QMPClient, QMPConnectionError, QMPError

Handler = Callable[[dict[str, Any], asyncio.StreamWriter], Awaitable[None]]


@pytest_asyncio.fixture
async def socket_dir() -> AsyncIterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="kvu-qmp-"))  # short: unix socket path limit
    yield directory
    shutil.rmtree(directory)


async def fake_qemu(path: Path, handle: Handler) -> asyncio.Server:
    """A QMP peer: greets, accepts qmp_capabilities, passes every other command to `handle`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = {"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}
        writer.write(json.dumps(greeting).encode() + b"\r\n")
        while line := await reader.readline():
            request = json.loads(line)
            if request["execute"] == "qmp_capabilities":
                writer.write(json.dumps({"return": {}, "id": request["id"]}).encode() + b"\r\n")
            else:
                await handle(request, writer)
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(path))


def send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\r\n")


async def test_execute_returns_the_result_and_maps_errors(socket_dir: Path) -> None:
    async def handle(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        if request["execute"] == "query-status":
            send(writer, {"return": {"status": "running"}, "id": request["id"]})
        else:
            error = {"class": "DeviceNotFound", "desc": "Device 'x' not found"}
            send(writer, {"error": error, "id": request["id"]})

    server = await fake_qemu(socket_dir / "qmp.sock", handle)
    client = await QMPClient.connect(socket_dir / "qmp.sock")
    try:
        assert await client.execute("query-status") == {"status": "running"}
        with pytest.raises(QMPError) as info:
            await client.execute("device_del", {"id": "x"})
        assert info.value.error_class == "DeviceNotFound"
        assert "Device 'x' not found" in str(info.value)
    finally:
        await client.close()
        server.close()


async def test_events_sent_before_the_reply_reach_a_listener(socket_dir: Path) -> None:
    async def handle(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        event = {"event": "DEVICE_DELETED", "data": {"device": "stick2"}, "timestamp": {}}
        send(writer, {**event, "data": {"device": "other"}})
        send(writer, event)
        send(writer, {"return": {}, "id": request["id"]})

    server = await fake_qemu(socket_dir / "qmp.sock", handle)
    client = await QMPClient.connect(socket_dir / "qmp.sock")
    try:
        with client.listen() as events:
            await client.execute("device_del", {"id": "stick2"})
            async with asyncio.timeout(5):
                event = await events.wait(
                    "DEVICE_DELETED", match=lambda e: e.data.get("device") == "stick2"
                )
        assert event.data == {"device": "stick2"}
    finally:
        await client.close()
        server.close()


async def test_a_peer_that_goes_away_fails_the_waiting_command(socket_dir: Path) -> None:
    async def handle(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await fake_qemu(socket_dir / "qmp.sock", handle)
    client = await QMPClient.connect(socket_dir / "qmp.sock")
    try:
        with pytest.raises(QMPConnectionError):
            await client.execute("quit")
    finally:
        await client.close()
        server.close()


async def test_nothing_listening_is_a_connection_error(socket_dir: Path) -> None:
    with pytest.raises(QMPConnectionError, match="no QMP socket"):
        await QMPClient.connect(socket_dir / "absent.sock", within=0.2)


@pytest.mark.qemu
async def test_real_qemu_answers_errors_and_shutdown_event(socket_dir: Path) -> None:
    path = socket_dir / "qmp.sock"
    process = await asyncio.create_subprocess_exec(
        "qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S",
        "-qmp", f"unix:{path},server=on,wait=off",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = await QMPClient.connect(path)
        assert client.greeting["version"]["qemu"]["major"] >= 7
        assert (await client.execute("query-status"))["status"] == "prelaunch"
        with pytest.raises(QMPError) as info:
            await client.execute("no-such-command")
        assert info.value.error_class == "CommandNotFound"
        with client.listen() as events:
            await client.execute("quit")
            async with asyncio.timeout(10):
                shutdown = await events.wait("SHUTDOWN")
        assert shutdown.data["reason"] == "host-qmp-quit"
        await client.close()
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
