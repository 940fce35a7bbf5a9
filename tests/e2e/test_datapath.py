"""The node agent's data path, end to end, with the VM guest's kernel as the judge: the streaming
agent runs inside node1 (its real sysfs and usbfs, Debian's libusb 1.0.26 and libusbredirhost
0.13.0), reaches the API emulator through a proxy that can fail the network, and streams the
devices bound to it (spec.claimRef, written here by hand) into vm1's usbredir slots.

One sandbox and one agent serve the whole module; each test binds what it needs and unbinds it.
Measured times are printed (run with -s to see them); they are never asserted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kubevirt_usb.sandbox.datapath import (
    GUEST_DIR,
    FaultProxy,
    GuestAgent,
    Objects,
    Stick,
    dump,
    node_driver,
    node_stick,
    vm_device,
)
from kubevirt_usb.sandbox.guest import UsbDevice
from kubevirt_usb.sandbox.harness import SandboxHarness, poll_until
from kubevirt_usb.sandbox.vm_guest import VMProbe
from kubevirt_usb.stream.endpoint import load_kubeconfig
from kubevirt_usb.stream.usbredir_client import UsbredirConnection, open_usbredir
from tests.e2e.conftest import StreamingBox, streaming_box

pytestmark = pytest.mark.qemu

VM1 = "default/vm1"
ATTACH = 90.0
"""Deadline for a binding to reach the VM (TCG guests on a shared 2-core machine)."""


@dataclass
class World:
    harness: SandboxHarness
    proxy: FaultProxy
    objects: Objects
    agent: GuestAgent
    aaa1: Stick
    aaa2: Stick

    def status(self, attachment: str) -> dict[str, Any]:
        return self.objects.status(attachment)

    def wait_status(self, attachment: str, *, phase: str, reason: str | None = None,
                    within: float = ATTACH) -> dict[str, Any]:
        def reached() -> bool:
            st = self.status(attachment)
            cond = (st.get("conditions") or [{}])[0]
            return st.get("phase") == phase and (reason is None or cond.get("reason") == reason)

        try:
            poll_until(reached, within=within, what=f"{attachment} to be {phase} ({reason})")
        except AssertionError:
            raise AssertionError(f"{dump(self.status(attachment))}\n--- agent log ---\n"
                                 f"{self.agent.log()}") from None
        return self.status(attachment)

    def slots(self, vm: str = "vm1") -> tuple[int, ...]:
        return self.harness.sandbox.virtapi.active_slots(namespace="default", name=vm)

    def attach(self, stick: Stick, attachment: str, *, vm: str = "vm1") -> UsbDevice:
        """Bind and wait until the VM's kernel shows the stick; the VM's view of it."""
        self.objects.bind(stick, attachment=attachment, vm=vm)
        seconds = poll_until(lambda: vm_device(self.harness, f"default/{vm}", stick.serial)
                           is not None, within=ATTACH, what=f"{vm} to see {stick.serial}")
        print(f"\n{stick.serial}: bound -> seen by {vm}'s kernel in {seconds:.2f} s")
        found = vm_device(self.harness, f"default/{vm}", stick.serial)
        assert found is not None
        return found

    def detach(self, stick: Stick, *, vm: str = "vm1") -> float:
        """Unbind; seconds until the device is back with the node and the slot is free."""
        self.objects.unbind(stick)
        seconds = poll_until(lambda: not self.slots(vm) and node_driver(
            self.harness, stick.port_path) == "usb-storage", within=30,
            what=f"{stick.serial} back with node1 and {vm}'s slot free", interval=0.05)
        poll_until(lambda: vm_device(self.harness, f"default/{vm}", stick.serial) is None,
                 within=30, what=f"{vm} to lose {stick.serial}")
        return seconds


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sticks: list[Stick] = []

    def publish(box: StreamingBox) -> None:
        sticks.extend(node_stick(box.harness, serial) for serial in ("AAA1", "AAA2"))
        for stick in sticks:
            box.objects.publish(stick)
        for name, vm in (("att-aaa1", "vm1"), ("att-aaa2", "vm1"), ("att-vm2", "vm2"),
                         ("att-gone", "vm-gone"), ("att-pending", "vm-pending")):
            box.objects.attachment(name, vm=vm)

    # vm1 runs on node1 too: this module tests the API path (the websocket through the fault
    # proxy), so the node-local path is switched off; test_localpath_e2e tests it
    with streaming_box(tmp_path_factory.mktemp("datapath"), local_path=False,
                       before_agent=publish) as box:
        yield World(box.harness, box.proxy, box.objects, box.agent, *sticks)


@pytest.fixture(autouse=True)
def unbound_afterwards(world: World) -> Iterator[None]:
    """Whatever a test left bound is unbound, and its slots freed, before the next one."""
    yield
    world.proxy.refusing = False
    for stick in (world.aaa1, world.aaa2):
        with contextlib.suppress(AssertionError):
            world.objects.unbind(stick)
    poll_until(lambda: not world.slots() and not world.slots("vm2"), within=60,
             what="every slot to be free again")


# ----------------------------------------------------------------------------- the exact device


def test_binding_aaa1_gives_the_vm_aaa1_and_binding_aaa2_gives_aaa2(world: World) -> None:
    assert world.aaa1.port_path != world.aaa2.port_path  # twins: same vendor:product
    for stick, other, attachment in ((world.aaa1, world.aaa2, "att-aaa1"),
                                     (world.aaa2, world.aaa1, "att-aaa2")):
        seen = world.attach(stick, attachment)
        probe: VMProbe = world.harness.probe(VM1)
        assert seen.vid_pid == "46f4:0001"
        assert probe.usb_by_serial(other.serial) is None
        status = world.wait_status(attachment, phase="Attached")
        assert status["conditions"][0]["status"] == "True"
        assert status["attachedSince"]
        assert node_driver(world.harness, other.port_path) == "usb-storage"  # the twin stays
        seconds = world.detach(stick)
        print(f"{stick.serial}: unbound -> device back with node1, slot free in {seconds:.2f} s")


def test_unbinding_stops_the_stream_and_frees_device_and_slot(world: World) -> None:
    world.attach(world.aaa1, "att-aaa1")
    assert len(world.slots()) == 1
    assert node_driver(world.harness, world.aaa1.port_path) in ("", "usbfs")  # the VM has it
    seconds = world.detach(world.aaa1)
    print(f"unbind -> released and slot freed in {seconds:.2f} s")
    assert world.slots() == ()


# ----------------------------------------------------------------------------- one stream only


def _one_shot(world: World, stick: Stick) -> Any:
    guest = world.harness.sandbox.node("node1")
    command = guest.python_command([
        "-m", "kubevirt_usb.redirect", "--kubeconfig", f"{GUEST_DIR}/kubeconfig", "--vm", "vm1",
        "--port", stick.port_path, "--serial", stick.serial, "--node", "node1"])
    return world.harness.run(guest.exec(command, timeout=180), timeout=200)


def test_a_second_stream_is_refused_before_the_device_is_touched(world: World) -> None:
    before = world.attach(world.aaa1, "att-aaa1")
    first = world.wait_status("att-aaa1", phase="Attached")
    result = _one_shot(world, world.aaa1)
    assert result.exit_code == 1, result.output
    assert "already being streamed" in result.output
    assert "USBAttachment default/att-aaa1" in result.output  # names who holds it
    after = vm_device(world.harness, VM1, "AAA1")
    assert after is not None
    assert (after.name, after.devnum) == (before.name, before.devnum)
    assert len(world.slots()) == 1  # the refused stream took no slot
    again = world.status("att-aaa1")
    assert again["phase"] == "Attached"
    assert again["reconnects"] == first["reconnects"]
    world.detach(world.aaa1)


def test_the_agent_reports_a_device_another_stream_holds(world: World) -> None:
    guest = world.harness.sandbox.node("node1")
    command = guest.python_command([
        "-m", "kubevirt_usb.redirect", "--kubeconfig", f"{GUEST_DIR}/kubeconfig", "--vm", "vm1",
        "--port", world.aaa2.port_path, "--serial", "AAA2", "--node", "node1"])
    other = world.harness.run(guest.start_background(command, log_path="/tmp/one-shot.log"))
    try:
        poll_until(lambda: vm_device(world.harness, VM1, "AAA2") is not None, within=ATTACH,
                 what="the one-shot stream to give vm1 AAA2")
        held = vm_device(world.harness, VM1, "AAA2")
        world.objects.bind(world.aaa2, attachment="att-aaa2", vm="vm1")
        status = world.wait_status("att-aaa2", phase="Failed", reason="DeviceBusy")
        assert "python -m kubevirt_usb.redirect" in status["message"]
        still = vm_device(world.harness, VM1, "AAA2")
        assert still is not None
        assert held is not None
        assert still.devnum == held.devnum
    finally:
        world.harness.run(guest.signal(other, signal_name="TERM"))
    world.wait_status("att-aaa2", phase="Attached")  # retrying helped: the holder went away
    world.detach(world.aaa2)


# ----------------------------------------------------------------------------- coming back


def test_the_stream_comes_back_after_the_websocket_drops_mid_transfer(world: World) -> None:
    before = world.attach(world.aaa1, "att-aaa1")
    reconnects = world.wait_status("att-aaa1", phase="Attached")["reconnects"]
    poll_until(lambda: world.harness.probe(VM1).disk_by_serial("AAA1") is not None, within=60,
             what="vm1's disk on AAA1")
    disk = world.harness.probe(VM1).disk_by_serial("AAA1")
    assert disk is not None
    vm = world.harness.sandbox.vm("default", "vm1")
    reading = world.harness.background(vm.exec(
        f"dd if=/dev/{disk.name} of=/dev/null bs=1M count=64 iflag=direct", timeout=300))
    poll_until(lambda: _sectors_read(world, disk.name) > 8192, within=60,
             what="the VM to be reading from AAA1")
    assert world.proxy.cut() > 0
    seconds = poll_until(lambda: _reenumerated(world, "AAA1", before), within=ATTACH,
                       what="vm1 to see AAA1 again")
    print(f"websocket dropped mid-transfer -> vm1 sees AAA1 again after {seconds:.2f} s")
    with contextlib.suppress(Exception):
        reading.result(timeout=300)
    poll_until(lambda: world.status("att-aaa1").get("reconnects") == reconnects + 1, within=60,
             what="the status to count the reconnect")
    status = world.wait_status("att-aaa1", phase="Attached")
    assert status["lastError"].startswith("StreamBroken")
    world.detach(world.aaa1)


def _sectors_read(world: World, disk: str) -> int:
    result = world.harness.in_vm(VM1, f"cat /sys/block/{disk}/stat")
    fields = result.output.split()
    return int(fields[2]) if len(fields) > 2 and result.ok else 0


def _reenumerated(world: World, serial: str, before: UsbDevice) -> bool:
    now = vm_device(world.harness, VM1, serial)
    return now is not None and now.devnum != before.devnum


def test_the_stream_comes_back_after_the_vm_restarts(world: World) -> None:
    world.attach(world.aaa2, "att-aaa2")
    world.harness.restart_vm(VM1)  # returns once the new VMI runs
    seconds = poll_until(lambda: vm_device(world.harness, VM1, "AAA2") is not None,
                       within=ATTACH, what="the restarted vm1 to see AAA2")
    print(f"vm1 restarted (new VMI running) -> sees AAA2 after {seconds:.2f} s")
    status = world.wait_status("att-aaa2", phase="Attached")
    assert status["reconnects"] >= 1
    world.detach(world.aaa2)


def test_the_stream_comes_back_after_the_stick_is_replugged(world: World) -> None:
    world.attach(world.aaa1, "att-aaa1")
    world.harness.unplug("AAA1", node="node1")
    poll_until(lambda: vm_device(world.harness, VM1, "AAA1") is None, within=30,
             what="vm1 to lose AAA1")
    status = world.wait_status("att-aaa1", phase="Connecting", reason="DeviceAbsent")
    assert f"port {world.aaa1.port_path}" in status["message"]
    world.harness.plug("AAA1", into="node1")
    seconds = poll_until(lambda: vm_device(world.harness, VM1, "AAA1") is not None,
                       within=ATTACH, what="vm1 to see the replugged AAA1")
    print(f"AAA1 replugged -> vm1 sees it after {seconds:.2f} s")
    world.wait_status("att-aaa1", phase="Attached")
    world.detach(world.aaa1)


def test_the_stream_comes_back_after_the_api_server_was_unreachable(world: World) -> None:
    world.attach(world.aaa1, "att-aaa1")
    world.proxy.refusing = True
    try:
        world.proxy.cut()
        poll_until(lambda: "APIServerUnreachable" in world.agent.metrics(), within=60,
                 what="the agent to count an unreachable API server")
        poll_until(lambda: vm_device(world.harness, VM1, "AAA1") is None, within=30,
                 what="vm1 to lose AAA1 while the API server is unreachable")
    finally:
        world.proxy.refusing = False
    seconds = poll_until(lambda: vm_device(world.harness, VM1, "AAA1") is not None,
                       within=ATTACH, what="vm1 to see AAA1 once the API server is back")
    print(f"API server reachable again -> vm1 sees AAA1 after {seconds:.2f} s")
    world.wait_status("att-aaa1", phase="Attached")
    world.detach(world.aaa1)


# ----------------------------------------------------------------------------- bad input


def test_a_vm_without_client_passthrough_is_refused_and_the_device_left_alone(
        world: World) -> None:
    world.objects.bind(world.aaa2, attachment="att-vm2", vm="vm2")
    status = world.wait_status("att-vm2", phase="Failed",
                               reason="VMNotConfiguredForUSBRedirection")
    assert "Not configured with USB Redirection" in status["message"]  # KubeVirt's text
    assert "clientPassthrough" in status["message"]  # the fix
    assert node_driver(world.harness, world.aaa2.port_path) == "usb-storage"
    assert world.slots("vm2") == ()
    world.objects.unbind(world.aaa2)


def test_a_missing_vm_is_reported_and_the_device_left_alone(world: World) -> None:
    world.objects.bind(world.aaa2, attachment="att-gone", vm="vm-gone")
    status = world.wait_status("att-gone", phase="Failed", reason="VMMissing")
    assert 'virtualmachineinstance.kubevirt.io "vm-gone" not found' in status["message"]
    assert node_driver(world.harness, world.aaa2.port_path) == "usb-storage"
    world.objects.unbind(world.aaa2)


def test_a_vm_that_is_not_running_waits_and_leaves_the_device_alone(world: World) -> None:
    spec: dict[str, Any] = {"domain": {"devices": {"clientPassthrough": {}}}}
    world.objects.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                          "metadata": {"name": "vm-pending", "namespace": "default"},
                          "spec": {"running": True, "template": {"spec": spec}}})
    world.objects.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                          "metadata": {"name": "vm-pending", "namespace": "default"},
                          "spec": spec, "status": {"phase": "Scheduling"}})
    world.objects.bind(world.aaa2, attachment="att-pending", vm="vm-pending")
    status = world.wait_status("att-pending", phase="Connecting", reason="VMNotRunning")
    assert "VMI is not running" in status["message"]
    assert "virtctl start vm-pending" in status["message"]
    assert node_driver(world.harness, world.aaa2.port_path) == "usb-storage"
    world.objects.unbind(world.aaa2)


def test_a_missing_device_waits_for_its_port(world: World) -> None:
    ghost = Stick(serial="GHOST1", port_path="2-7")
    world.objects.publish(ghost)
    world.objects.attachment("att-ghost", vm="vm1")
    world.objects.bind(ghost, attachment="att-ghost", vm="vm1")
    status = world.wait_status("att-ghost", phase="Connecting", reason="DeviceAbsent")
    assert "not plugged into node node1 port 2-7" in status["message"]
    assert world.slots() == ()
    world.objects.unbind(ghost)


def test_a_full_vm_takes_no_slot_and_the_device_attaches_when_one_frees(world: World) -> None:
    async def take_all() -> list[UsbredirConnection]:
        endpoint = load_kubeconfig(world.harness.kubeconfig)
        return [await open_usbredir(endpoint, namespace="default", vmi="vm1")
                for _ in range(4)]

    held = world.harness.run(take_all())
    try:
        world.objects.bind(world.aaa1, attachment="att-aaa1", vm="vm1")
        status = world.wait_status("att-aaa1", phase="Failed", reason="NoFreeSlot")
        assert "Can't connect to websocket (503)" in status["message"]
        assert node_driver(world.harness, world.aaa1.port_path) == "usb-storage"
        assert len(world.slots()) == 4
    finally:
        for conn in held:
            with contextlib.suppress(Exception):
                world.harness.run(conn.close())
    world.wait_status("att-aaa1", phase="Attached", within=120)
    poll_until(lambda: vm_device(world.harness, VM1, "AAA1") is not None, within=ATTACH,
             what="vm1 to see AAA1 once a slot is free")
    world.detach(world.aaa1)
