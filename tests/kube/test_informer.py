"""The informer: a local copy of a resource kept by list + watch and by one's own writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from kubevirt_usb.kube.client import KubeClient, ResourceType
from kubevirt_usb.kube.errors import Gone, Unavailable
from kubevirt_usb.kube.informer import Informer, is_newer
from kubevirt_usb.kube.objects import Obj, ObjectList, WatchEvent
from kubevirt_usb.kube.resources import USBDevice
from kubevirt_usb.kube.retry import Backoff
from tests.kube.emulator import Emulator, eventually

Change = tuple[str | None, str | None]


@pytest.fixture
async def client(cluster: Emulator) -> AsyncIterator[KubeClient]:
    kube = cluster.client(field_manager="informer-test")
    yield kube
    await kube.close()


def device(name: str) -> dict[str, Any]:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBDevice",
            "metadata": {"name": name}, "spec": {}}


def rv_of(obj: Obj | None) -> str | None:
    return None if obj is None else str(obj["metadata"]["resourceVersion"])


def recorder(changes: list[Change]) -> Any:
    def on_change(old: Obj | None, new: Obj | None) -> None:
        changes.append((None if old is None else old["metadata"]["name"],
                        None if new is None else new["metadata"]["name"]))
    return on_change


def test_newer_means_a_higher_integer_version_else_the_arrival() -> None:
    def obj(rv: str) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": rv}}
    assert is_newer(obj("10"), obj("9"))
    assert not is_newer(obj("9"), obj("10"))
    assert not is_newer(obj("9"), obj("9"))
    assert is_newer(obj("abc"), obj("9"))
    assert is_newer(obj("1"), None)


async def test_lists_then_follows_every_change(client: KubeClient) -> None:
    await client.create(USBDevice, device("before"))
    changes: list[Change] = []
    informer = Informer(client, USBDevice, on_change=recorder(changes))
    task = asyncio.ensure_future(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert changes == [(None, "before")]
        await client.create(USBDevice, device("after"))
        await client.patch(USBDevice, "before", {"metadata": {"labels": {"x": "y"}}})
        await client.delete(USBDevice, "after")
        await eventually(lambda: _true(len(changes) >= 4), what="four changes")
        assert changes == [(None, "before"), (None, "after"), ("before", "before"),
                           ("after", None)]
        assert set(informer.store) == {("", "before")}
        assert informer.store[("", "before")]["metadata"]["labels"] == {"x": "y"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_own_writes_are_seen_at_once_and_never_undone(client: KubeClient) -> None:
    first = await client.create(USBDevice, device("d"))
    changes: list[Change] = []
    informer = Informer(client, USBDevice, on_change=recorder(changes))
    informer.replace([first])
    second = await client.patch(USBDevice, "d", {"metadata": {"labels": {"v": "2"}}})
    informer.observe(second)
    informer.apply("MODIFIED", first)  # a late event about the older version
    assert rv_of(informer.store[("", "d")]) == rv_of(second)
    assert changes == [(None, "d"), ("d", "d")]
    informer.replace([])
    assert changes[-1] == ("d", None)
    assert not informer.store


class Scripted:
    """A client whose watches fail as scripted, then stay open."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.lists = 0

    async def list(self, res: ResourceType, *, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> ObjectList:
        self.lists += 1
        return ObjectList(items=[{"metadata": {"name": f"v{self.lists}",
                                               "resourceVersion": str(self.lists)}}],
                          resource_version=str(self.lists))

    async def watch(self, res: ResourceType, *, resource_version: str,
                    namespace: str | None = None,
                    labels: Mapping[str, str] | None = None) -> AsyncIterator[WatchEvent]:
        if self.failures:
            raise self.failures.pop(0)
        await asyncio.Event().wait()
        yield WatchEvent("BOOKMARK", {})  # never reached


async def test_gone_lists_again_at_once_other_failures_after_a_backoff() -> None:
    source = Scripted([Gone("too old", code=410), Unavailable("down", code=503)])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    changes: list[Change] = []
    informer = Informer(source, USBDevice, on_change=recorder(changes),
                        backoff=Backoff(base=1.0, cap=4.0), sleep=sleep, rand=lambda: 0.0)
    task = asyncio.ensure_future(informer.run())
    try:
        await eventually(lambda: _true(source.lists == 3), what="three lists")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert delays == [0.5]  # only after the 503
    assert changes == [(None, "v1"), ("v1", None), (None, "v2"), ("v2", None), (None, "v3")]


async def _true(value: bool) -> bool:
    return value
