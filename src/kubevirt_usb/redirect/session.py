"""One attempt to stream a bound device into its VM, in the order that keeps both safe:

1. the node-local lock on the device's port (another stream: refused before anything else);
2. the device in the port is the bound one (sysfs, right before opening) and where it is now;
3. the engine opens exactly that device (nothing is sent to it yet);
4. only then a VM slot: on the node-local path (`redirect.localpath`, when the VMI runs on this
   node) the slot socket inside the launcher, connected by the agent and handed to the worker;
   otherwise, or when the local path is not there for a reason the API path does not share,
   the websocket to the VMI's usbredir subresource (a refusal costs nothing: the device is closed
   again, untouched);
5. the usbredir host takes the device (claim, reset) and the bytes flow until either side ends.

Any failure releases what was taken, in reverse order; the lock stays with the caller (held for
the life of the binding, across reconnects). Cancelling the attempt stops it the same way, within
`CLOSE_TIMEOUT` (the caller kills the worker if it does not answer by then).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from kubevirt_usb.redirect import checks
from kubevirt_usb.redirect.checks import BoundDevice
from kubevirt_usb.redirect.engine import Engine, EngineError, EngineSession, StartRefused
from kubevirt_usb.redirect.localpath import Dialed
from kubevirt_usb.redirect.lock import DeviceBusy, DeviceLock
from kubevirt_usb.redirect.outcome import Cause, Outcome, rejection_cause
from kubevirt_usb.redirect.pathchoice import Choice, Local, falls_back
from kubevirt_usb.redirect.protocol import Ended, Open, OpenFailed
from kubevirt_usb.stream.endpoint import APIEndpoint, usbredir_path
from kubevirt_usb.stream.failures import ConnectFailed, HandshakeRejected
from kubevirt_usb.usb.model import UsbDevice
from kubevirt_usb.usb.sysfs import read_device
from kubevirt_usb.usb.usbids import UsbIds

VMExists = Callable[[], Awaitable[bool | None]]
ReadPort = Callable[[str], UsbDevice | None]
Progress = Callable[[int, int], None]
LocalDial = Callable[[], Awaitable[Dialed]]
"""Tries the node-local path: a connected slot socket, or why the stream goes through the API."""
PathSeen = Callable[[Choice], None]
CLOSE_TIMEOUT = 0.5
"""Seconds a stopping attempt waits for the worker to release the device and the slot."""

_NO_NAMES = UsbIds(Path("/dev/null"))


def sysfs_reader(sysfs_root: Path) -> ReadPort:
    """Reads the device at a port from sysfs (no usb.ids names: only ids and strings count)."""

    def read(port_path: str) -> UsbDevice | None:
        return read_device(sysfs_root=sysfs_root, port_path=port_path, usb_ids=_NO_NAMES)

    return read


_OPEN_FAILURES: dict[str, Cause] = {
    "absent": Cause.DEVICE_ABSENT,
    "changed": Cause.DEVICE_CHANGED,
    "mismatch": Cause.DEVICE_MISMATCH,
    "access": Cause.DEVICE_ACCESS_DENIED,
    "error": Cause.DEVICE_OPEN_FAILED,
}
_ENDINGS: dict[str, Cause] = {
    "device-lost": Cause.DEVICE_ABSENT,
    "rejected": Cause.DEVICE_REJECTED,
    "protocol-error": Cause.STREAM_BROKEN,
    "stream-broken": Cause.STREAM_BROKEN,
    "stream-closed": Cause.STREAM_ENDED,
    "error": Cause.ENGINE_FAILED,
    "stopped": Cause.ENGINE_FAILED,
}


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """What one attempt needs; every outside dependency is a parameter."""

    device: BoundDevice
    namespace: str
    vm: str
    owner: str
    """Who takes the lock, as the busy message shows it (`default/att1 -> default/vm1`)."""
    lock: DeviceLock
    engine: Engine
    endpoint: Callable[[], APIEndpoint]
    read_port: ReadPort
    vm_exists: VMExists
    sysfs_root: str = "/sys"
    devfs_root: str = "/dev"
    connect_timeout: float = 10.0
    local: LocalDial | None = None
    """The node-local path (None: the API path only, and no path is reported)."""


async def run_attempt(attempt: Attempt, *, on_attached: Callable[[], None],
                      on_progress: Progress,
                      on_locked: Callable[[], None] = lambda: None,
                      on_path: PathSeen = lambda _choice: None) -> Outcome:
    """Stream until something ends it; how it ended. `on_locked` is called once the device's
    lock is held, `on_attached` once the VM's usbredir slot answered, `on_progress(to_vm,
    from_vm)` with this attempt's byte counts."""
    try:
        attempt.lock.acquire(owner=attempt.owner)
    except DeviceBusy as busy:
        who = busy.holder.describe() if busy.holder else "another process"
        return Outcome(cause=Cause.DEVICE_BUSY, detail=f"held by {who}",
                       holder=busy.holder.owner if busy.holder else None)
    except OSError as exc:
        return Outcome(cause=Cause.DEVICE_OPEN_FAILED,
                       detail=f"cannot take the lock {attempt.lock.path}: {exc}")
    on_locked()
    device = attempt.device
    check = checks.check_port(device, attempt.read_port(device.port_path))
    if isinstance(check, checks.Absent):
        return Outcome(cause=Cause.DEVICE_ABSENT)
    if isinstance(check, checks.Mismatch):
        return Outcome(cause=Cause.DEVICE_MISMATCH, detail=check.found)
    request = Open(port_path=device.port_path, bus=check.bus, devnum=check.devnum,
                   vendor_id=int(device.vendor_id, 16), product_id=int(device.product_id, 16),
                   sysfs_root=attempt.sysfs_root, devfs_root=attempt.devfs_root)
    try:
        opened = await attempt.engine.open(request, lock_fd=attempt.lock.fileno())
    except EngineError as exc:
        return Outcome(cause=Cause.ENGINE_FAILED, detail=str(exc))
    if isinstance(opened, OpenFailed):
        return Outcome(cause=_OPEN_FAILURES[opened.kind], detail=opened.detail)
    try:
        if attempt.local is not None:
            dialed = await attempt.local()
            on_path(dialed.choice)
            if isinstance(dialed.choice, Local) and dialed.sock is not None:
                return await _stream_local(dialed.choice, dialed.sock, opened,
                                           on_attached=on_attached, on_progress=on_progress)
            if not falls_back(dialed.choice):
                return Outcome(cause=Cause.NO_FREE_SLOT, detail=dialed.choice.message)
        return await _stream(attempt, opened, on_attached=on_attached, on_progress=on_progress)
    finally:
        await _close_quietly(opened, on_progress)


async def _stream_local(choice: Local, sock: socket.socket, session: EngineSession, *,
                        on_attached: Callable[[], None], on_progress: Progress) -> Outcome:
    """The node-local path: the worker streams into the slot socket the agent connected."""
    try:
        with sock:
            await session.stream_local(sock, slot=choice.slot)
    except StartRefused as exc:
        return Outcome(cause=Cause.DEVICE_IN_USE, detail=str(exc))
    except EngineError as exc:
        return Outcome(cause=Cause.ENGINE_FAILED, detail=str(exc))
    return await _until_ended(session, on_attached=on_attached, on_progress=on_progress)


async def _stream(attempt: Attempt, session: EngineSession, *, on_attached: Callable[[], None],
                  on_progress: Progress) -> Outcome:
    path = usbredir_path(namespace=attempt.namespace, vmi=attempt.vm)
    try:
        await session.stream(attempt.endpoint(), path=path,
                             connect_timeout=attempt.connect_timeout)
    except HandshakeRejected as refused:
        exists = await attempt.vm_exists() if refused.status_code == 404 else None
        cause = rejection_cause(status_code=refused.status_code, message=refused.message,
                                retry=refused.retry, vm_exists=exists)
        return Outcome(cause=cause, kubevirt=refused.message,
                       detail=f"HTTP {refused.status_code}")
    except ConnectFailed as exc:
        return Outcome(cause=Cause.API_UNREACHABLE, detail=str(exc))
    except StartRefused as exc:
        return Outcome(cause=Cause.DEVICE_IN_USE, detail=str(exc))
    except EngineError as exc:
        return Outcome(cause=Cause.ENGINE_FAILED, detail=str(exc))
    return await _until_ended(session, on_attached=on_attached, on_progress=on_progress)


async def _until_ended(session: EngineSession, *, on_attached: Callable[[], None],
                       on_progress: Progress) -> Outcome:
    started = time.monotonic()
    attached_at: list[float] = []

    def attached() -> None:
        attached_at.append(time.monotonic())
        on_attached()

    try:
        ended = await session.wait_ended(on_attached=attached, on_progress=on_progress)
    except EngineError as exc:
        return Outcome(cause=Cause.ENGINE_FAILED, detail=str(exc),
                       attached_seconds=_since(attached_at, started))
    return ending(ended, attached_seconds=_since(attached_at, started))


def ending(ended: Ended, *, attached_seconds: float) -> Outcome:
    """The outcome of a stream the worker ended by itself."""
    cause = _ENDINGS.get(ended.reason, Cause.ENGINE_FAILED)
    detail = ended.detail
    if cause is Cause.DEVICE_ABSENT:
        detail = "unplugged while streaming"
    elif ended.close_code is not None and cause is not Cause.ENGINE_FAILED:
        detail = f"{detail} (close code {ended.close_code})" if detail else \
            f"close code {ended.close_code}"
    return Outcome(cause=cause, detail=detail, attached_seconds=attached_seconds)


def _since(attached_at: list[float], started: float) -> float:
    return time.monotonic() - attached_at[0] if attached_at else 0.0


async def _close_quietly(session: EngineSession, on_progress: Progress) -> None:
    if session.ended is not None:
        return
    with contextlib.suppress(EngineError, TimeoutError):
        await asyncio.shield(session.close(timeout=CLOSE_TIMEOUT, on_progress=on_progress))
