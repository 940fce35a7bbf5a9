"""The engine worker's node-local transport over a real unix socket pair."""

from __future__ import annotations

import socket

import pytest

from kubevirt_usb.redirect.unixlink import UnixLink
from kubevirt_usb.stream.failures import StreamBroken


def test_bytes_go_both_ways_unframed() -> None:
    mine, qemu = socket.socketpair()
    link = UnixLink(mine)
    qemu.sendall(b"hello from qemu")
    assert link.receive() == [b"hello from qemu"]
    link.send(b"usbredir ")
    link.send(memoryview(b"packets"))
    assert link.wants_write()
    link.flush()
    assert not link.wants_write()
    assert qemu.recv(100) == b"usbredir packets"
    assert link.receive() == []
    link.close()
    assert qemu.recv(10) == b""
    qemu.close()


def test_qemu_closing_its_end_ends_the_stream() -> None:
    mine, qemu = socket.socketpair()
    link = UnixLink(mine)
    qemu.close()
    assert link.receive() is None
    assert link.close_code is None
    link.close()


def test_a_full_socket_makes_the_link_refuse_more_until_it_drains() -> None:
    mine, qemu = socket.socketpair()
    link = UnixLink(mine)
    chunk = b"x" * 65536
    while link.accepting():
        link.send(chunk)
        link.flush()
    assert link.wants_write()
    qemu.setblocking(False)
    while link.wants_write():
        try:
            while qemu.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        link.flush()
    assert link.accepting()
    link.close()
    qemu.close()


def test_writing_to_a_closed_slot_breaks_the_stream() -> None:
    mine, qemu = socket.socketpair()
    link = UnixLink(mine)
    qemu.close()
    link.send(b"x")
    with pytest.raises(StreamBroken, match="Broken pipe"):
        link.flush()
    link.close()
