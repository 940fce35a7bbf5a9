"""The launcher stand-in's own parts: its arguments and its splice bridge (real sockets)."""

from __future__ import annotations

import socket
import threading

import pytest

from kubevirt_usb.sandbox.launcher_standin import bridge, main, parse_slot_ports


def test_slot_ports_are_slot_equals_port() -> None:
    assert parse_slot_ports(["0=4000", "3=4003"]) == {0: 4000, 3: 4003}
    with pytest.raises(ValueError, match="expected SLOT=PORT"):
        parse_slot_ports(["0:4000"])


def test_a_bad_slot_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", "/nonexistent", "--vmi-uid", "u", "--cgroup", "/nonexistent",
                 "--info", "/nonexistent/i", "--slot-port", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "launcher stand-in: --slot-port 'x': expected SLOT=PORT, e.g. 0=40123")


def test_the_bridge_moves_bytes_both_ways_and_passes_the_close_on() -> None:
    upstream = socket.create_server(("127.0.0.1", 0))
    port = upstream.getsockname()[1]
    agent, standin_end = socket.socketpair()
    worker = threading.Thread(target=bridge, args=(standin_end, "127.0.0.1", port), daemon=True)
    worker.start()
    slot, _ = upstream.accept()
    payload = bytes(range(256)) * 4096  # 1 MiB
    agent.sendall(payload)
    agent.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := slot.recv(1 << 16):
        got += chunk
    assert got == payload
    slot.sendall(b"from the slot")
    slot.close()
    back = b""
    while chunk := agent.recv(1 << 16):
        back += chunk
    assert back == b"from the slot"
    worker.join(10)
    assert not worker.is_alive()
    upstream.close()
