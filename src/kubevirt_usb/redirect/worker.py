"""The engine worker: one process per streamed device, owning its libusb context, the usbfs file
descriptor, the usbredir host and the websocket, so that a crash in the C libraries ends this
process and never the agent, and the kernel then frees device, lock and VM slot at once.
`python -m kubevirt_usb.redirect.worker --control-fd N`.

It opens exactly `/dev/bus/usb/BBB/DDD` for the bus/device number the agent resolved from the port
path, then proves the open file is that device: the character device's minor number encodes bus
and device number, the port in sysfs still shows them (a replug in between changes the device
number), and the descriptor carries the expected vendor:product. Nothing is sent to the device
until the VM slot is taken; then `libusbredirhost` claims and resets it.

One thread pumps everything with poll(2): the websocket, the control socket, and libusb's own
file descriptors (the usbfs fd signals completed transfers; its POLLERR/POLLHUP is the device being
unplugged). usbredir keepalive needs nothing more: the host answers the peer's `hello` and every
request itself, and the link pings the websocket.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubevirt_usb import __version__
from kubevirt_usb.redirect import protocol, tls, wslink
from kubevirt_usb.redirect.libusb import LOG_LEVEL_NONE, LibUsb, LibUsbError
from kubevirt_usb.redirect.protocol import (
    Attached,
    Close,
    Ended,
    EndReason,
    Event,
    Log,
    Open,
    Opened,
    OpenFailed,
    Progress,
    Ready,
    Rejected,
    Started,
    StartFailed,
    Stream,
    StreamLocal,
    Unreachable,
)
from kubevirt_usb.redirect.unixlink import UnixLink
from kubevirt_usb.redirect.usbredirhost import (
    LOG_INFO,
    READ_DEVICE_LOST,
    READ_DEVICE_REJECTED,
    READ_PARSE_ERROR,
    UsbRedirHost,
    UsbRedirHostError,
    UsbRedirHostLib,
)
from kubevirt_usb.stream.failures import ConnectFailed, HandshakeRejected, StreamBroken
from kubevirt_usb.usb.sysfs import resolve_port

USB_DEVICE_MAJOR = 189
VERSION = f"kubevirt-usb {__version__}"
PROGRESS_INTERVAL = 1.0
_ERR = select.POLLERR | select.POLLHUP | select.POLLNVAL
_PR_SET_PDEATHSIG = 1


def usbfs_minor(bus: int, devnum: int) -> int:
    """The minor number of /dev/bus/usb/BBB/DDD (major 189), as the kernel assigns it."""
    return (bus - 1) * 128 + (devnum - 1)


def usbfs_path(devfs_root: str, bus: int, devnum: int) -> str:
    return f"{devfs_root}/bus/usb/{bus:03d}/{devnum:03d}"


class AgentGone(Exception):
    """The agent closed the control socket: release everything and exit."""


@dataclass
class Channel:
    """The control socket: messages (with descriptors) in, events out."""

    sock: socket.socket

    def send(self, event: Event) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(protocol.encode(event))

    def receive(self) -> tuple[protocol.Message | None, list[int]]:
        """The next message and the descriptors that came with it; (None, []) at EOF."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, protocol.MAX_MESSAGE, 4)
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        try:
            return protocol.decode(data), fds
        except protocol.ProtocolError:
            for fd in fds:
                os.close(fd)
            return None, []

    def request(self) -> protocol.Message:
        """The next message (descriptors are not expected and are closed); AgentGone at EOF."""
        message, fds = self.receive()
        for fd in fds:
            os.close(fd)
        if message is None:
            raise AgentGone
        return message


class Outlet(Protocol):
    """Where packets for the VM go (the websocket link)."""

    def accepting(self) -> bool: ...

    def send(self, data: bytes | memoryview) -> None: ...


class Transport(Outlet, Protocol):
    """The way to the VM's slot: the websocket (`wslink.Link`, the API path) or the slot socket
    itself (`unixlink.UnixLink`, the node-local path)."""

    def fileno(self) -> int: ...

    def wants_write(self) -> bool: ...

    def flush(self) -> None: ...

    def buffered(self) -> bool: ...

    def receive(self) -> list[bytes] | None: ...

    def next_deadline(self) -> float: ...

    def tick(self) -> None: ...

    @property
    def close_code(self) -> int | None: ...

    def close(self) -> None: ...


