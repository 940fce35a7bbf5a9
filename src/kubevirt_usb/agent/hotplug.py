"""Hot-plug events: kernel uevents for USB devices, from netlink or from code.

An `EventSource` is anything with an async `events()` iterator of `UEvent`s; the agent only uses an
event to know *when* to scan again (the scan reads sysfs itself), so a lost or extra event costs
nothing but a scan, and the periodic rescan covers events that never came.

`NetlinkEventSource` listens with pyudev (libudev) to the kernel's uevent netlink socket (and, for
source "kernel" on a system without libudev, on the same socket directly: the kernel's messages
are plain `action@devpath` plus `KEY=value` strings, see `parse_kernel_uevent`):

- source "kernel" (the default) receives the kernel's own messages (netlink group 1). They need
  no udev daemon, so they also work in minimal systems that only have devtmpfs (the QEMU node
  guests) and in containers without /run/udev. They arrive before udev rules run, which does not
  matter: the agent reads sysfs, not /dev. Since Linux 4.18 the kernel sends a device's uevent to
  every network namespace owned by the initial user namespace, so an ordinary pod (no
  hostNetwork) hears them; a pod in a user namespace (`hostUsers: false`) hears none.
- source "udev" receives udevd's messages after its rules ran (group 2). udevd sends them in its
  own (the host's) network namespace only, so this needs udevd on the node and `hostNetwork: true`.

Without events (a user-namespaced pod, `--uevents none`) the agent still publishes, at the pace of
its periodic rescan. Only subsystem `usb` matters: devtype `usb_device` (plug, unplug) and
`usb_interface` (interfaces and their drivers appearing a moment after the device, which change
what the agent publishes).

`QueueEventSource` delivers events pushed by code: tests, simulated agents, or nothing at all when
hot-plug is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

USB_DEVTYPES = ("usb_device", "usb_interface")
ACTIONS = ("add", "remove", "change", "bind", "unbind", "move")
NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1


@dataclass(frozen=True)
class UEvent:
    """One kernel uevent: what happened to which device (`sys_name` such as "1-1.4")."""

    action: str
    subsystem: str
    devtype: str | None
    sys_name: str


def is_usb_event(event: UEvent) -> bool:
    """Whether an event can change what the agent publishes."""
    return (event.subsystem == "usb" and event.devtype in USB_DEVTYPES
            and event.action in ACTIONS)


class EventSource(Protocol):
    """Where hot-plug events come from."""

    def events(self) -> AsyncIterator[UEvent]: ...


class QueueEventSource:
    """Events pushed with `push` (from the event loop's thread)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[UEvent] = asyncio.Queue()

    def push(self, event: UEvent) -> None:
        self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[UEvent]:
        while True:
            yield await self._queue.get()


def parse_kernel_uevent(message: bytes) -> UEvent | None:
    """A kernel uevent message (`add@/devices/...` then NUL-separated `KEY=value` pairs), or None
    for anything else (udevd's messages start with "libudev")."""
    header, *pairs = message.split(b"\0")
    if b"@" not in header or header.startswith(b"libudev"):
        return None
    env = dict(p.decode("utf-8", "replace").partition("=")[::2] for p in pairs if b"=" in p)
    action, devpath = env.get("ACTION"), env.get("DEVPATH")
    if not action or not devpath:
        return None
    return UEvent(action=action, subsystem=env.get("SUBSYSTEM", ""), devtype=env.get("DEVTYPE"),
                  sys_name=os.path.basename(devpath))


def _event_from_device(device: Any) -> UEvent:
    return UEvent(action=str(device.action or ""), subsystem=str(device.subsystem or ""),
                  devtype=device.device_type, sys_name=str(device.sys_name or ""))


class NetlinkEventSource:
    """Kernel (or udev) uevents for subsystem usb, through pyudev, or straight from the kernel's
    socket where libudev is missing."""

    def __init__(self, *, source: str = "kernel", libudev: bool | None = None) -> None:
        """`libudev`: True to require it, False to read the kernel socket directly (source
        "kernel" only), None to use it when it can be loaded."""
        if source not in ("kernel", "udev"):
            raise ValueError(f"uevent source must be 'kernel' or 'udev', not {source!r}")
        if source == "udev" and libudev is False:
            raise ValueError("udevd's events can only be read through libudev")
        self.source = source
        self.libudev = libudev

    async def events(self) -> AsyncIterator[UEvent]:
        """Open the netlink socket and yield events; OSError if it cannot be opened (ImportError
        when libudev is required and missing)."""
        monitor = None if self.libudev is False else self._monitor()
        events = _kernel_socket_events() if monitor is None else _pyudev_events(monitor)
        async for event in events:
            yield event

    def _monitor(self) -> Any:
        """A pyudev monitor, or None when libudev cannot be loaded and need not be."""
        try:
            import pyudev  # type: ignore[import-untyped]

            context = pyudev.Context()  # loads libudev: ImportError without it
        except ImportError:
            if self.source != "kernel" or self.libudev:
                raise
            return None
        return pyudev.Monitor.from_netlink(context, source=self.source)


async def _reader_events(fd: int, receive: Callable[[], list[UEvent]]) -> AsyncIterator[UEvent]:
    """Events from a non-blocking file descriptor, read when the event loop says it is ready."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[UEvent] = asyncio.Queue()

    def readable() -> None:
        for event in receive():
            queue.put_nowait(event)

    loop.add_reader(fd, readable)
    try:
        while True:
            yield await queue.get()
    finally:
        loop.remove_reader(fd)


async def _pyudev_events(monitor: Any) -> AsyncIterator[UEvent]:
    monitor.filter_by("usb")
    monitor.start()

    def receive() -> list[UEvent]:
        out = []
        while (device := monitor.poll(timeout=0)) is not None:
            out.append(_event_from_device(device))
        return out

    async for event in _reader_events(monitor.fileno(), receive):
        yield event  # libudev closes the socket with the monitor


async def _kernel_socket_events() -> AsyncIterator[UEvent]:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                         NETLINK_KOBJECT_UEVENT)
    try:
        sock.bind((0, KERNEL_GROUP))
        sock.setblocking(False)

        def receive() -> list[UEvent]:
            out = []
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while True:
                    event = parse_kernel_uevent(sock.recv(65536))
                    if event is not None:
                        out.append(event)
            return out

        async for event in _reader_events(sock.fileno(), receive):
            yield event
    finally:
        sock.close()
