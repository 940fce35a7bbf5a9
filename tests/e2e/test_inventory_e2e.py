"""The node agent's inventory in the cluster in a box: identical sticks, identical serial adapters
without serial numbers on different ports, and devices behind a hub, each listed exactly once with
the right facts and identity tier; unplug, replug and an agent restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubevirt_usb.sandbox.components import AGENT_RESTART_GRACE, agent_ready
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec, Scenario, VMSpec

pytestmark = pytest.mark.qemu

SCENARIO = Scenario(
    nodes=[NodeSpec(name="node1", devices=[
        DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial="AAA1", port="1"),
        DeviceSpec(id="stick2", kind=DeviceKind.USB_STORAGE, serial="AAA2", port="2"),
        # serial="": no serial number at all, as many cheap adapters have
        DeviceSpec(id="adapter1", kind=DeviceKind.USB_SERIAL, serial="", port="3"),
        DeviceSpec(id="adapter2", kind=DeviceKind.USB_SERIAL, serial="", port="4"),
        DeviceSpec(id="hub1", kind=DeviceKind.HUB, port="5"),
        DeviceSpec(id="stick3", kind=DeviceKind.USB_STORAGE, serial="BBB1", hub="hub1", port="1"),
    ])],
    vms=[VMSpec(namespace="default", name="vm1", node="node1")],
)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHarness]:
    with SandboxHarness(state_dir=tmp_path_factory.mktemp("inventory"),
                        scenario=SCENARIO) as harness:
        yield harness


def _devices(box: SandboxHarness) -> dict[str, dict[str, Any]]:
    listing = json.loads(box.kubectl("get", "usbdevices", "-o", "json").stdout)
    return {item["metadata"]["name"]: item for item in listing["items"]}


def _by_port(box: SandboxHarness) -> dict[str, dict[str, Any]]:
    return {d["status"]["portPath"]: d for d in _devices(box).values()}


def test_every_device_is_listed_once_with_its_facts_and_tier(box: SandboxHarness) -> None:
    ports = _by_port(box)
    assert sorted(ports) == ["1-3", "1-4", "1-5.1", "2-1", "2-2"]  # the hub itself is no device
    assert len(_devices(box)) == 5
    facts = {port: (d["metadata"]["name"], d["status"]["vendorId"], d["status"]["productId"],
                    d["status"].get("serial"), d["status"]["speed"],
                    d["status"]["identity"]["tier"])
             for port, d in ports.items()}
    assert facts == {
        "2-1": ("46f4-0001-aaa1", "46f4", "0001", "AAA1", "5000", "serial"),
        "2-2": ("46f4-0001-aaa2", "46f4", "0001", "AAA2", "5000", "serial"),
        "1-3": ("node1-0403-6001-1-3", "0403", "6001", None, "12", "port"),
        "1-4": ("node1-0403-6001-1-4", "0403", "6001", None, "12", "port"),
        "1-5.1": ("46f4-0001-bbb1", "46f4", "0001", "BBB1", "12", "serial"),
    }
    assert ports["1-3"]["status"]["productName"] == "FT232 Serial (UART) IC"
    assert ports["2-1"]["status"]["product"] == "QEMU USB HARDDRIVE"
    printed = box.kubectl("get", "usbdevices").stdout
    assert "46f4-0001-aaa2" in printed
    assert "Available" in printed


def test_unplug_marks_absent_and_replug_keeps_the_name(box: SandboxHarness) -> None:
    before = _by_port(box)["1-4"]["metadata"]["name"]
    box.unplug("adapter2", node="node1")
    box.wait_until(lambda: _devices(box)[before]["status"]["state"] == "Absent", within=30,
                   what="the unplugged adapter to be marked absent")
    assert _devices(box)[before]["status"]["present"] is False
    box.plug("adapter2", into="node1")
    box.wait_until(lambda: _devices(box)[before]["status"]["state"] == "Available", within=30,
                   what="the replugged adapter to be available again")
    assert sorted(d["metadata"]["name"] for d in _devices(box).values()) == sorted(
        ["46f4-0001-aaa1", "46f4-0001-aaa2", "node1-0403-6001-1-3", "node1-0403-6001-1-4",
         "46f4-0001-bbb1"])


def test_an_agent_restart_writes_nothing_new(box: SandboxHarness) -> None:
    """Neither the agent (its first plan is its steady one) nor the controller (the stopped
    agent's Lease counts for the restart grace, so no device turns unreachable) writes."""
    versions = {n: d["metadata"]["resourceVersion"] for n, d in _devices(box).items()}
    components = box.sandbox.components
    assert components is not None
    guest = box.sandbox.node("node1")
    old = components.agents["node1"]
    box.run(guest.signal(old, signal_name="TERM"))
    box.wait_until(lambda: not box.on_node("node1", f"kill -0 {old.pid}").ok, within=60,
                   what="the old agent to exit")
    box.run(components.start_agent(guest))
    box.wait_until(lambda: box.run(agent_ready(guest)), within=AGENT_RESTART_GRACE,
                   what="the restarted agent to finish its first publish")
    after = {n: d["metadata"]["resourceVersion"] for n, d in _devices(box).items()}
    assert after == versions
