"""Live pages: lists followed through watches, re-rendered parts sent as server-sent events."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.kube.objects import WatchEvent
from kubevirt_usb.web.kubeapi import USB_ATTACHMENTS, USB_DEVICES, UserAPI
from kubevirt_usb.web.live import (
    Snapshot,
    Source,
    SourceState,
    apply_event,
    load,
    sse_message,
    stream,
)
from tests.web.support import ALICE, MALLORY, Cluster, device


def _obj(name: str, version: str, **extra: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}, **extra}


def test_events_fold_into_what_is_known() -> None:
    state = SourceState()
    assert apply_event(state, WatchEvent("ADDED", _obj("a", "1")))
    assert not apply_event(state, WatchEvent("MODIFIED", _obj("a", "1")))
    assert apply_event(state, WatchEvent("MODIFIED", _obj("a", "2", spec="x")))
    assert not apply_event(state, WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "9"}}))
    assert state.resource_version == "9"
    assert apply_event(state, WatchEvent("DELETED", _obj("a", "10")))
    assert not apply_event(state, WatchEvent("DELETED", _obj("a", "11")))
    assert state.items == []
    assert state.resource_version == "11"


def test_sse_messages_put_every_line_on_a_data_line() -> None:
    assert sse_message("devices", "<p>\r\n1</p>\n<p>2</p>") == \
        "event: devices\ndata: <p>\ndata: 1</p>\ndata: <p>2</p>\n\n"
    assert sse_message("expired", "") == "event: expired\ndata: \n\n"


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[UserAPI]:
    verify = ssl.create_default_context(cafile=str(cluster.server.certificate.ca_path))
    pool = UserAPI(server=cluster.url, verify=verify)
    yield pool
    await pool.close()


async def test_load_keeps_refusals_per_source(api: UserAPI) -> None:
    sources = [Source("devices", USB_DEVICES),
               Source("attachments", USB_ATTACHMENTS, namespace="default")]
    states = await load(api.as_user(MALLORY), sources)
    assert states["devices"].error is None
    assert states["devices"].items
    refused = states["attachments"].error
    assert refused is not None
    assert refused.code == 403


def _serials(snapshot: Snapshot) -> Mapping[str, str]:
    serials = sorted(str((d.get("status") or {}).get("serial"))
                     for d in snapshot["devices"].items)
    return {"serials": " ".join(serials)}


async def test_a_change_in_the_api_is_sent_as_a_new_part(api: UserAPI, cluster: Cluster) -> None:
    events = stream(api.as_user(ALICE), [Source("devices", USB_DEVICES)], _serials,
                    heartbeat=0.5)
    first = await asyncio.wait_for(events.__anext__(), timeout=10)
    assert first.startswith("event: serials\n")
    assert "LIVE1" not in first
    obj, status = device("46f4-0001-live1", node="node3", port="3-1", serial="LIVE1",
                         product="Live stick")
    await asyncio.to_thread(cluster.create, obj, status)
    async def next_part() -> str:
        while True:
            message = await events.__anext__()
            if message.startswith("event: serials"):
                return message
    try:
        changed = await asyncio.wait_for(next_part(), timeout=10)
        while "LIVE1" not in changed:  # the create and the status write may come apart
            changed = await asyncio.wait_for(next_part(), timeout=10)
    finally:
        await events.aclose()
        with cluster.http() as http:
            http.delete(f"/apis/usb.kubevirt-usb.io/v1alpha1/usbdevices/{obj['metadata']['name']}")
    assert "LIVE1" in changed


async def test_an_unknown_token_gets_the_expired_event(api: UserAPI) -> None:
    events = stream(api.as_user("nobody"), [Source("devices", USB_DEVICES)], _serials,
                    expired_html="<p>bye</p>")
    assert [message async for message in events] == ["event: expired\ndata: <p>bye</p>\n\n"]


async def test_heartbeats_keep_a_quiet_page_connected(api: UserAPI) -> None:
    events = stream(api.as_user(ALICE), [Source("devices", USB_DEVICES)], _serials,
                    heartbeat=0.2)
    try:
        await asyncio.wait_for(events.__anext__(), timeout=10)
        assert await asyncio.wait_for(events.__anext__(), timeout=10) == ": keep-alive\n\n"
    finally:
        await events.aclose()


async def test_a_token_revoked_while_connected_ends_the_page(api: UserAPI,
                                                             cluster: Cluster) -> None:
    token = cluster.server.add_user(UserInfo(name="alice", groups=("system:authenticated",)))
    events = stream(api.as_user(token), [Source("devices", USB_DEVICES)], _serials,
                    expired_html="<p>bye</p>", recheck=0.2)
    first = await asyncio.wait_for(events.__anext__(), timeout=10)
    assert first.startswith("event: serials\n")
    cluster.background.call(lambda: cluster.server.authenticator.tokens.pop(token))
    message = await asyncio.wait_for(events.__anext__(), timeout=10)
    while message.startswith(":"):
        message = await asyncio.wait_for(events.__anext__(), timeout=10)
    assert message == "event: expired\ndata: <p>bye</p>\n\n"


async def test_a_session_ended_elsewhere_ends_the_page(api: UserAPI) -> None:
    sessions = {"live": True}
    events = stream(api.as_user(ALICE), [Source("devices", USB_DEVICES)], _serials,
                    expired_html="<p>bye</p>", signed_in=lambda: sessions["live"],
                    recheck=0.2)
    first = await asyncio.wait_for(events.__anext__(), timeout=10)
    assert first.startswith("event: serials\n")
    sessions["live"] = False  # signed out in another tab
    message = await asyncio.wait_for(events.__anext__(), timeout=10)
    while message.startswith(":"):
        message = await asyncio.wait_for(events.__anext__(), timeout=10)
    assert message == "event: expired\ndata: <p>bye</p>\n\n"


class _OneChange(httpx.AsyncByteStream):
    """A watch that delivers one change, has the page closed just as it is delivered, then
    stays open."""

    def __init__(self, close_page: Callable[[], None]) -> None:
        self.close_page = close_page
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        change = {"type": "ADDED", "object": {
            "metadata": {"name": "46f4-0001-live2", "resourceVersion": "2"},
            "status": {"serial": "LIVE2"}}}
        yield json.dumps(change).encode() + b"\n"
        self.close_page()  # runs once the page's stream has taken the change
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


class _ClosedAsAChangeArrives(httpx.AsyncBaseTransport):
    """An API with no devices whose first change arrives as the user closes the page."""

    def __init__(self) -> None:
        self.page: asyncio.Task[None] | None = None
        self.watch = _OneChange(self._close_page)

    def _close_page(self) -> None:
        assert self.page is not None
        self.page.cancel()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("watch") == "true":
            return httpx.Response(200, stream=self.watch)
        return httpx.Response(200, json={"metadata": {"resourceVersion": "1"}, "items": []})


async def test_a_page_closed_as_a_change_arrives_stops_and_sends_nothing_more() -> None:
    api = _ClosedAsAChangeArrives()
    pool = UserAPI(server="https://api.invalid", verify=False, transport=api)
    sent: list[str] = []

    async def page() -> None:
        async for message in stream(pool.as_user(ALICE), [Source("devices", USB_DEVICES)],
                                    _serials, heartbeat=60, recheck=60):
            sent.append(message)

    api.page = asyncio.create_task(page())
    try:
        await asyncio.wait({api.page}, timeout=10)  # at once; the old code never ended
    finally:
        api.page.cancel()
        await pool.close()
    assert api.page.cancelled()
    assert sent == ["event: serials\ndata: \n\n"]  # the page as first sent, nothing after
    assert api.watch.closed
