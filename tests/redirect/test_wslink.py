"""The engine's websocket, against the virt-api emulator on a real TLS server with fake VM slots
(the same setup as the stream client's tests): usbredir bytes both ways, KubeVirt's refusals,
keepalive. The link is blocking only while it connects, so the tests drive it in a thread."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from kubevirt_usb.redirect import wslink
from kubevirt_usb.redirect.wslink import Link
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from kubevirt_usb.stream.endpoint import APIEndpoint, StaticToken, usbredir_path
from kubevirt_usb.stream.failures import ConnectFailed, HandshakeRejected, StreamBroken
from tests.sandbox.usbredir_harness import (
    FakeContext,
    fake_slots,
    make_app,
    make_tls,
    make_vmi,
    serve,
    short_dir,
)
from tests.stream.test_usbredir_client import ALICE, TOKENS, Cluster, cluster, unused_port

PATH = usbredir_path(namespace="default", vmi="testvmi")


@pytest.fixture
async def lab() -> AsyncIterator[Cluster]:
    async with cluster() as value:
        yield value


def endpoint(lab: Cluster, token: str = ALICE) -> APIEndpoint:
    return APIEndpoint(server=f"https://127.0.0.1:{lab.port}", ca_file=lab.tls.ca_cert,
                       token=StaticToken(token))


def echo_round_trip(link: Link, data: bytes) -> bytes:
    """Send `data`, return what came back once as much arrived (10 s at most)."""
    link.send(data)
    received = bytearray()
    deadline = time.monotonic() + 10
    while len(received) < len(data) and time.monotonic() < deadline:
        link.flush()
        poller = select.poll()
        poller.register(link.fileno(), select.POLLIN | (select.POLLOUT
                                                        if link.wants_write() else 0))
        if poller.poll(100):
            payloads = link.receive()
            assert payloads is not None
            for payload in payloads:
                received += payload
    return bytes(received)


async def test_bytes_go_to_the_vm_slot_and_back(lab: Cluster) -> None:
    link = await asyncio.to_thread(wslink.connect, endpoint(lab), path=PATH, timeout=10)
    try:
        data = bytes(range(256)) * 1024  # 256 KiB: several frames
        assert await asyncio.to_thread(echo_round_trip, link, data) == data
        assert lab.active() == (0,)
    finally:
        link.close()
    for _ in range(200):
        if not lab.active():
            break
        await asyncio.sleep(0.05)
    assert lab.active() == ()  # closing the link frees the slot


async def test_kubevirt_refusals_carry_its_status_message(lab: Cluster) -> None:
    lab.context.add(make_vmi("plain", client_passthrough=False))
    with pytest.raises(HandshakeRejected) as refused:
        await asyncio.to_thread(wslink.connect, endpoint(lab),
                                path=usbredir_path(namespace="default", vmi="plain"), timeout=10)
    assert refused.value.status_code == 409
    assert str(refused.value).endswith("Not configured with USB Redirection")
    assert lab.active() == ()


async def test_a_bad_token_is_refused_as_unauthorized(lab: Cluster) -> None:
    with pytest.raises(HandshakeRejected) as refused:
        await asyncio.to_thread(wslink.connect, endpoint(lab, "wrong"), path=PATH, timeout=10)
    assert refused.value.status_code == 401


async def test_nobody_listening_is_connect_failed() -> None:
    gone = APIEndpoint(server=f"https://127.0.0.1:{unused_port()}")
    with pytest.raises(ConnectFailed):
        await asyncio.to_thread(wslink.connect, gone, path=PATH, timeout=5)


async def test_an_unanswered_ping_breaks_the_link(lab: Cluster) -> None:
    now = [0.0]
    link = await asyncio.to_thread(wslink.connect, endpoint(lab), path=PATH, timeout=10,
                                   clock=lambda: now[0])
    try:
        link.tick()
        assert not link.wants_write()  # nothing due yet
        now[0] = wslink.PING_INTERVAL
        link.tick()
        assert link.wants_write()  # a ping is queued
        assert link.next_deadline() == wslink.PING_INTERVAL + wslink.PING_TIMEOUT
        now[0] += wslink.PING_TIMEOUT
        with pytest.raises(StreamBroken, match="keepalive ping timeout"):
            link.tick()
    finally:
        link.close()


async def test_a_ping_answered_by_the_server_keeps_it(lab: Cluster) -> None:
    now = [0.0]
    link = await asyncio.to_thread(wslink.connect, endpoint(lab), path=PATH, timeout=10,
                                   clock=lambda: now[0])
    try:
        now[0] = wslink.PING_INTERVAL
        link.tick()
        assert await asyncio.to_thread(echo_round_trip, link, b"x") == b"x"  # pong comes too
        assert link.next_deadline() == 2 * wslink.PING_INTERVAL
    finally:
        link.close()


async def test_the_peer_closing_ends_the_link_cleanly() -> None:
    with short_dir() as root:
        tls = make_tls(root)
        context = FakeContext(allowed_users={"alice"})
        context.add(make_vmi())
        api = VirtAPIEmulator(slot_dir=lambda namespace, name, uid: root)
        app = make_app(api, context, tokens=TOKENS, seen=[])
        async with (fake_slots(root, echo=False) as slots,
                    serve(app, certfile=tls.server_cert, keyfile=tls.server_key) as port):
            ep = APIEndpoint(server=f"https://127.0.0.1:{port}", ca_file=tls.ca_cert,
                             token=StaticToken(ALICE))
            link = await asyncio.to_thread(wslink.connect, ep, path=PATH, timeout=10)
            try:
                for _ in range(200):
                    if slots[0].peers:
                        break
                    await asyncio.sleep(0.05)
                slots[0].peers[0].writer.close()  # the VM side goes away

                def until_closed() -> list[bytes] | None:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        poller = select.poll()
                        poller.register(link.fileno(), select.POLLIN)
                        if poller.poll(100):
                            got = link.receive()
                            if got is None:
                                return None
                    return []

                assert await asyncio.to_thread(until_closed) is None
            finally:
                link.close()


async def test_a_server_that_hangs_up_during_the_tls_handshake_is_connect_failed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the ClientHello
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectFailed, match="closed the connection during the TLS"):
            await asyncio.to_thread(wslink.connect,
                                    APIEndpoint(server=f"https://127.0.0.1:{port}"),
                                    path=PATH, timeout=600)
    finally:
        server.close()


# ---- fuzzed frames from the VM side ------------------------------------------------------------
# Whatever the VM side's end of the websocket sends (garbage, truncated frames, frames over
# MAX_FRAME, masked or fragmented control frames, bad opcodes, reserved bits, a close with any
# payload), over a real socket, the link hands out payloads, reports a clean close (None), or
# raises StreamBroken with the reason: never anything else, which would end the worker with a
# bug's "error" instead of a reason users can read.


def _frame(fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes, length: int | None,
           cut: int | None) -> bytes:
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if masked:
        head += b"\x00\x00\x00\x00"
    data = head + payload
    return data if cut is None else data[:cut]


_FRAMES = st.builds(
    _frame, fin=st.booleans(), rsv=st.integers(0, 7),
    opcode=st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB, 0xF]),
    masked=st.booleans(), payload=st.binary(max_size=40),
    length=st.one_of(st.none(), st.sampled_from([0, 125, 126, 65535, wslink.MAX_FRAME + 1,
                                                 2**63 - 1])),
    cut=st.one_of(st.none(), st.integers(0, 12)))
_VM_SIDE_BYTES = st.one_of(st.binary(min_size=1, max_size=64),
                           st.lists(_FRAMES, min_size=1, max_size=4).map(b"".join))


def _link_over(sock: socket.socket) -> Link:
    sock.setblocking(False)
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/usbredir"), state=State.OPEN,
                              max_size=wslink.MAX_FRAME)
    return Link(sock, protocol, None, leftover=[], clock=time.monotonic)


@settings(max_examples=150)
@given(sent=_VM_SIDE_BYTES, hang_up=st.booleans())
def test_any_bytes_from_the_vm_side_end_in_payloads_a_close_or_stream_broken(
        sent: bytes, hang_up: bool) -> None:
    ours, theirs = socket.socketpair()
    link = _link_over(ours)
    theirs.sendall(sent)
    if hang_up:
        theirs.shutdown(socket.SHUT_WR)
    try:
        broken = _drive(link)
    finally:
        link.close()
        theirs.close()
    assert broken is None or broken.detail


def _drive(link: Link) -> StreamBroken | None:
    """A few rounds of what the worker does with a link; how it broke, if it did."""
    try:
        for _ in range(4):
            if link.receive() is None:
                return None
            link.send(b"usbredir bytes")
            link.flush()
            link.tick()
    except StreamBroken as broken:
        return broken
    return None


@pytest.mark.parametrize(("sent", "code", "detail"), [
    (b"garbage!", 1002, "invalid websocket frame from the VM side: invalid opcode"),
    (b"\x82\x7f" + (wslink.MAX_FRAME + 1).to_bytes(8, "big"), 1009,
     "invalid websocket frame from the VM side: frame with 1048577 bytes exceeds limit of "
     "1048576 bytes"),
])
def test_an_invalid_frame_from_the_vm_side_ends_the_stream_with_the_reason(
        sent: bytes, code: int, detail: str) -> None:
    ours, theirs = socket.socketpair()
    link = _link_over(ours)
    theirs.sendall(sent)
    try:
        with pytest.raises(StreamBroken) as broken:
            link.receive()
        assert (broken.value.code, broken.value.detail) == (code, detail)
        assert theirs.recv(64)[:1] == b"\x88"  # the close frame saying why was sent
    finally:
        link.close()
        theirs.close()
