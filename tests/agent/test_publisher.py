"""Publishing against the API emulator: conflict-safe writes, lost races, rejected objects, and no
write at all when nothing changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx2
import pytest

from kubevirt_usb.agent.informer import DeviceCache
from kubevirt_usb.agent.publisher import Publisher
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.resources import USBDevice
from kubevirt_usb.usb.model import UsbDevice
from tests.kube.emulator import Emulator, Fault, FaultyTransport

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=10)


def stick(port: str, *, serial: str | None = "AAA1", devnum: int = 2) -> UsbDevice:
    return UsbDevice(port_path=port, vendor_id="46f4", product_id="0001",
                     bus=int(port.split("-")[0]), devnum=devnum, manufacturer="QEMU",
                     product="QEMU USB HARDDRIVE", serial=serial)


class Node:
    """One node's publisher with its own cache and a transport that records requests."""

    def __init__(self, cluster: Emulator, name: str, faults: list[Fault] | None = None) -> None:
        self.transport: FaultyTransport | None = None
        self.faults = faults or []
        self.client = cluster.client(field_manager="kubevirt-usb-agent", wrap=self._wrap)
        self.cache = DeviceCache()
        self.publisher = Publisher(self.client, self.cache, node=name, grace=GRACE)

    def _wrap(self, inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        self.transport = FaultyTransport(inner, self.faults)
        return self.transport

    async def sync(self) -> None:
        self.cache.replace((await self.client.list(USBDevice)).items)

    def writes(self) -> list[tuple[str, str]]:
        assert self.transport is not None
        return [r for r in self.transport.requests if r[0] != "GET"]


@pytest.fixture
async def reader(cluster: Emulator) -> AsyncIterator[KubeClient]:
    client = cluster.client()
    yield client
    await client.close()


async def _versions(client: KubeClient) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
            for o in (await client.list(USBDevice)).items}


async def test_publishes_then_writes_nothing_when_nothing_changed(
        cluster: Emulator, reader: KubeClient) -> None:
    node = Node(cluster, "node1")
    await node.sync()
    devices = [stick("2-1"), stick("2-2", serial=None)]
    first = await node.publisher.publish(devices, now=NOW)
    assert (dict(first.writes), first.converged) == ({"create": 2, "status": 2}, True)
    published = await _versions(reader)
    assert sorted(published) == ["46f4-0001-aaa1", "node1-46f4-0001-2-2"]

    again = Node(cluster, "node1")  # a restarted agent: fresh cache, fresh connection
    await again.sync()
    second = await again.publisher.publish(devices, now=NOW + dt.timedelta(hours=1))
    assert (dict(second.writes), again.writes()) == ({}, [])
    assert await _versions(reader) == published
    await node.client.close()
    await again.client.close()


async def test_a_stale_cache_loses_the_race_reads_again_and_converges(
        cluster: Emulator, reader: KubeClient) -> None:
    node = Node(cluster, "node1")
    await node.sync()
    await node.publisher.publish([stick("2-1")], now=NOW)
    stale = dict(node.cache.objects)
    await reader.patch(USBDevice, "46f4-0001-aaa1", {"metadata": {"labels": {"x": "y"}}})
    node.cache.objects = stale
    result = await node.publisher.publish([stick("2-1", devnum=7)], now=NOW)
    assert (result.conflicts, result.converged, dict(result.writes)) == (1, True, {"status": 1})
    current = await reader.get(USBDevice, "46f4-0001-aaa1")
    assert current["status"]["deviceNumber"] == 7
    assert current["metadata"]["labels"]["x"] == "y"
    await node.client.close()


async def test_twins_racing_from_two_nodes_end_with_two_distinct_objects(
        cluster: Emulator, reader: KubeClient) -> None:
    one, two = Node(cluster, "node1"), Node(cluster, "node2")
    await one.sync()
    await two.sync()  # both saw an empty cluster
    await one.publisher.publish([stick("2-1", serial="TWIN")], now=NOW)
    result = await two.publisher.publish([stick("1-1", serial="TWIN")], now=NOW)
    assert (result.conflicts, result.converged) == (1, True)
    objects = {o["metadata"]["name"]: o["status"] for o in (await reader.list(USBDevice)).items}
    assert {name: (s["node"], s["identity"]["tier"]) for name, s in objects.items()} == {
        "46f4-0001-twin": ("node1", "serial"),
        "node2-46f4-0001-1-1": ("node2", "port")}
    await one.client.close()
    await two.client.close()


async def test_a_rejected_object_does_not_stop_the_others(
        cluster: Emulator, reader: KubeClient) -> None:
    node = Node(cluster, "node1", [Fault("PATCH", "/46f4-0001-bad/status", 422, "Invalid")])
    await node.sync()
    result = await node.publisher.publish([stick("2-1", serial="BAD"), stick("2-2")], now=NOW)
    assert result.rejected == ["46f4-0001-bad"]
    good = await reader.get(USBDevice, "46f4-0001-aaa1")
    assert good["status"]["present"] is True
    await node.client.close()


async def test_a_device_bound_meanwhile_is_not_deleted(
        cluster: Emulator, reader: KubeClient) -> None:
    node = Node(cluster, "node1")
    await node.sync()
    await node.publisher.publish([stick("2-1")], now=NOW)
    await node.publisher.publish([], now=NOW)  # unplugged: absent
    unbound_view = dict(node.cache.objects)
    claim = {"namespace": "vms", "attachment": "a1", "vm": "vm1"}
    await reader.patch(USBDevice, "46f4-0001-aaa1", {"spec": {"claimRef": claim}})
    node.cache.objects = unbound_view  # the agent has not heard of the binding yet
    result = await node.publisher.publish([], now=NOW + GRACE * 2)
    assert (result.conflicts, dict(result.writes)) == (1, {})
    bound = await reader.get(USBDevice, "46f4-0001-aaa1")
    assert (bound["spec"]["claimRef"], bound["status"]["state"]) == (claim, "Absent")
    await node.client.close()


async def test_an_unbound_absent_device_is_deleted_after_the_grace_period(
        cluster: Emulator, reader: KubeClient) -> None:
    node = Node(cluster, "node1")
    await node.sync()
    await node.publisher.publish([stick("2-1")], now=NOW)
    marked = await node.publisher.publish([], now=NOW)
    assert marked.plan.next_due == NOW + GRACE
    assert (await reader.get(USBDevice, "46f4-0001-aaa1"))["status"]["present"] is False
    deleted = await node.publisher.publish([], now=NOW + GRACE)
    assert dict(deleted.writes) == {"delete": 1}
    assert await _versions(reader) == {}
    await node.client.close()
