"""One attempt, in its order: lock first, then the device in the port, then opening it; nothing
later happens when an earlier step refuses. A real engine worker and real lock files; the port's
sysfs view is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubevirt_usb.redirect.checks import BoundDevice
from kubevirt_usb.redirect.engine import Engine
from kubevirt_usb.redirect.lock import DeviceLock
from kubevirt_usb.redirect.outcome import Cause
from kubevirt_usb.redirect.protocol import Ended
from kubevirt_usb.redirect.session import Attempt, ending, run_attempt
from kubevirt_usb.stream.endpoint import APIEndpoint
from kubevirt_usb.usb.identity import serial_identity
from kubevirt_usb.usb.model import UsbDevice

DEVICE = BoundDevice(name="46f4-0001-aaa1", node="node1", port_path="2-1",
                     identity=serial_identity("46f4", "0001", "AAA1"), vendor_id="46f4",
                     product_id="0001", serial="AAA1")


def at_port(serial: str) -> UsbDevice:
    return UsbDevice(port_path="2-1", vendor_id="46f4", product_id="0001", bus=2, devnum=3,
                     serial=serial)


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    started = await Engine.spawn(ready_timeout=60)
    try:
        yield started
    finally:
        await started.stop()


def attempt(engine: Engine, tmp_path: Path, found: UsbDevice | None,
            reads: list[str]) -> Attempt:
    def read_port(port: str) -> UsbDevice | None:
        reads.append(port)
        return found

    async def exists() -> bool | None:
        return True

    def endpoint() -> APIEndpoint:
        raise AssertionError("no VM slot may be asked for")

    return Attempt(device=DEVICE, namespace="default", vm="vm1", owner="default/att1 -> vm1",
                   lock=DeviceLock(directory=tmp_path / "locks", port_path="2-1"),
                   engine=engine, endpoint=endpoint, read_port=read_port, vm_exists=exists,
                   sysfs_root=str(tmp_path / "sys"), devfs_root=str(tmp_path / "dev"))


async def run(job: Attempt) -> Cause:
    result = await run_attempt(job, on_attached=lambda: None, on_progress=lambda _t, _f: None)
    return result.cause


async def test_a_held_lock_refuses_before_the_device_is_even_looked_at(
        engine: Engine, tmp_path: Path) -> None:
    other = DeviceLock(directory=tmp_path / "locks", port_path="2-1")
    other.acquire(owner="the first stream", pid=77)
    reads: list[str] = []
    result = await run_attempt(attempt(engine, tmp_path, at_port("AAA1"), reads),
                               on_attached=lambda: None, on_progress=lambda _t, _f: None)
    assert result.cause is Cause.DEVICE_BUSY
    assert result.detail == "held by the first stream (pid 77)"
    assert reads == []


async def test_an_empty_port_and_a_twin_are_refused_before_opening(
        engine: Engine, tmp_path: Path) -> None:
    reads: list[str] = []
    for found, cause in ((None, Cause.DEVICE_ABSENT), (at_port("AAA2"), Cause.DEVICE_MISMATCH)):
        job = attempt(engine, tmp_path, found, reads)
        assert await run(job) is cause
        job.lock.release()
    assert reads == ["2-1", "2-1"]


async def test_a_device_whose_node_is_gone_is_absent_and_no_slot_is_asked_for(
        engine: Engine, tmp_path: Path) -> None:
    job = attempt(engine, tmp_path, at_port("AAA1"), [])
    assert await run(job) is Cause.DEVICE_ABSENT
    assert job.lock.held  # the lock stays with the binding across attempts
    job.lock.release()


def test_how_a_stream_ended_becomes_an_outcome() -> None:
    lost = ending(Ended(reason="device-lost", detail="x"), attached_seconds=3)
    assert (lost.cause, lost.detail, lost.attached_seconds) == \
        (Cause.DEVICE_ABSENT, "unplugged while streaming", 3)
    closed = ending(Ended(reason="stream-closed", close_code=1000), attached_seconds=0)
    assert (closed.cause, closed.detail) == (Cause.STREAM_ENDED, "close code 1000")
    broken = ending(Ended(reason="stream-broken", detail="keepalive ping timeout",
                          close_code=1011), attached_seconds=0)
    assert broken.cause is Cause.STREAM_BROKEN
    assert broken.detail == "keepalive ping timeout (close code 1011)"
    assert ending(Ended(reason="rejected"), attached_seconds=0).cause is Cause.DEVICE_REJECTED
