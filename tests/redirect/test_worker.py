"""The worker's pieces that need no device: usbfs numbering, the usbredir callbacks' buffers,
how usbredirhost's read results end a session, the identity checks of an opened node, and who
stops a worker."""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from kubevirt_usb.redirect.engine import Engine
from kubevirt_usb.redirect.lock import DeviceLock
from kubevirt_usb.redirect.protocol import Ended, Open, OpenFailed
from kubevirt_usb.redirect.usbredirhost import (
    READ_DEVICE_LOST,
    READ_DEVICE_REJECTED,
    READ_PARSE_ERROR,
)
from kubevirt_usb.redirect.worker import Pump, _read_result, _verify, usbfs_minor, usbfs_path


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
