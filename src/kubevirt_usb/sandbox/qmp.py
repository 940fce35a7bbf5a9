"""A small asyncio client for QEMU's machine protocol (QMP) over a unix socket.

`QMPClient.connect()` reads the greeting and negotiates capabilities; `execute()` sends a command
and returns its `return` value or raises `QMPError` with QEMU's error class and text; events are
collected by `listen()` from the moment it is entered, so none is missed between sending a command
and waiting for the event it causes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class QMPError(Exception):
    """QEMU refused a command: `error_class` is QMP's class (e.g. GenericError, DeviceNotFound)."""

    def __init__(self, command: str, error_class: str, description: str) -> None:
        super().__init__(f"{command}: {error_class}: {description}")
        self.command = command
        self.error_class = error_class
        self.description = description


class QMPConnectionError(ConnectionError):
    """The QMP socket could not be reached, or closed (QEMU exited)."""


@dataclass(frozen=True)
class QMPEvent:
    """One asynchronous QMP event, e.g. DEVICE_DELETED with data {"device": "stick1", ...}."""

    name: str
    data: Mapping[str, Any]
    timestamp: float


@dataclass
class EventListener:
    """Events received since the listener was opened; `wait()` takes the first that matches."""

    _queue: asyncio.Queue[QMPEvent | None] = field(default_factory=asyncio.Queue)

    def deliver(self, event: QMPEvent | None) -> None:
        """Queue an event (None: the connection closed)."""
        self._queue.put_nowait(event)

    async def next(self) -> QMPEvent | None:
        """The next event in arrival order (None: the connection closed)."""
        return await self._queue.get()

    async def wait(
        self, name: str, *, match: Callable[[QMPEvent], bool] = lambda _event: True
    ) -> QMPEvent:
        """The next event called `name` that satisfies `match` (bound it with asyncio.timeout)."""
        while True:
            event = await self.next()
            if event is None:
                raise QMPConnectionError(f"QMP closed while waiting for {name}")
            if event.name == name and match(event):
                return event


class QMPClient:
    """A connected, negotiated QMP session. Use `connect()`; close with `close()`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._listeners: list[EventListener] = []
        self._next_id = 0
        self._closed = False
        self._reader_task: asyncio.Task[None] | None = None
        self.greeting: Mapping[str, Any] = {}

    @classmethod
    async def connect(cls, path: Path, *, within: float = 10.0) -> QMPClient:
        """Connect to QEMU's `-qmp unix:PATH,server=on` socket, retrying for `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=2**24)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() >= deadline:
                    raise QMPConnectionError(f"no QMP socket at {path}: {exc}") from exc
                await asyncio.sleep(0.05)
        client = cls(reader, writer)
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 1.0)):
                await client._negotiate()
        except BaseException:
            await client.close()
            raise
        return client

    async def _negotiate(self) -> None:
        line = await self._reader.readline()
        if not line:
            raise QMPConnectionError("QMP closed before its greeting")
        greeting = json.loads(line)
        if "QMP" not in greeting:
            raise QMPConnectionError(f"not a QMP greeting: {line[:200]!r}")
        self.greeting = greeting["QMP"]
        self._reader_task = asyncio.create_task(self._read_loop())
        await self.execute("qmp_capabilities")

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Run a QMP command; its `return` value, or QMPError with QEMU's class and text.

        QMPConnectionError when QEMU goes away first; bound slow commands with asyncio.timeout.
        """
        if self._closed:
            raise QMPConnectionError(f"{command}: QMP connection is closed")
        self._next_id += 1
        request_id = f"kvu-{self._next_id}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"execute": command, "id": request_id}
        if arguments:
            message["arguments"] = dict(arguments)
        try:
            self._writer.write(json.dumps(message).encode() + b"\n")
            await self._writer.drain()
            response: Mapping[str, Any] = await future
        except (ConnectionError, BrokenPipeError) as exc:
            raise QMPConnectionError(f"{command}: QMP connection lost: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
        if "error" in response:
            error = response["error"]
            raise QMPError(command, str(error.get("class", "")), str(error.get("desc", "")))
        return response.get("return")

    @contextlib.contextmanager
    def listen(self) -> Iterator[EventListener]:
        """Collect events from now on: `with qmp.listen() as events: ...; await events.wait()`."""
        listener = EventListener()
        self._listeners.append(listener)
        try:
            yield listener
        finally:
            self._listeners.remove(listener)

    async def events(self) -> AsyncIterator[QMPEvent]:
        """Every event from now on, until the connection closes."""
        with self.listen() as listener:
            while True:
                event = await listener.next()
                if event is None:
                    return
                yield event

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                self._dispatch(json.loads(line))
        except (ConnectionError, ValueError):
            pass
        finally:
            self._closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(QMPConnectionError("QMP connection closed"))
            for listener in self._listeners:
                listener.deliver(None)

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        if "event" in message:
            stamp = message.get("timestamp", {})
            event = QMPEvent(
                name=str(message["event"]),
                data=message.get("data", {}),
                timestamp=stamp.get("seconds", 0) + stamp.get("microseconds", 0) / 1e6,
            )
            for listener in self._listeners:
                listener.deliver(event)
            return
        future = self._pending.get(str(message.get("id")))
        if future is not None and not future.done():
            future.set_result(message)

    async def close(self) -> None:
        """Close the socket (QEMU keeps running)."""
        self._closed = True
        self._writer.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
