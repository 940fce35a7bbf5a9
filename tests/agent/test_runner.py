"""The whole agent in-process against the API emulator over real HTTPS, on a synthetic sysfs tree:
publish, hot-plug, replug, restart, unplug with a grace period, and an API server that fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kubevirt_usb.agent.heartbeat import lease_alive
from kubevirt_usb.agent.hotplug import QueueEventSource, UEvent
from kubevirt_usb.agent.runner import Agent, AgentOptions
from kubevirt_usb.kube.client import KubeClient, connect
from kubevirt_usb.kube.config import load_config
from kubevirt_usb.kube.resources import Lease, USBDevice
from kubevirt_usb.kube.retry import Backoff
from kubevirt_usb.sandbox.sysfs_tree import SERIAL_PORT, USB_IDS_TEXT, SysfsTree
from kubevirt_usb.usb.identity import device_object_name, serial_identity
from kubevirt_usb.usb.usbids import UsbIds
from tests.kube.emulator import (
    NAMESPACE,
    Emulator,
    Fault,
    FaultyTransport,
    Relay,
    eventually,
)


@pytest.fixture
async def api(cluster: Emulator) -> AsyncIterator[KubeClient]:
    client = cluster.client()
    yield client
    await client.close()


@dataclass
class Node:
    """A node's sysfs tree and usb.ids, with devices that can be plugged and unplugged."""

    root: Path
    usb_ids: UsbIds
    tree: SysfsTree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = SysfsTree(self.root)
        self.tree.root_hub(1)
        self.tree.root_hub(2)

    def plug(self, port: str, **attrs: Any) -> None:
        self.tree.device(port, **attrs)

    def unplug(self, port: str) -> None:
        for link in self.tree.bus_dir.iterdir():
            if link.name == port or link.name.startswith(f"{port}:"):
                target = link.resolve()
                link.unlink()
                if link.name == port:
                    shutil.rmtree(target)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    (tmp_path / "usb.ids").write_text(USB_IDS_TEXT)
    built = Node(tmp_path / "sys", UsbIds(tmp_path / "usb.ids"))
    built.plug("2-1", devnum=2, serial="AAA1")
    built.plug("2-2", devnum=3, serial=None)
    built.plug("1-1", devnum=2, interfaces=SERIAL_PORT, idVendor="0403", idProduct="6001",
               serial="FT1", product="FT232R USB UART")
    return built


EXPECTED = ["0403-6001-ft1", "46f4-0001-aaa1", "node1-46f4-0001-2-2"]


class Running:
    """One agent task plus its hot-plug source and its request log."""

    def __init__(self, agent: Agent, events: QueueEventSource,
                 transport: list[FaultyTransport]) -> None:
        self.agent, self.events, self._transport = agent, events, transport

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._transport[0].requests

    def plugged(self, port: str, action: str = "add") -> None:
        self.events.push(UEvent(action, "usb", "usb_device", port))


@asynccontextmanager
async def agent_on(node: Node, *, server: str | None = None, cluster: Emulator,
                   faults: list[Fault] | None = None, grace: float = 600.0,
                   rescan: float = 300.0,
                   read_file: Callable[[Path], bytes] = Path.read_bytes,
                   ) -> AsyncIterator[Running]:
    config = load_config(kubeconfig=cluster.kubeconfig)
    if server is not None:
        config.cluster.server = server
    transports: list[FaultyTransport] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        transports.append(FaultyTransport(inner, faults or []))
        return transports[-1]

    client = connect(config, field_manager="kubevirt-usb-agent", timeout=3, wrap=wrap)
    events = QueueEventSource()
    options = AgentOptions(node="node1", usb_ids=node.usb_ids, sysfs_root=node.root,
                           namespace=NAMESPACE, grace_period=grace, rescan_interval=rescan,
                           quiet=0.05, max_delay=0.5,
                           backoff=Backoff(base=0.1, cap=0.5))
    agent = Agent(options, client=client, events=events, read_file=read_file)
    task = asyncio.create_task(agent.run())
    try:
        yield Running(agent, events, transports)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_the_publish_loop_cancelled_as_a_rescan_is_asked_for_stops(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    # The agent's run() cancels its loops a second time once the first one ended, which hid
    # a cancellation lost by asyncio.wait_for; the loop itself must not lose it.
    async with agent_on(node, cluster=cluster) as running:
        await eventually(lambda: _published(api, EXPECTED), what="the devices")
        await eventually(lambda: _async(running.agent.ready() is None), what="readiness")
        publish = running.agent._tasks["publish"]
        running.agent.trigger()  # a hot-plug event arrives...
        publish.cancel()  # ...as the loop is stopped
        await eventually(lambda: _async(publish.done()), what="the loop to stop")
        assert publish.cancelled()


async def _objects(api: KubeClient) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in (await api.list(USBDevice)).items}


