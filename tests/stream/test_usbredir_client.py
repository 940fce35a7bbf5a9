"""The usbredir websocket client against the virt-api emulator on a real TLS server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from kubevirt_usb.stream.endpoint import APIEndpoint, StaticToken, TokenFile
from kubevirt_usb.stream.failures import ConnectFailed, HandshakeRejected, Retry, StreamBroken
from kubevirt_usb.stream.usbredir_client import (
    ByteCounters,
    UsbredirConnection,
    open_usbredir,
    serve_usbredir_bridge,
    splice,
)
from tests.sandbox.usbredir_harness import (
    NAMESPACE,
    FakeContext,
    FakeSlot,
    TLSFiles,
    eventually,
    fake_slots,
    make_app,
    make_tls,
    make_vmi,
    pattern,
    serve,
    settled,
    short_dir,
)

ALICE = "alice-token"
TOKENS = {ALICE: UserInfo(name="alice"), "bob-token": UserInfo(name="bob"),
          "carol-token": UserInfo(name="carol")}
BUSY = "Internal error occurred: Can't connect to websocket (503): websocket: bad handshake"


@dataclass
class Cluster:
    api: VirtAPIEmulator
    context: FakeContext
    slots: dict[int, FakeSlot]
    tls: TLSFiles
    port: int
    seen_tokens: list[str]

    def endpoint(self, token: str | TokenFile = ALICE, **changes: Any) -> APIEndpoint:
        source = StaticToken(token) if isinstance(token, str) else token
        fields: dict[str, Any] = {"server": f"https://127.0.0.1:{self.port}",
                                  "ca_file": self.tls.ca_cert, "token": source}
        fields.update(changes)
        return APIEndpoint(**fields)

    def active(self) -> tuple[int, ...]:
        return self.api.active_slots(namespace=NAMESPACE, name="testvmi")

    async def open(self, token: str = ALICE, vmi: str = "testvmi",
                   **options: Any) -> UsbredirConnection:
        return await open_usbredir(self.endpoint(token), namespace=NAMESPACE, vmi=vmi, **options)


@contextlib.asynccontextmanager
async def cluster(*, echo: bool = True) -> AsyncIterator[Cluster]:
    """An API server over TLS (its own CA) with the virt-api emulator and VMI `testvmi`."""
    with short_dir() as root:
        tls = make_tls(root)
        context = FakeContext(allowed_users={"alice", "carol"})
        context.add(make_vmi())
        api = VirtAPIEmulator(slot_dir=lambda namespace, name, uid: root)
        seen: list[str] = []
        app = make_app(api, context, tokens=TOKENS, seen=seen)
        async with (
            fake_slots(root, echo=echo) as slots,
            serve(app, certfile=tls.server_cert, keyfile=tls.server_key) as port,
        ):
            yield Cluster(api=api, context=context, slots=slots, tls=tls, port=port,
                          seen_tokens=seen)


@pytest.fixture
async def lab() -> AsyncIterator[Cluster]:
    async with cluster() as value:
        yield value


@contextlib.asynccontextmanager
async def local_pair() -> AsyncIterator[tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter],
                                              tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """A real TCP connection: (the bridge's end, the usbredir tool's end)."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    tool = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    ours = await asyncio.wait_for(accepted.get(), 20)
    try:
        yield ours, tool
    finally:
        tool[1].close()
        server.close()


@contextlib.asynccontextmanager
async def raw_websocket_server(handler: Any) -> AsyncIterator[APIEndpoint]:
    """A bare websocket server (no Kubernetes) for the cases the emulator never produces."""
    async with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield APIEndpoint(server=f"http://127.0.0.1:{port}")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ----------------------------------------------------------------------------- opening


async def test_opens_over_tls_with_the_cluster_ca_and_a_bearer_token(lab: Cluster) -> None:
    async with await lab.open(ping_interval=0.05) as conn:
        assert conn.subprotocol == "plain.kubevirt.io"
        await conn.send(b"\x00usbredir hello")
        assert await conn.recv() == b"\x00usbredir hello"
        assert lab.seen_tokens[-1] == "alice-token"
        await eventually(lambda: conn.latency > 0)  # our pings are answered
    await eventually(lambda: lab.active() == ())


