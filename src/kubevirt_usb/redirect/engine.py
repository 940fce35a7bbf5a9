"""The agent's side of a device's engine worker (see `worker`): spawn it, run sessions, stop it.

The worker owns the whole data path (device, usbredir host, websocket); the agent only steers it
over a control socket and reads progress, so its asyncio loop never carries usbredir bytes and a
crash in the C libraries costs one worker, never the agent.

    engine = await Engine.spawn()
    session = await engine.open(Open(...), lock_fd=lock.fileno())   # or OpenFailed
    await session.stream(endpoint, path=...)      # HandshakeRejected, ConnectFailed, StartRefused
    ended = await session.wait_ended(on_attached=..., on_progress=...)
    await engine.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence

from kubevirt_usb.redirect import protocol
from kubevirt_usb.redirect.protocol import (
    Attached,
    Close,
    Ended,
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
from kubevirt_usb.stream.endpoint import APIEndpoint
from kubevirt_usb.stream.failures import ConnectFailed, rejection

log = logging.getLogger(__name__)

WORKER_MODULE = "kubevirt_usb.redirect.worker"
READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 10.0
STOP_TIMEOUT = 0.5
LogSink = Callable[[int, str], None]


def worker_argv(python: str = sys.executable) -> list[str]:
    """The command that runs a worker with this Python."""
    return [python, "-m", WORKER_MODULE]


class EngineError(RuntimeError):
    """The worker could not be started, died, or stopped answering."""


class StartRefused(Exception):
    """The usbredir host refused the opened device (claiming or resetting it failed): another
    program uses it, or it stopped answering."""


class Engine:
    """One running worker process."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket,
                 *, on_log: LogSink) -> None:
        self.process = process
        self._control = control
        self._on_log = on_log
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read_events())
        self.libusb_version = ""
        self._broken = False
        self.in_session = False
        """True from a successful `open()` until that session ended: only an idle worker may
        serve another binding."""

    @classmethod
    async def spawn(cls, *, argv: Sequence[str] | None = None, on_log: LogSink | None = None,
                    ready_timeout: float = READY_TIMEOUT) -> Engine:
        """Start a worker and wait until it has loaded the libraries."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        command = [*(argv or worker_argv()), "--control-fd", str(theirs.fileno()),
                   "--parent-pid", str(os.getpid())]
        try:
            process = await asyncio.create_subprocess_exec(
                *command, pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise EngineError(f"cannot start the engine worker: {exc}") from exc
        finally:
            theirs.close()
        engine = cls(process, ours, on_log=on_log or _log)
        try:
            ready = await engine._next(ready_timeout)
        except BaseException:
            await engine.stop()
            raise
        if not isinstance(ready, Ready):
            await engine.stop()
            raise EngineError(f"the engine worker answered {ready!r} instead of Ready")
        engine.libusb_version = ready.libusb
        return engine

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return (self.process.returncode is None and not self._reader.done()
                and not self._broken)

    async def open(self, request: Open, *, lock_fd: int) -> EngineSession | OpenFailed:
        """Open the device for a session (the lock's descriptor goes along); or why not."""
        self._send(request, fds=[lock_fd])
        reply = await self._next(REPLY_TIMEOUT)
        if isinstance(reply, OpenFailed):
            return reply
        if not isinstance(reply, Opened):
            raise EngineError(f"the engine worker answered {reply!r} to Open")
        self.in_session = True
        return EngineSession(self)

    def _send(self, message: protocol.Request, *, fds: Sequence[int] = ()) -> None:
        try:
            socket.send_fds(self._control, [protocol.encode(message)], list(fds))
        except OSError as exc:
            self._broken = True
            raise EngineError(f"the engine worker is gone: {exc}") from exc

    async def _next(self, timeout: float | None) -> Event:
        try:
            event = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            raise EngineError(f"the engine worker did not answer within {timeout:.0f} s") \
                from None
        if event is None:
            self._events.put_nowait(None)  # stays dead for every later wait
            code = await self._exit_code()
            raise EngineError(f"the engine worker exited (status {code})")
        return event

    async def _exit_code(self) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 2.0)
        return self.process.returncode

    async def _read_events(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await loop.sock_recv(self._control, protocol.MAX_MESSAGE):
                try:
                    event = protocol.decode(data)
                except protocol.ProtocolError as exc:
                    log.warning("engine worker %s: %s", self.process.pid, exc)
                    continue
                if isinstance(event, Log):
                    self._on_log(event.level, event.message)
                elif not isinstance(event, Open | Stream | StreamLocal | Close):
                    self._events.put_nowait(event)
        except OSError:
            pass
        finally:
            self._events.put_nowait(None)

    async def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Close the control socket (the worker releases the device and exits); kill it if it
        takes longer than `timeout`."""
        self._control.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        finally:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class EngineSession:
    """An opened device: `stream()` takes the VM slot and streams; `close()` ends it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.streaming = False
        self.ended: Ended | None = None
        self.to_vm = 0
        self.from_vm = 0

    async def stream(self, endpoint: APIEndpoint, *, path: str,
                     connect_timeout: float = 10.0) -> None:
        """Open the websocket at `path` (taking a VM slot) and let the usbredir host take the
        device. HandshakeRejected / ConnectFailed when no slot was taken, StartRefused when the
        host refused the device (the slot is given back); the session is over then."""
        self.engine._send(Stream(endpoint=protocol.endpoint_to_wire(endpoint), path=path,
                                 connect_timeout=connect_timeout))
        reply = await self.engine._next(connect_timeout + REPLY_TIMEOUT)
        if isinstance(reply, Started):
            self.streaming = True
            return
        self._finish(Ended(reason="error", detail=f"{type(reply).__name__}"))
        if isinstance(reply, Rejected):
            raise rejection(status_code=reply.status_code, body=reply.body.encode(),
                            phrase=reply.phrase)
        if isinstance(reply, Unreachable):
            raise ConnectFailed(detail=reply.detail)
        if isinstance(reply, StartFailed):
            raise StartRefused(reply.detail)
        raise EngineError(f"the engine worker answered {reply!r} to Stream")

    async def stream_local(self, sock: socket.socket, *, slot: int,
                           timeout: float = 10.0) -> None:
        """Hand the worker the VM slot socket the agent connected (the node-local path) and let
        the usbredir host take the device; StartRefused when the host refused the device (the
        slot is given back). The caller may close its copy of `sock` afterwards."""
        self.engine._send(StreamLocal(slot=slot), fds=[sock.fileno()])
        reply = await self.engine._next(timeout + REPLY_TIMEOUT)
        if isinstance(reply, Started):
            self.streaming = True
            return
        self._finish(Ended(reason="error", detail=f"{type(reply).__name__}"))
        if isinstance(reply, StartFailed):
            raise StartRefused(reply.detail)
        raise EngineError(f"the engine worker answered {reply!r} to StreamLocal")

    async def wait_ended(self, *, on_attached: Callable[[], None] = lambda: None,
                         on_progress: Callable[[int, int], None] = lambda _t, _f: None
                         ) -> Ended:
        """Follow the stream until it ends: `on_attached` once the VM's slot answered,
        `on_progress(to_vm, from_vm)` about once a second."""
        while self.ended is None:
            self._take(await self.engine._next(None), on_attached, on_progress)
        return self.ended

    def _take(self, event: Event, on_attached: Callable[[], None],
              on_progress: Callable[[int, int], None]) -> None:
        if isinstance(event, Attached):
            on_attached()
        elif isinstance(event, Progress | Ended):
            self.to_vm, self.from_vm = event.to_vm, event.from_vm
            on_progress(event.to_vm, event.from_vm)
            if isinstance(event, Ended):
                self._finish(event)

    def _finish(self, ended: Ended) -> None:
        self.ended = ended
        self.engine.in_session = False

    async def close(self, *, timeout: float = REPLY_TIMEOUT,
                    on_progress: Callable[[int, int], None] = lambda _t, _f: None) -> Ended:
        """End the session (the worker gives the device back and frees the slot)."""
        if self.ended is not None:
            return self.ended
        self.engine._send(Close())
        async with asyncio.timeout(timeout):
            while self.ended is None:
                self._take(await self.engine._next(None), lambda: None, on_progress)
        return self.ended


def _log(level: int, message: str) -> None:
    log.log(logging.WARNING if level <= 2 else logging.INFO, "engine: %s", message)