async def _published(api: KubeClient, names: list[str]) -> dict[str, dict[str, Any]] | None:
    objects = await _objects(api)
    ready = sorted(objects) == names and all("status" in o for o in objects.values())
    return objects if ready else None


async def test_publishes_the_nodes_devices_with_their_identity_and_heartbeat(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    async with agent_on(node, cluster=cluster) as running:
        objects = await eventually(lambda: _published(api, EXPECTED), what="the devices")
        await eventually(lambda: _async(running.agent.ready() is None), what="readiness")
        lease = await api.get(Lease, "kubevirt-usb-agent-node1", namespace=NAMESPACE)
    serial = objects["0403-6001-ft1"]["status"]
    assert (serial["identity"]["tier"], serial["vendorName"], serial["drivers"]) == (
        "serial", "Future Technology Devices International, Ltd", ["ftdi_sio"])
    port = objects["node1-46f4-0001-2-2"]["status"]
    assert (port["identity"]["tier"], port["portPath"], port["state"]) == (
        "port", "2-2", "Available")
    assert lease_alive(lease, now=dt.datetime.now(dt.UTC))


async def _async(value: Any) -> Any:
    return value


async def test_hot_plug_replug_and_unplug_show_in_the_api(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    async with agent_on(node, cluster=cluster, grace=1.0) as running:
        await eventually(lambda: _published(api, EXPECTED), what="the devices")

        node.plug("2-3", devnum=4, serial="NEW1")
        running.plugged("2-3")
        await eventually(lambda: _published(api, sorted([*EXPECTED, "46f4-0001-new1"])),
                         what="the plugged device")

        node.unplug("2-2")
        node.plug("2-2", devnum=9, serial=None)
        running.plugged("2-2")

        async def replugged() -> bool:
            status = (await api.get(USBDevice, "node1-46f4-0001-2-2"))["status"]
            # between unplug and replug the status is the absent one, without a deviceNumber
            return bool(status.get("deviceNumber") == 9 and status["present"])

        await eventually(replugged, what="the replugged device under the same name")

        await api.patch(USBDevice, "0403-6001-ft1", {"spec": {"claimRef": {
            "namespace": "vms", "attachment": "serial", "vm": "vm1"}}})
        node.unplug("2-3")
        node.unplug("1-1")
        running.plugged("2-3", "remove")

        async def deleted_unless_bound() -> bool:
            objects = await _objects(api)
            return "46f4-0001-new1" not in objects and "0403-6001-ft1" in objects

        await eventually(deleted_unless_bound, what="deletion after the grace period")
        bound = await api.get(USBDevice, "0403-6001-ft1")
    assert (bound["status"]["state"], bound["status"]["present"]) == ("Absent", False)
    assert "absentSince" in bound["status"]
    assert "deviceNumber" not in bound["status"]


async def test_a_restarted_agent_writes_nothing_and_duplicates_nothing(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    async with agent_on(node, cluster=cluster):
        before = await eventually(lambda: _published(api, EXPECTED), what="the devices")
    versions = {n: o["metadata"]["resourceVersion"] for n, o in before.items()}
    async with agent_on(node, cluster=cluster) as again:
        await eventually(lambda: _async(again.agent.published > 0), what="the second publish")
        writes = [(m, p) for m, p in again.requests if m != "GET"]
    after = await _objects(api)
    assert {n: o["metadata"]["resourceVersion"] for n, o in after.items()} == versions
    assert {p.rsplit("/", 1)[-1] for _, p in writes} <= {"kubevirt-usb-agent-node1"}


async def test_an_api_server_that_is_down_then_up_is_waited_for(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    relay = Relay(cluster.server.port)
    port = Relay.free_port()
    async with agent_on(node, cluster=cluster, server=f"https://127.0.0.1:{port}") as running:
        await eventually(lambda: _async("ConnectError" in running.agent.metrics.render()[0]
                                        .decode()), what="connection failures")
        assert running.agent.ready() is not None
        assert await _objects(api) == {}
        await relay.start(port)
        try:
            await eventually(lambda: _published(api, EXPECTED), what="publishing after recovery")
            await eventually(lambda: _async(running.agent.ready() is None), what="readiness")
        finally:
            await relay.close()


async def test_conflicts_throttling_and_server_errors_are_retried(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    faults = [Fault("POST", "/usbdevices", 500, "InternalError", times=2),
              Fault("PATCH", "/status", 409, "Conflict", times=1),
              Fault("PATCH", "/status", 429, "TooManyRequests", times=1,
                    headers={"Retry-After": "0"})]
    async with agent_on(node, cluster=cluster, faults=faults) as running:
        await eventually(lambda: _published(api, EXPECTED), what="the devices despite errors")
        injected = running._transport[0].injected
    assert sorted(code for _, _, code in injected) == [409, 429, 500, 500]
    samples = running.agent.metrics.render()[0].decode()
    assert 'kubevirt_usb_agent_api_errors_total{reason="InternalError"} 2.0' in samples


async def test_an_object_deleted_by_someone_else_is_published_again(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    async with agent_on(node, cluster=cluster):
        await eventually(lambda: _published(api, EXPECTED), what="the devices")
        await api.delete(USBDevice, "46f4-0001-aaa1")
        await eventually(lambda: _published(api, EXPECTED), what="the device published again")



async def test_odd_descriptor_strings_are_published_cleaned(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    node.plug("2-4", devnum=5, serial=b"\xff\xfeZ\x01", product=b"", manufacturer=b"  \n")
    name = device_object_name(serial_identity("46f4", "0001", "\ufffd\ufffdZ"))
    async with agent_on(node, cluster=cluster):
        objects = await eventually(lambda: _published(api, sorted([*EXPECTED, name])),
                                   what="the device with odd strings")
    status = objects[name]["status"]
    assert status["serial"] == "\ufffd\ufffdZ"
    assert "product" not in status
    assert "manufacturer" not in status


async def test_a_device_that_cannot_be_read_is_not_published_half_nor_marked_absent(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    failing: set[str] = set()

    def read(path: Path) -> bytes:
        if path.parent.name in failing and path.name == "idProduct":
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    async with agent_on(node, cluster=cluster, read_file=read) as running:
        before = await eventually(lambda: _published(api, EXPECTED), what="the devices")
        failing.add("2-1")
        node.unplug("2-2")
        publishes = running.agent.published
        running.plugged("2-2", "remove")
        await eventually(lambda: _async(running.agent.published >= publishes + 2),
                         what="publishes after the read failure")
        after = await _objects(api)
    unreadable = "46f4-0001-aaa1"
    assert after[unreadable]["metadata"]["resourceVersion"] == \
        before[unreadable]["metadata"]["resourceVersion"]
    assert after[unreadable]["status"]["present"] is True
    assert after["node1-46f4-0001-2-2"]["status"]["present"] is False


async def test_a_devices_directory_that_cannot_be_listed_marks_nothing_absent(
        cluster: Emulator, api: KubeClient, node: Node) -> None:
    async with agent_on(node, cluster=cluster) as running:
        before = await eventually(lambda: _published(api, EXPECTED), what="the devices")
        listing = node.root / "bus" / "usb" / "devices"
        listing.rename(listing.with_name("devices.aside"))
        listing.write_text("not a directory\n")
        running.plugged("2-2", "remove")
        problem = await eventually(lambda: _async(running.agent.ready()),
                                   what="the agent saying why it cannot publish")
        after = await _objects(api)
    assert problem == f"publishing failed: cannot list {listing}: Not a directory"
    assert {n: o["status"]["present"] for n, o in after.items()} == {
        n: o["status"]["present"] for n, o in before.items()}