@dataclass
class Pump:
    """The usbredir host's read and write callbacks: bytes from the VM (the websocket's
    payloads) in, packets for the VM out, counted."""

    link: Outlet
    inbound: bytearray = field(default_factory=bytearray)
    write_blocked: bool = False
    to_vm: int = 0
    from_vm: int = 0

    def read(self, address: int, count: int) -> int:
        n = min(count, len(self.inbound))
        if n:
            memoryview((ctypes.c_char * n).from_address(address)).cast("B")[:] = \
                memoryview(self.inbound)[:n]
            del self.inbound[:n]
        return n

    def write(self, address: int, count: int) -> int:
        if not self.link.accepting():
            self.write_blocked = True
            return 0
        self.link.send(ctypes.string_at(address, count))
        self.to_vm += count
        return count


class Worker:
    """The worker's state: libusb, the usbredirhost library and the control channel."""

    def __init__(self, channel: Channel, *, usb: LibUsb, hostlib: UsbRedirHostLib,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.channel = channel
        self.usb = usb
        self.hostlib = hostlib
        self.clock = clock
        self._pollfds_changed = True
        usb.on_pollfds_changed(self._mark_pollfds)

    def _mark_pollfds(self) -> None:
        self._pollfds_changed = True

    def serve(self) -> None:
        """Sessions, one after another, until the agent closes the control socket."""
        self.channel.send(Ready(pid=os.getpid(), libusb=self.usb.version()))
        try:
            while True:
                message, fds = self.channel.receive()
                if message is None:
                    return
                if isinstance(message, Open) and len(fds) == 1:
                    self.session(message, lock_fd=fds[0])
                else:
                    for fd in fds:
                        os.close(fd)
        except AgentGone:
            return

    def session(self, request: Open, *, lock_fd: int) -> None:
        """One session (see `protocol`). Its last event is sent only after the device and the
        lock's descriptor are closed, so the agent never sees a session end that still holds
        either."""
        final: Event | None = None
        try:
            opened = self.open_device(request)
            if isinstance(opened, OpenFailed):
                final = opened
                return
            device_fd, handle = opened
            try:
                final = self._opened(handle, device_fd=device_fd)
            finally:
                os.close(device_fd)
        finally:
            os.close(lock_fd)
            if final is not None:
                self.channel.send(final)

    def _opened(self, handle: int, *, device_fd: int) -> Event | None:
        """After Opened: connect, stream, and return the session's last event."""
        self.channel.send(Opened())
        message, fds = self.channel.receive()
        if message is None:
            self.usb.close(handle)
            raise AgentGone
        if isinstance(message, StreamLocal) and len(fds) == 1:
            return self._local(handle, device_fd=device_fd, slot_fd=fds[0])
        for fd in fds:
            os.close(fd)
        if not isinstance(message, Stream):
            self.usb.close(handle)
            return Ended(reason="stopped", detail="closed before streaming")
        started = time.monotonic()
        try:
            link = wslink.connect(tls.for_this_cpu(protocol.endpoint_from_wire(message.endpoint)),
                                  path=message.path, timeout=message.connect_timeout,
                                  clock=self.clock)
        except HandshakeRejected as refused:
            self.usb.close(handle)
            body = json.dumps(dict(refused.status)) if refused.status else refused.message
            return Rejected(status_code=refused.status_code, body=body)
        except (ConnectFailed, OSError) as exc:
            self.usb.close(handle)
            return Unreachable(detail=str(exc))
        self.channel.send(Log(level=LOG_INFO, message=(
            f"websocket open in {time.monotonic() - started:.2f} s")))
        if self._stop_requested():  # told to stop while connecting: never touch the device
            link.close()
            self.usb.close(handle)
            return Ended(reason="stopped", detail="stopped while connecting")
        return self.stream(handle, device_fd=device_fd, link=link)

    def _local(self, handle: int, *, device_fd: int, slot_fd: int) -> Event:
        """The node-local path: the agent connected the slot; stream straight into it."""
        link = UnixLink(socket.socket(fileno=slot_fd))
        if self._stop_requested():
            link.close()
            self.usb.close(handle)
            return Ended(reason="stopped", detail="stopped while connecting")
        return self.stream(handle, device_fd=device_fd, link=link)

    def _stop_requested(self) -> bool:
        poller = select.poll()
        poller.register(self.channel.sock, select.POLLIN)
        if not poller.poll(0):
            return False
        message, fds = self.channel.receive()
        for fd in fds:
            os.close(fd)
        return message is None or isinstance(message, Close)

    def open_device(self, request: Open) -> tuple[int, int] | OpenFailed:
        """(usbfs fd, libusb handle) of exactly the requested device, or why not."""
        path = usbfs_path(request.devfs_root, request.bus, request.devnum)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return OpenFailed(kind="absent", detail=f"{path} does not exist")
        except PermissionError as exc:
            return OpenFailed(kind="access", detail=f"cannot open {path}: {exc.strerror}")
        except OSError as exc:
            return OpenFailed(kind="error", detail=f"cannot open {path}: {exc.strerror}")
        try:
            failure = _verify(fd, request, path)
            if failure is not None:
                os.close(fd)
                return failure
            handle = self.usb.wrap(fd)
        except LibUsbError as exc:
            os.close(fd)
            kind: protocol.OpenFailure = (
                "access" if exc.code == -3 else "absent" if exc.code == -4 else "error")
            return OpenFailed(kind=kind, detail=f"{path}: {exc}")
        try:
            desc = self.usb.descriptor(handle)
        except LibUsbError as exc:
            self.usb.close(handle)
            os.close(fd)
            return OpenFailed(kind="error", detail=f"{path}: {exc}")
        if (desc.vendor_id, desc.product_id) != (request.vendor_id, request.product_id):
            self.usb.close(handle)
            os.close(fd)
            return OpenFailed(kind="mismatch", detail=(
                f"{path} is {desc.vendor_id:04x}:{desc.product_id:04x}, expected "
                f"{request.vendor_id:04x}:{request.product_id:04x}"))
        return fd, handle

    def stream(self, handle: int, *, device_fd: int, link: Transport) -> Event:
        """Hand the device to the usbredir host and stream until the session ends; the last
        event (StartFailed when the host refused the device)."""
        pump = Pump(link=link)

        def log(level: int, message: str) -> None:
            if level <= LOG_INFO:
                self.channel.send(Log(level=level, message=message))

        try:
            host = UsbRedirHost(self.hostlib, context=self.usb.ctx.value or 0, handle=handle,
                                read=pump.read, write=pump.write, log=log, version=VERSION)
        except UsbRedirHostError as exc:  # it closed the handle itself
            link.close()
            return StartFailed(detail=str(exc))
        self.usb.set_log_level(LOG_LEVEL_NONE)
        self.channel.send(Started())
        try:
            ended = self._loop(host, pump, link, device_fd=device_fd)
        finally:
            host.close()
            link.close()
        return Ended(reason=ended.reason, detail=ended.detail, close_code=ended.close_code,
                     to_vm=pump.to_vm, from_vm=pump.from_vm)

    def _loop(self, host: UsbRedirHost, pump: Pump, link: Transport, *, device_fd: int) -> Ended:
        control = self.channel.sock.fileno()
        poller = select.poll()
        link_mask = 0
        attached = False
        device_lost = False
        next_progress = self.clock() + PROGRESS_INTERVAL
        reported = (0, 0)
        self._pollfds_changed = True  # a new poller for this session's descriptors
        while True:
            if self._pollfds_changed:
                self._pollfds_changed = False
                poller = select.poll()
                poller.register(control, select.POLLIN)
                for usb_fd, usb_events in self.usb.pollfds():
                    poller.register(usb_fd, usb_events)
                link_mask = 0
            want = select.POLLIN | (select.POLLOUT if link.wants_write() else 0)
            if want != link_mask:
                poller.register(link.fileno(), want)
                link_mask = want
            busy = (bool(host.has_data_to_write()) and link.accepting()) or link.buffered()
            ready = poller.poll(0 if busy else self._timeout_ms(link, next_progress))
            usb_ready = not ready
            readable = link.buffered()  # frames that came with the handshake response
            try:
                for fd, revents in ready:
                    if fd == control:
                        ended = self._control_event()
                        if ended is not None:
                            return ended
                    elif fd == link.fileno():
                        if revents & select.POLLOUT:
                            link.flush()
                        readable = readable or bool(revents & (select.POLLIN | _ERR))
                    else:
                        usb_ready = True
                        if fd == device_fd and revents & _ERR:
                            device_lost = True
                if readable:
                    ended = self._from_vm(host, pump, link, first=not attached)
                    attached = attached or pump.from_vm > 0
                    if ended is not None:
                        return ended
                if usb_ready:
                    self.usb.handle_events_now()
                link.tick()
                _flush(host, pump)
                link.flush()
            except StreamBroken as exc:
                return Ended(reason="stream-broken", detail=exc.detail, close_code=exc.code)
            except LibUsbError as exc:
                return Ended(reason="error", detail=str(exc))
            except Exception as exc:  # a bug must end the session, not strand the device
                return Ended(reason="error", detail=f"{type(exc).__name__}: {exc}")
            if device_lost:
                return Ended(reason="device-lost", detail="the device was unplugged")
            now = self.clock()
            if now >= next_progress:
                next_progress = now + PROGRESS_INTERVAL
                if (pump.to_vm, pump.from_vm) != reported:
                    reported = (pump.to_vm, pump.from_vm)
                    self.channel.send(Progress(to_vm=pump.to_vm, from_vm=pump.from_vm))

    def _from_vm(self, host: UsbRedirHost, pump: Pump, link: Transport, *,
                 first: bool) -> Ended | None:
        """Take what the VM sent and let the usbredir host parse it."""
        payloads = link.receive()
        if payloads is None:
            return Ended(reason="stream-closed", close_code=link.close_code,
                         detail="the VM side closed the stream")
        for payload in payloads:
            pump.inbound += payload
            pump.from_vm += len(payload)
        if not pump.inbound:
            return None
        if first:
            self.channel.send(Attached())
        return _read_result(host.read_guest_data())

    def _control_event(self) -> Ended | None:
        try:
            message = self.channel.request()
        except AgentGone:
            return Ended(reason="stopped", detail="the agent went away")
        if isinstance(message, Close):
            return Ended(reason="stopped", detail="stopped by the agent")
        return None

    def _timeout_ms(self, link: Transport, next_progress: float) -> int:
        now = self.clock()
        deadline = min(link.next_deadline(), next_progress)
        if not self.usb.handles_timeouts():
            usb_timeout = self.usb.next_timeout()
            if usb_timeout is not None:
                deadline = min(deadline, now + usb_timeout)
        return max(0, int((deadline - now) * 1000) + 1)


def _verify(fd: int, request: Open, path: str) -> OpenFailed | None:
    st = os.fstat(fd)
    expected = os.makedev(USB_DEVICE_MAJOR, usbfs_minor(request.bus, request.devnum))
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != expected:
        return OpenFailed(kind="changed", detail=f"{path} is not the usbfs node of "
                          f"bus {request.bus} device {request.devnum}")
    now = resolve_port(sysfs_root=Path(request.sysfs_root), port_path=request.port_path)
    if now is None:
        return OpenFailed(kind="absent", detail=f"port {request.port_path} is empty now")
    if now != (request.bus, request.devnum):
        return OpenFailed(kind="changed", detail=(
            f"port {request.port_path} now holds bus {now[0]} device {now[1]} (replugged)"))
    return None


def _read_result(rc: int) -> Ended | None:
    reasons: dict[int, tuple[EndReason, str]] = {
        READ_DEVICE_LOST: ("device-lost", "the device was lost (fatal I/O error)"),
        READ_DEVICE_REJECTED: ("rejected", "the VM rejected the device"),
        READ_PARSE_ERROR: ("protocol-error", "the VM side sent a malformed usbredir packet"),
    }
    if rc in reasons:
        reason, detail = reasons[rc]
        return Ended(reason=reason, detail=detail)
    return None


def _flush(host: UsbRedirHost, pump: Pump) -> None:
    """Hand what the host queued to the link until the link is full."""
    pump.write_blocked = False
    while not pump.write_blocked and (pending := host.has_data_to_write()):
        host.write_guest_data()
        if host.has_data_to_write() >= pending and not pump.write_blocked:
            return  # no progress and not blocked: wait for the next event


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the agent dies: nothing may keep the device once its owner is gone."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubevirt-usb-engine", description=__doc__)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    if args.parent_pid:
        _die_with_parent(args.parent_pid)
    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C at a terminal reaches the whole process group: the agent decides when its workers
    # stop (it closes their control sockets), so that a stream ends by releasing the device
    # rather than by a KeyboardInterrupt traceback in the middle of libusb.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(socket.socket(fileno=args.control_fd))
    try:
        usb = LibUsb()
        usb.init()
        hostlib = UsbRedirHostLib()
    except (OSError, LibUsbError) as exc:
        channel.send(Log(level=1, message=f"cannot load libusb/libusbredirhost: {exc}"))
        return 2
    try:
        Worker(channel, usb=usb, hostlib=hostlib).serve()
    finally:
        usb.exit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
