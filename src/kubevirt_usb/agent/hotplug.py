"""Hot-plug events: kernel uevents for USB devices, from netlink or from code.

An `EventSource` is anything with an async `events()` iterator of `UEvent`s; the agent only uses an
event to know *when* to scan again (the scan reads sysfs itself), so a lost or extra event costs
nothing but a scan, and the periodic rescan covers events that never came.

`NetlinkEventSource` listens with pyudev (libudev) to the kernel's uevent netlink socket:

- source "kernel" (the default) receives the kernel's own messages (netlink group 1). They need
  no udev daemon, so they also work in minimal systems that only have devtmpfs (the QEMU node
  guests) and in containers without /run/udev. They arrive before udev rules run, which does not
  matter: the agent reads sysfs, not /dev.
- source "udev" receives udevd's messages after its rules ran (group 2); it needs udevd.

Either way the socket only hears uevents of its network namespace's host, so the agent pod needs
`hostNetwork: true` to get events; without them it still publishes, at the pace of its periodic
rescan. Only subsystem `usb` matters: devtype `usb_device` (plug, unplug) and `usb_interface`
(interfaces and their drivers appearing a moment after the device, which change what the agent
publishes).

`QueueEventSource` delivers events pushed by code: tests, simulated agents, or nothing at all when
hot-plug is off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

USB_DEVTYPES = ("usb_device", "usb_interface")
ACTIONS = ("add", "remove", "change", "bind", "unbind", "move")


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


def _event_from_device(device: Any) -> UEvent:
    return UEvent(action=str(device.action or ""), subsystem=str(device.subsystem or ""),
                  devtype=device.device_type, sys_name=str(device.sys_name or ""))


class NetlinkEventSource:
    """Kernel (or udev) uevents for subsystem usb, through pyudev."""

    def __init__(self, *, source: str = "kernel") -> None:
        if source not in ("kernel", "udev"):
            raise ValueError(f"uevent source must be 'kernel' or 'udev', not {source!r}")
        self.source = source

    async def events(self) -> AsyncIterator[UEvent]:
        """Open the netlink socket and yield events; OSError if it cannot be opened."""
        import pyudev  # type: ignore[import-untyped]  # libudev is loaded only when used

        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=self.source)
        monitor.filter_by("usb")
        monitor.start()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[UEvent] = asyncio.Queue()

        def readable() -> None:
            while (device := monitor.poll(timeout=0)) is not None:
                queue.put_nowait(_event_from_device(device))

        loop.add_reader(monitor.fileno(), readable)
        try:
            while True:
                yield await queue.get()
        finally:
            loop.remove_reader(monitor.fileno())  # libudev closes the socket with the monitor