@pytest.mark.parametrize(
    ("vmi", "token", "code", "message", "retry"),
    [
        (None, "alice-token", 404, 'virtualmachineinstance.kubevirt.io "testvmi" not found',
         Retry.WHEN_VMI_CHANGES),
        (make_vmi(architecture="s390x"), "alice-token", 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "No USB support on s390x", Retry.WHEN_VMI_CHANGES),
        (make_vmi(client_passthrough=False), "alice-token", 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "Not configured with USB Redirection", Retry.WHEN_VMI_CHANGES),
        (make_vmi(phase="Succeeded"), "alice-token", 400, "VMI is not running",
         Retry.WHEN_VMI_CHANGES),
        (make_vmi(), "bob-token", 403,
         'virtualmachineinstances.subresources.kubevirt.io "testvmi" is forbidden: User "bob" '
         'cannot get resource "virtualmachineinstances/usbredir" in API group '
         '"subresources.kubevirt.io" in the namespace "default"', Retry.NOT_ALLOWED),
        (make_vmi(), "stolen-token", 401, "Unauthorized", Retry.NOT_ALLOWED),
    ],
)
async def test_refusals_carry_the_status_message_and_a_decision(
    lab: Cluster, vmi: dict[str, Any] | None, token: str, code: int, message: str, retry: Retry
) -> None:
    if vmi is None:
        lab.context.vmis.clear()
    else:
        lab.context.add(vmi)
    with pytest.raises(HandshakeRejected) as info:
        await lab.open(token)
    assert (info.value.status_code, str(info.value), info.value.retry) == (code, message, retry)


async def test_a_fifth_stream_is_told_no_slot_is_free(lab: Cluster) -> None:
    streams = [await lab.open() for _ in range(4)]
    with pytest.raises(HandshakeRejected) as info:
        await lab.open()
    assert (info.value.status_code, str(info.value)) == (500, BUSY)
    assert info.value.retry is Retry.NO_FREE_SLOT
    await streams[2].close()
    await eventually(lambda: lab.active() == (0, 1, 3))
    replacement = await lab.open()
    assert lab.active() == (0, 1, 2, 3)
    for conn in [*streams, replacement]:
        await conn.close()


async def test_a_server_certificate_from_another_ca_is_not_trusted(lab: Cluster) -> None:
    with short_dir() as other:
        stranger = make_tls(other).ca_cert
        with pytest.raises(ConnectFailed) as info:
            await open_usbredir(lab.endpoint(ca_file=stranger), namespace=NAMESPACE,
                                vmi="testvmi")
    assert info.value.retry is Retry.BACKOFF
    assert lab.active() == ()


async def test_nobody_listening_is_a_connect_failure_to_back_off_from() -> None:
    endpoint = APIEndpoint(server=f"https://127.0.0.1:{unused_port()}")
    with pytest.raises(ConnectFailed) as info:
        await open_usbredir(endpoint, namespace=NAMESPACE, vmi="testvmi", connect_timeout=5)
    assert info.value.retry is Retry.BACKOFF


async def test_a_reset_right_after_connecting_is_transient() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectFailed) as info:
            await open_usbredir(APIEndpoint(server=f"http://127.0.0.1:{port}"),
                                namespace=NAMESPACE, vmi="testvmi", connect_timeout=5)
        assert info.value.retry is Retry.BACKOFF
    finally:
        server.close()


