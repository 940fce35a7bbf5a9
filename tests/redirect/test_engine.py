"""The agent's side of an engine worker, with a real worker process (no USB needed): it starts,
answers, refuses what is not the requested device, and stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubevirt_usb.redirect import protocol
from kubevirt_usb.redirect.engine import Engine, EngineError, EngineSession
from kubevirt_usb.redirect.lock import DeviceLock
from kubevirt_usb.redirect.protocol import Open, Opened, OpenFailed


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    started = await Engine.spawn(ready_timeout=60)
    try:
        yield started
    finally:
        await started.stop()


def request(tmp_path: Path, *, bus: int = 2, devnum: int = 3) -> Open:
    return Open(port_path="2-1", bus=bus, devnum=devnum, vendor_id=0x46F4, product_id=1,
                sysfs_root=str(tmp_path / "sys"), devfs_root=str(tmp_path / "dev"))


def held_lock(tmp_path: Path) -> DeviceLock:
    lock = DeviceLock(directory=tmp_path / "locks", port_path="2-1")
    lock.acquire(owner="test")
    return lock


async def test_a_worker_starts_with_the_distros_libusb(engine: Engine) -> None:
    assert engine.alive
    assert engine.libusb_version.startswith("1.0.")
    assert not engine.in_session


async def test_a_device_node_that_is_not_there_is_absent(engine: Engine, tmp_path: Path) -> None:
    lock = held_lock(tmp_path)
    result = await engine.open(request(tmp_path), lock_fd=lock.fileno())
    assert isinstance(result, OpenFailed)
    assert result.kind == "absent"
    assert "/bus/usb/002/003 does not exist" in result.detail
    assert not engine.in_session


async def test_a_node_that_is_not_that_usb_device_is_refused(engine: Engine,
                                                             tmp_path: Path) -> None:
    node = tmp_path / "dev" / "bus" / "usb" / "002"
    node.mkdir(parents=True)
    (node / "003").symlink_to("/dev/null")  # a character device, but not usbfs 2/3
    lock = held_lock(tmp_path)
    result = await engine.open(request(tmp_path), lock_fd=lock.fileno())
    assert isinstance(result, OpenFailed)
    assert result.kind == "changed"
    assert "not the usbfs node of bus 2 device 3" in result.detail


async def test_the_worker_keeps_serving_after_refusals(engine: Engine, tmp_path: Path) -> None:
    lock = held_lock(tmp_path)
    for devnum in (3, 4, 5):
        result = await engine.open(request(tmp_path, devnum=devnum), lock_fd=lock.fileno())
        assert isinstance(result, OpenFailed)
    assert engine.alive


async def test_the_session_lock_is_given_back_by_the_worker(engine: Engine,
                                                            tmp_path: Path) -> None:
    lock = held_lock(tmp_path)
    await engine.open(request(tmp_path), lock_fd=lock.fileno())
    lock.release()  # the worker closed its copy at the end of the refused session
    again = DeviceLock(directory=tmp_path / "locks", port_path="2-1")
    again.acquire(owner="next")
    assert again.held


async def test_a_crashed_worker_is_an_engine_error(engine: Engine, tmp_path: Path) -> None:
    os.kill(engine.pid, signal.SIGKILL)
    lock = held_lock(tmp_path)
    with pytest.raises(EngineError):
        await engine.open(request(tmp_path), lock_fd=lock.fileno())
    assert not engine.alive


async def test_stopping_ends_the_process(tmp_path: Path) -> None:
    started = await Engine.spawn(ready_timeout=60)
    await started.stop()
    assert started.process.returncode is not None
    assert not started.alive


async def test_a_worker_that_cannot_start_is_an_engine_error() -> None:
    with pytest.raises(EngineError):
        await Engine.spawn(argv=["/nonexistent/python"], ready_timeout=5)


async def test_a_cancelled_open_never_returns_even_when_the_reply_comes_at_that_moment(
        tmp_path: Path) -> None:
    # The binding ends just as the worker's reply arrives: the stream must stop, not go on with
    # the device (asyncio.wait_for of Python 3.11 returned the reply and lost the cancellation).
    # A stand-in worker: a process that does nothing, and our end of its control socket.
    cancelled = 0
    for steps in range(12):
        process = await asyncio.create_subprocess_exec("sleep", "600")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        engine = Engine(process, ours, on_log=lambda _level, _message: None)
        lock = held_lock(tmp_path)
        opening = asyncio.create_task(engine.open(request(tmp_path), lock_fd=lock.fileno()))
        await asyncio.sleep(0)
        theirs.send(protocol.encode(Opened()))
        for _ in range(steps):
            await asyncio.sleep(0)
        if opening.cancel():  # still opening when the binding ended
            cancelled += 1
            outcome = await asyncio.gather(opening, return_exceptions=True)
            assert isinstance(outcome[0], asyncio.CancelledError), (steps, outcome)
            assert engine.in_session  # it may hold the device: it serves no other binding
        else:
            assert isinstance(opening.result(), EngineSession)
        theirs.close()
        lock.release()
        await engine.stop(timeout=0.01)
    assert cancelled >= 3  # the reply was on its way for some of them
