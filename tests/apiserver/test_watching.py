"""Watch streams: bookmarks, selector transitions, encoding, replay and timeouts; over a
websocket."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from kubevirt_usb.apiserver.resources import builtin_resources
from kubevirt_usb.apiserver.store import Store, StoreEvent
from kubevirt_usb.apiserver.watching import (
    WatchOptions,
    WatchStream,
    encode_event,
    event_type_for,
    next_bookmark,
    watch_over_websocket,
)
from tests.polling import wait_until

CONFIGMAPS = next(i for i in builtin_resources() if i.kind == "ConfigMap")
GR = CONFIGMAPS.group_resource


@pytest.mark.parametrize(("now", "deadline", "interval", "due"), [
    (0.0, 1800.0, 60.0, 60.0),
    (0.0, 6.0, 60.0, 4.0),
    (4.0, 6.0, 60.0, None),
    (0.0, 1.0, 60.0, None),
])
def test_next_bookmark(now: float, deadline: float, interval: float, due: float | None) -> None:
    assert next_bookmark(now=now, deadline=deadline, interval=interval) == due


def _event(kind: str, labels: dict[str, str], old_labels: dict[str, str] | None) -> StoreEvent:
    def obj(lab: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": "x", "labels": lab}}

    return StoreEvent(rv=5, type=kind, group_resource=GR, obj=obj(labels),
                      old=obj(old_labels) if old_labels is not None else None)


def _red(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"]["labels"].get("color") == "red")


@pytest.mark.parametrize(("kind", "now", "before", "seen"), [
    ("ADDED", {"color": "red"}, None, "ADDED"),
    ("MODIFIED", {"color": "red"}, {"color": "red"}, "MODIFIED"),
    ("MODIFIED", {"color": "red"}, {"color": "blue"}, "ADDED"),
    ("MODIFIED", {"color": "blue"}, {"color": "red"}, "DELETED"),
    ("MODIFIED", {"color": "blue"}, {"color": "blue"}, None),
    ("DELETED", {"color": "red"}, {"color": "red"}, "DELETED"),
    ("DELETED", {"color": "blue"}, {"color": "blue"}, None),
])
def test_selector_transitions(kind: str, now: dict[str, str], before: dict[str, str] | None,
                              seen: str | None) -> None:
    assert event_type_for(_event(kind, now, before), _red) == seen
    assert event_type_for(_event(kind, now, before), None) == kind


def test_encode_event() -> None:
    assert encode_event("ADDED", {"a": 1}) == b'{"type":"ADDED","object":{"a":1}}\n'


def _put(store: Store, name: str, **extra: Any) -> dict[str, Any]:
    return store.put(GR, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": "ns", "resourceVersion": str(store.next_resource_version())},
        **extra})


async def _collect(stream: WatchStream) -> list[dict[str, Any]]:
    return [orjson.loads(chunk) async for chunk in stream]


def _stream(store: Store, options: WatchOptions, **kwargs: Any) -> WatchStream:
    return WatchStream(store=store, resource=CONFIGMAPS, namespace=kwargs.get("namespace"),
                       options=options, matches=kwargs.get("matches"),
                       clock=lambda: dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                       bookmark_interval=kwargs.get("interval", 60.0))


async def test_without_a_resource_version_current_objects_come_first() -> None:
    store = Store()
    _put(store, "a")
    stream = _stream(store, WatchOptions(since=None, timeout=0.05))
    events = await _collect(stream)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


async def test_from_a_resource_version_history_is_replayed() -> None:
    store = Store()
    start = store.resource_version
    _put(store, "a")
    _put(store, "a", data={"k": "v"})
    events = await _collect(_stream(store, WatchOptions(since=start, timeout=0.05)))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]


async def test_too_old_is_one_error_event() -> None:
    store = Store()
    _put(store, "a")
    _put(store, "b")
    store.compact()
    events = await _collect(_stream(store, WatchOptions(since=1, timeout=5)))
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["reason"] == "Expired"
    oldest = store.resource_version + 1
    assert events[0]["object"]["message"] == f"too old resource version: 1 ({oldest})"


async def test_live_events_and_bookmarks() -> None:
    store = Store()
    start = store.resource_version
    stream = _stream(store, WatchOptions(since=start, timeout=10, bookmarks=True),
                     interval=0.05)
    events: list[dict[str, Any]] = []

    async def until_bookmark() -> None:
        chunks = stream.__aiter__()
        async for chunk in chunks:
            events.append(orjson.loads(chunk))
            if events[-1]["type"] == "BOOKMARK":
                await chunks.aclose()  # type: ignore[attr-defined]
                return

    watching = asyncio.ensure_future(until_bookmark())
    await asyncio.sleep(0)
    _put(store, "live")
    await asyncio.wait_for(watching, 5)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"] == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
        "resourceVersion": str(store.resource_version)}}
    assert store.watcher_count() == 0


async def test_closing_the_store_watchers_ends_the_stream() -> None:
    store = Store()
    collected = asyncio.ensure_future(_collect(_stream(store, WatchOptions(
        since=store.resource_version, timeout=60))))
    await asyncio.sleep(0)
    store.close_watchers()
    assert await asyncio.wait_for(collected, 5) == []


async def test_a_watch_cancelled_as_an_event_arrives_ends_and_unwatches() -> None:
    store = Store()
    received: list[bytes] = []

    async def watch() -> None:
        async for chunk in _stream(store, WatchOptions(since=store.resource_version,
                                                       timeout=60)):
            received.append(chunk)

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0)  # it waits for an event
    _put(store, "a")  # an event arrives...
    watching.cancel()  # ...as the client goes away
    await asyncio.wait({watching}, timeout=10)  # at once; the old code went on watching
    assert watching.cancelled()
    assert received == []
    assert store.watcher_count() == 0


async def test_tables_in_a_watch_carry_headers_once() -> None:
    store = Store()
    start = store.resource_version
    _put(store, "a")
    _put(store, "b")
    events = await _collect(_stream(store, WatchOptions(since=start, timeout=0.05, table=True)))
    assert [len(e["object"]["columnDefinitions"]) > 0 for e in events] == [True, False]
    assert events[1]["object"]["rows"][0]["cells"][0] == "b"


async def test_one_encoding_per_event_is_shared_by_watchers() -> None:
    store = Store()
    start = store.resource_version
    _put(store, "a")
    first = await _collect(_stream(store, WatchOptions(since=start, timeout=0.05)))
    watcher = store.watch(GR, namespace=None, since=start)  # hands out the stored event
    event = watcher.queue.get_nowait()
    assert event is not None
    assert list(event.encoded) == ["ADDED/v1"]
    second = await _collect(_stream(store, WatchOptions(since=start, timeout=0.05)))
    assert first == second


def _websocket_app(stream: Any) -> Starlette:
    async def watch(websocket: WebSocket) -> None:
        await watch_over_websocket(websocket, stream())

    return Starlette(routes=[WebSocketRoute("/watch", watch)])


def test_each_event_is_one_text_message_then_a_normal_close() -> None:
    async def two_events() -> Any:
        yield encode_event("ADDED", {"n": 1})
        yield encode_event("MODIFIED", {"n": 2})

    with TestClient(_websocket_app(two_events)) as client, \
            client.websocket_connect("/watch", subprotocols=["base64.binary.k8s.io"]) as ws:
        assert ws.accepted_subprotocol == "base64.binary.k8s.io"
        assert orjson.loads(ws.receive_text()) == {"type": "ADDED", "object": {"n": 1}}
        assert orjson.loads(ws.receive_text()) == {"type": "MODIFIED", "object": {"n": 2}}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


def test_a_client_that_goes_away_ends_the_watch_at_once() -> None:
    ended: list[bool] = []

    async def quiet_forever() -> Any:
        try:
            yield encode_event("ADDED", {"n": 1})
            await asyncio.Event().wait()
        finally:
            ended.append(True)

    with TestClient(_websocket_app(quiet_forever)) as client:
        with client.websocket_connect("/watch") as ws:
            assert ws.accepted_subprotocol is None
            assert orjson.loads(ws.receive_text())["type"] == "ADDED"
        wait_until(lambda: ended, what="the watch to end when its client closed", timeout=10)
