"""The links' send queue over a real socket pair."""

from __future__ import annotations

import socket

import pytest

from kubevirt_usb.redirect.outqueue import HIGH_WATER, SendQueue
from kubevirt_usb.stream.failures import StreamBroken


def drain(sock: socket.socket) -> bytes:
    got = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return got
        got += chunk


def test_what_the_socket_cannot_take_now_waits_and_goes_out_in_order() -> None:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    queue = SendQueue(broken_code=None)
    sent = [bytes([n]) * 300_000 for n in range(1, 8)]
    for data in sent:
        queue.push(data)
    queue.push(b"")
    assert queue.pending == 7 * 300_000
    assert queue.pending > HIGH_WATER
    assert not queue.accepting()
    received = b""
    while queue.pending:
        queue.flush(ours)
        received += drain(peer)
    received += drain(peer)
    assert received == b"".join(sent)
    assert queue.accepting()


def test_a_peer_gone_is_a_broken_stream_with_the_links_code() -> None:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.close()
    queue = SendQueue(broken_code=1006)
    queue.push(b"usbredir")
    with pytest.raises(StreamBroken) as broken:
        queue.flush(ours)
    assert broken.value.code == 1006
    assert queue.pending == len(b"usbredir")
