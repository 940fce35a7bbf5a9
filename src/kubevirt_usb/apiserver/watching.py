"""Watch streams: events from the store as the newline-delimited JSON a real kube-apiserver
writes (`{"type": ..., "object": ...}`), with bookmarks, selector filtering and timeouts; over
plain HTTP or, for browsers, over a websocket (one event a text message)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from kubevirt_usb.apiserver import errors, tables
from kubevirt_usb.apiserver.resources import ResourceInfo
from kubevirt_usb.apiserver.selectors import FieldSelector, LabelSelector
from kubevirt_usb.apiserver.store import Obj, Store, StoreEvent, TooOldResourceVersion
from kubevirt_usb.clock import WallClock

PRE_TIMEOUT_BOOKMARK = 2.0  # seconds before the deadline, as the watch cache sends its last one

Matcher = Callable[[Obj], bool]


@dataclass(frozen=True, kw_only=True)
class WatchOptions:
    """What one watch request asked for."""

    since: int | None  # None: start with the current objects as ADDED events
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None
    timeout: float = 1800.0
    bookmarks: bool = False
    table: bool = False
    include_object: str = "Metadata"


def next_bookmark(*, now: float, deadline: float, interval: float) -> float | None:
    """When the next BOOKMARK is due: every `interval`, and once shortly before the deadline
    (the watch cache's rule), or None when no further one fits."""
    due = min(now + interval, deadline - PRE_TIMEOUT_BOOKMARK)
    return due if due > now else None


def event_type_for(event: StoreEvent, matches: Matcher | None) -> str | None:
    """The event a filtered watch sees: an object leaving the selection is DELETED, one
    entering it ADDED; None when the change is outside the selection."""
    if matches is None:
        return event.type
    now = matches(event.obj)
    before = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        return "DELETED" if now or before else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


def encode_event(kind: str, obj: Any) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


class WatchStream:
    """One watch: replay from history or the current objects, then live events until timeout."""

    def __init__(self, *, store: Store, resource: ResourceInfo, namespace: str | None,
                 options: WatchOptions, matches: Matcher | None, clock: WallClock,
                 bookmark_interval: float) -> None:
        self.store = store
        self.resource = resource
        self.namespace = namespace
        self.options = options
        self.matches = matches
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self._headers = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        start = self.options.since if self.options.since is not None \
            else self.store.resource_version
        try:
            watcher = self.store.watch(self.resource.group_resource, namespace=self.namespace,
                                       since=start)
        except TooOldResourceVersion as exc:
            yield encode_event("ERROR", errors.gone(str(exc)).status())
            return
        try:
            if self.options.since is None:
                for obj in self.store.items(self.resource.group_resource, self.namespace):
                    if self.matches is None or self.matches(obj):
                        yield self._encode("ADDED", obj, None)
            async for chunk in self._follow(watcher.queue):
                yield chunk
        finally:
            self.store.unwatch(watcher)

    async def _follow(self, queue: asyncio.Queue[StoreEvent | None]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.timeout
        bookmark_at = next_bookmark(now=loop.time(), deadline=deadline,
                                    interval=self.bookmark_interval) \
            if self.options.bookmarks else None
        while True:
            now = loop.time()
            if now >= deadline:
                return
            wake = deadline if bookmark_at is None else min(deadline, bookmark_at)
            try:
                async with asyncio.timeout(max(wake - now, 0.001)):  # see kubevirt_usb.tasks
                    event = await queue.get()
            except TimeoutError:
                if bookmark_at is not None and loop.time() >= bookmark_at:
                    yield self._bookmark()
                    bookmark_at = next_bookmark(now=loop.time(), deadline=deadline,
                                                interval=self.bookmark_interval)
                continue
            if event is None:
                return
            kind = event_type_for(event, self.matches)
            if kind is not None:
                yield self._encode(kind, event.obj, event)

    def _bookmark(self) -> bytes:
        return encode_event("BOOKMARK", {
            "kind": self.resource.kind, "apiVersion": self.resource.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)}})

    def _encode(self, kind: str, obj: Obj, event: StoreEvent | None) -> bytes:
        if self.options.table:
            body = tables.table(self.resource, [obj], now=self.clock(),
                                include_object=self.options.include_object,
                                resource_version=obj["metadata"].get("resourceVersion", ""),
                                headers=self._headers)
            self._headers = False
            return encode_event(kind, body)
        if event is None:
            return encode_event(kind, self._as_served(obj))
        key = f"{kind}/{self.resource.api_version}"
        cached = event.encoded.get(key)
        if cached is None:
            cached = encode_event(kind, self._as_served(obj))
            event.encoded[key] = cached
        return cached

    def _as_served(self, obj: Obj) -> Obj:
        if obj.get("apiVersion") != self.resource.api_version:
            return {**obj, "apiVersion": self.resource.api_version}
        return obj


async def watch_over_websocket(websocket: WebSocket, stream: AsyncIterable[bytes]) -> None:
    """Accept the upgrade (with the first subprotocol offered, as kube-apiserver's handshake
    does) and send each event as one text message until the watch ends (normal close) or the
    client goes away (the watch is dropped at once, not at its timeout)."""
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=offered[0] if offered else None)
    sender = asyncio.create_task(_send_events(websocket, stream))
    listener = asyncio.create_task(_until_client_closes(websocket))
    for task in (sender, listener):
        task.add_done_callback(_retrieve_outcome)
    try:
        await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # no await after this: whoever cancels this coroutine (the server stopping) sees it end
        # at once; the cancelled watch cleans up on the loop's next turns
        sender.cancel()
        listener.cancel()
    if sender.done() and not sender.cancelled() and sender.exception() is None:
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.close(code=1000)


def _retrieve_outcome(task: asyncio.Task[None]) -> None:
    """A send to a client already gone fails; that is how watches end, not an error to log."""
    if not task.cancelled():
        task.exception()


async def _send_events(websocket: WebSocket, stream: AsyncIterable[bytes]) -> None:
    async for chunk in stream:
        await websocket.send_text(chunk.decode())


async def _until_client_closes(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