async def test_a_rotated_token_is_used_on_the_next_connect(lab: Cluster, tmp_path: Path) -> None:
    token_path = tmp_path / "token"
    token_path.write_text("alice-token")
    endpoint = lab.endpoint(token=TokenFile(token_path))
    first = await open_usbredir(endpoint, namespace=NAMESPACE, vmi="testvmi")
    token_path.write_text("carol-token")
    stat = token_path.stat()
    os.utime(token_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = await open_usbredir(endpoint, namespace=NAMESPACE, vmi="testvmi")
    assert lab.seen_tokens[-2:] == ["alice-token", "carol-token"]
    assert lab.active() == (0, 1)
    await first.close()
    await second.close()


# ----------------------------------------------------------------------------- splicing


async def test_splice_counts_bytes_and_ends_when_the_tool_closes(lab: Cluster) -> None:
    conn = await lab.open()
    counters = ByteCounters()
    async with local_pair() as ((reader, writer), (tool_in, tool_out)):
        task = asyncio.create_task(splice(conn, reader=reader, writer=writer, counters=counters))
        tool_out.write(pattern(0, 100_000))
        await tool_out.drain()
        assert await tool_in.readexactly(100_000) == pattern(0, 100_000)
        tool_out.close()
        await asyncio.wait_for(task, 20)
    assert (counters.to_vm, counters.from_vm) == (100_000, 100_000)
    await asyncio.wait_for(lab.slots[0].peers[0].ended.wait(), 20)
    await eventually(lambda: lab.active() == ())


async def test_splice_ends_cleanly_when_the_vm_side_closes(lab: Cluster) -> None:
    conn = await lab.open()
    counters = ByteCounters()
    async with local_pair() as ((reader, writer), (tool_in, _)):
        task = asyncio.create_task(splice(conn, reader=reader, writer=writer, counters=counters))
        await eventually(lambda: len(lab.slots[0].peers) == 1)
        lab.slots[0].peers[0].writer.close()
        await asyncio.wait_for(task, 20)
        assert await tool_in.read() == b""  # the tool sees its connection end
    await eventually(lambda: lab.active() == ())


async def test_splice_raises_stream_broken_when_the_connection_drops() -> None:
    async def drop(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    async with raw_websocket_server(drop) as endpoint, local_pair() as (ours, tool):
        conn = await open_usbredir(endpoint, namespace=NAMESPACE, vmi="testvmi")
        tool[1].write(b"anything")
        with pytest.raises(StreamBroken) as info:
            await splice(conn, reader=ours[0], writer=ours[1], counters=ByteCounters())
        assert (info.value.side, info.value.code) == ("remote", 1006)
        assert await tool[0].read() == b""


async def test_text_frames_from_the_server_carry_nothing() -> None:
    async def chatty(ws: ServerConnection) -> None:
        await ws.send("not usbredir")
        await ws.send(b"usbredir")
        await ws.wait_closed()

    async with raw_websocket_server(chatty) as endpoint:
        conn = await open_usbredir(endpoint, namespace=NAMESPACE, vmi="testvmi")
        async with conn:
            assert await conn.recv() == b"usbredir"


async def test_vm_output_waits_for_a_tool_that_does_not_read() -> None:
    total = 48 << 20
    async with cluster(echo=False) as lab:
        conn = await lab.open()
        counters = ByteCounters()
        async with local_pair() as ((reader, writer), (tool_in, _)):
            task = asyncio.create_task(
                splice(conn, reader=reader, writer=writer, counters=counters))
            await eventually(lambda: len(lab.slots[0].peers) == 1)
            vm = lab.slots[0].peers[0].writer
            written = [0]

            async def vm_writes() -> None:
                while written[0] < total:
                    vm.write(pattern(written[0], 1 << 16))
                    await vm.drain()
                    written[0] += 1 << 16

            vm_task = asyncio.create_task(vm_writes())
            assert await settled(lambda: written[0]) < total // 2
            assert not vm_task.done()
            received = 0
            while received < total:
                chunk = await tool_in.read(1 << 20)
                assert chunk == pattern(received, len(chunk))
                received += len(chunk)
            await vm_task
            await eventually(lambda: counters.from_vm == total)
            vm.close()
            await asyncio.wait_for(task, 20)


async def test_tool_output_waits_for_a_vm_that_does_not_read() -> None:
    total = 48 << 20
    async with cluster(echo=False) as lab:
        conn = await lab.open()
        counters = ByteCounters()
        async with local_pair() as ((reader, writer), (_, tool_out)):
            task = asyncio.create_task(
                splice(conn, reader=reader, writer=writer, counters=counters))
            written = [0]

            async def tool_writes() -> None:
                while written[0] < total:
                    tool_out.write(pattern(written[0], 1 << 16))
                    await tool_out.drain()
                    written[0] += 1 << 16

            tool_task = asyncio.create_task(tool_writes())
            assert await settled(lambda: written[0]) < total // 2
            assert not tool_task.done()
            vm = lab.slots[0].peers[0].reader
            received = 0
            while received < total:
                chunk = await vm.read(1 << 20)
                assert chunk == pattern(received, len(chunk))
                received += len(chunk)
            await tool_task
            tool_out.close()
            await asyncio.wait_for(task, 20)
    assert counters.to_vm == total


# ----------------------------------------------------------------------------- the bridge


async def test_bridge_opens_the_stream_only_once_the_tool_connects(lab: Cluster) -> None:
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    bridge = asyncio.create_task(serve_usbredir_bridge(
        lab.endpoint(), namespace=NAMESPACE, vmi="testvmi", on_listening=listening.set_result))
    port = await asyncio.wait_for(listening, 20)
    assert lab.active() == ()
    tool_in, tool_out = await asyncio.open_connection("127.0.0.1", port)
    tool_out.write(b"hello")
    assert await tool_in.readexactly(5) == b"hello"
    assert lab.active() == (0,)
    with pytest.raises(OSError):  # one tool per bridge: the listener is gone
        await asyncio.open_connection("127.0.0.1", port)
    tool_out.close()
    counters = await asyncio.wait_for(bridge, 20)
    assert (counters.to_vm, counters.from_vm) == (5, 5)
    await eventually(lambda: lab.active() == ())


async def test_bridge_reports_a_refused_stream_and_hangs_up_on_the_tool(lab: Cluster) -> None:
    lab.context.add(make_vmi(client_passthrough=False))
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    bridge = asyncio.create_task(serve_usbredir_bridge(
        lab.endpoint(), namespace=NAMESPACE, vmi="testvmi", on_listening=listening.set_result))
    tool_in, tool_out = await asyncio.open_connection(
        "127.0.0.1", await asyncio.wait_for(listening, 20))
    with pytest.raises(HandshakeRejected, match="Not configured with USB Redirection"):
        await asyncio.wait_for(bridge, 20)
    assert await tool_in.read() == b""
    tool_out.close()
