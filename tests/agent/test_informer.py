"""The agent's cache of USBDevice objects: never stepping back, and kept current by list + watch
from the API emulator, through failures."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from kubevirt_usb.agent.informer import DeviceCache, Informer, is_older
from kubevirt_usb.agent.objects import DeviceObject
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.kube.objects import WatchEvent
from kubevirt_usb.kube.resources import USBDevice
from tests.kube.emulator import Emulator, Fault, FaultyTransport, eventually, running


def _obj(name: str, rv: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}, "status": status or None}


def test_versions_compare_only_when_both_are_numbers() -> None:
    assert is_older("9", "10")
    assert not is_older("10", "10")
    assert not is_older("abc", "10")


def test_the_cache_never_steps_back_to_an_older_version() -> None:
    cache = DeviceCache()
    cache.put(_obj("a", "10", node="n1"))
    before, after = cache.apply(WatchEvent("MODIFIED", _obj("a", "9", node="old")))
    assert before is after
    assert cache.objects["a"].node == "n1"
    cache.apply(WatchEvent("DELETED", _obj("a", "8")))
    assert "a" in cache.objects
    _, newer = cache.apply(WatchEvent("MODIFIED", _obj("a", "11", node="n2")))
    assert newer is not None
    assert newer.node == "n2"
    removed, gone = cache.apply(WatchEvent("DELETED", _obj("a", "12")))
    assert (removed is not None, gone, "a" in cache.objects) == (True, None, False)


def test_a_list_replaces_everything() -> None:
    cache = DeviceCache()
    cache.put(_obj("stale", "3"))
    cache.replace([_obj("a", "5"), {"metadata": {}}])
    assert (sorted(cache.objects), cache.synced) == (["a"], True)


def _device(name: str) -> dict[str, Any]:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBDevice",
            "metadata": {"name": name}, "spec": {}}


async def test_lists_then_follows_changes(cluster: Emulator) -> None:
    writer = cluster.client()
    await writer.create(USBDevice, _device("before"))
    changes: list[tuple[DeviceObject | None, DeviceObject | None]] = []
    cache = DeviceCache()
    reader = cluster.client()
    informer = Informer(reader, cache, on_change=lambda b, a: changes.append((b, a)))
    try:
        async with running(informer.run()):
            await eventually(lambda: _true(cache.synced), what="the first list")
            assert list(cache.objects) == ["before"]
            await writer.create(USBDevice, _device("after"))
            await writer.delete(USBDevice, "before")
            await eventually(lambda: _true(sorted(cache.objects) == ["after"]),
                             what="the watch events")
    finally:
        await writer.close()
        await reader.close()
    assert changes[0] == (None, None)
    assert [(b.name if b else None, a.name if a else None) for b, a in changes[1:]] == [
        (None, "after"), ("before", None)]


async def _true(value: bool) -> bool:
    return value


async def test_failures_are_reported_and_retried_after_a_backoff(cluster: Emulator) -> None:
    faults = [Fault("GET", "/usbdevices", 500, "InternalError", times=2)]
    transports: list[FaultyTransport] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        transports.append(FaultyTransport(inner, faults))
        return transports[-1]

    reported: list[tuple[str, int]] = []
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    def on_error(exc: KubeError, attempt: int, delay: float) -> None:
        reported.append((exc.reason, attempt))

    cache = DeviceCache()
    client = cluster.client(wrap=wrap)
    informer = Informer(client, cache, on_change=lambda b, a: None, on_error=on_error,
                        sleep=sleep, rand=lambda: 0.0)
    try:
        async with running(informer.run()):
            await eventually(lambda: _true(cache.synced), what="a list after the failures")
    finally:
        await client.close()
    assert reported == [("InternalError", 1), ("InternalError", 2)]
    assert delays == [0.25, 0.5]
    assert transports[0].injected == [("GET", "/apis/usb.kubevirt-usb.io/v1alpha1/usbdevices",
                                       500)] * 2


def test_other_nodes_objects_are_kept_slim() -> None:
    cache = DeviceCache(node="node1")
    status = {"node": "node2", "portPath": "1-1", "busNumber": 3, "interfaces": []}
    cache.put(_obj("theirs", "5", **status))
    cache.put(_obj("mine", "6", **{**status, "node": "node1"}))
    assert cache.objects["theirs"].status == {"node": "node2", "portPath": "1-1"}
    assert cache.objects["mine"].status == {**status, "node": "node1"}
