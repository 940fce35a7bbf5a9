"""The worker's pieces that need no device: usbfs numbering, the usbredir callbacks' buffers,
how usbredirhost's read results end a session, the identity checks of an opened node, and who
stops a worker."""

from __future__ import annotations

import ctypes
import os
import signal
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubevirt_usb.redirect.engine import Engine
from kubevirt_usb.redirect.libusb import LibUsb
from kubevirt_usb.redirect.lock import DeviceLock
from kubevirt_usb.redirect.protocol import Ended, Open, OpenFailed
from kubevirt_usb.redirect.usbredirhost import (
    READ_DEVICE_LOST,
    READ_DEVICE_REJECTED,
    READ_IO_ERROR,
    READ_PARSE_ERROR,
    UsbRedirHost,
    UsbRedirHostLib,
)
from kubevirt_usb.redirect.worker import (
    Pump,
    _flush,
    _read_result,
    _verify,
    usbfs_minor,
    usbfs_path,
)


@dataclass
class Outlet:
    room: bool = True
    sent: list[bytes] = field(default_factory=list)

    def accepting(self) -> bool:
        return self.room

    def send(self, data: bytes | memoryview) -> None:
        self.sent.append(bytes(data))


def test_usbfs_nodes_are_numbered_by_bus_and_device() -> None:
    assert usbfs_minor(1, 1) == 0
    assert usbfs_minor(2, 3) == 130  # /dev/bus/usb/002/003 is 189:130
    assert usbfs_path("/dev", 2, 3) == "/dev/bus/usb/002/003"


def test_bytes_from_the_vm_are_handed_out_in_order_and_consumed() -> None:
    pump = Pump(link=Outlet())
    pump.inbound += b"hello world"
    buffer = ctypes.create_string_buffer(5)
    assert pump.read(ctypes.addressof(buffer), 5) == 5
    assert buffer.raw == b"hello"
    assert pump.read(ctypes.addressof(buffer), 5) == 5
    assert buffer.raw == b" worl"
    assert pump.read(ctypes.addressof(buffer), 5) == 1
    assert pump.read(ctypes.addressof(buffer), 5) == 0  # nothing more: try again later


def test_packets_for_the_vm_go_out_whole_and_are_counted() -> None:
    outlet = Outlet()
    pump = Pump(link=outlet)
    packet = ctypes.create_string_buffer(b"usbredir packet", 15)
    assert pump.write(ctypes.addressof(packet), 15) == 15
    assert outlet.sent == [b"usbredir packet"]
    assert pump.to_vm == 15


def test_a_full_link_makes_the_host_wait() -> None:
    outlet = Outlet(room=False)
    pump = Pump(link=outlet)
    packet = ctypes.create_string_buffer(b"x", 1)
    assert pump.write(ctypes.addressof(packet), 1) == 0
    assert pump.write_blocked
    assert outlet.sent == []


def test_usbredirhost_read_results_end_sessions() -> None:
    assert _read_result(0) is None
    assert _read_result(-1) is None  # an empty read: more will come
    lost = _read_result(READ_DEVICE_LOST)
    assert isinstance(lost, Ended)
    assert lost.reason == "device-lost"
    assert _read_result(READ_DEVICE_REJECTED) == Ended(reason="rejected",
                                                       detail="the VM rejected the device")
    parse = _read_result(READ_PARSE_ERROR)
    assert parse is not None
    assert parse.reason == "protocol-error"


def test_an_opened_node_that_is_not_usbfs_is_refused(tmp_path: Path) -> None:
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        failure = _verify(fd, Open(port_path="2-1", bus=2, devnum=3, vendor_id=1, product_id=1,
                                   sysfs_root=str(tmp_path)), "/dev/bus/usb/002/003")
    finally:
        os.close(fd)
    assert failure is not None
    assert failure.kind == "changed"


async def test_ctrl_c_at_the_terminal_leaves_stopping_to_the_agent(tmp_path: Path) -> None:
    engine = await Engine.spawn(ready_timeout=60)
    try:
        os.kill(engine.pid, signal.SIGINT)  # what Ctrl-C on `kubevirt-usb agent` sends it too
        lock = DeviceLock(directory=tmp_path / "locks", port_path="2-1")
        lock.acquire(owner="test")
        result = await engine.open(Open(port_path="2-1", bus=2, devnum=3, vendor_id=0x46F4,
                                        product_id=1, sysfs_root=str(tmp_path / "sys"),
                                        devfs_root=str(tmp_path / "dev")),
                                   lock_fd=lock.fileno())
        assert isinstance(result, OpenFailed)  # it still answers
        assert engine.alive
    finally:
        await engine.stop()
    assert engine.process.returncode == 0


# ---- malformed usbredir packets from the VM side ------------------------------------------------
# Packets drawn by hypothesis (any type, length fields that lie, truncated or oversized payloads,
# with or without the peer's hello first) go through the real libusbredirhost with no device
# attached (usbredirhost accepts a NULL handle), read as the worker reads them. Whatever comes,
# the host answers with a read result the worker turns into "go on" or an Ended with its reason;
# nothing raises, and the library's own words for a malformed packet reach the worker's log.

_HELLO = struct.pack("<IIi", 0, 68, 0) + b"fuzz".ljust(64, b"\0") + struct.pack("<I", 0xFF)
_PACKETS = st.lists(st.builds(
    lambda kind, length, ident, payload: struct.pack("<IIQ", kind, length, ident) + payload,
    kind=st.one_of(st.integers(0, 27), st.integers(100, 105), st.integers(0, 2**32 - 1)),
    length=st.one_of(st.integers(0, 64), st.sampled_from([2**27 + 1024, 2**31, 2**32 - 1])),
    ident=st.integers(0, 2**64 - 1), payload=st.binary(max_size=64)), max_size=4)


@pytest.fixture(scope="module")
def usb_context() -> Iterator[LibUsb]:
    usb = LibUsb()
    usb.init()
    yield usb
    usb.exit()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hello=st.booleans(), packets=_PACKETS, garbage=st.binary(max_size=32))
def test_malformed_usbredir_packets_from_the_vm_end_the_session_with_a_reason(
        usb_context: LibUsb, hello: bool, packets: list[bytes], garbage: bytes) -> None:
    pump = Pump(link=Outlet())
    logs: list[str] = []
    host = UsbRedirHost(UsbRedirHostLib(), context=usb_context.ctx.value or 0, handle=0,
                        read=pump.read, write=pump.write,
                        log=lambda _level, message: logs.append(message), version="fuzz")
    try:
        pump.inbound += (_HELLO if hello else b"") + b"".join(packets) + garbage
        ended = None
        for _ in range(8):
            rc = host.read_guest_data()
            assert rc in (0, READ_IO_ERROR, READ_PARSE_ERROR, READ_DEVICE_REJECTED,
                          READ_DEVICE_LOST)
            ended = _read_result(rc)
            _flush(host, pump)
            if ended is not None or not pump.inbound:
                break
    finally:
        host.close()
    if ended is not None:
        assert ended.reason in ("protocol-error", "rejected", "device-lost")
        assert ended.detail
    if ended is not None and ended.reason == "protocol-error":
        assert any("usbredirparser" in line for line in logs)
