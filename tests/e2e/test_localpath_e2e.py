"""The node-local data path, end to end: the streaming agent runs inside node1 with the local path
on (its default), finds vm1's virt-launcher stand-in on node1 by the launcher Pod's label and its
cgroup, and streams AAA1 straight into the stand-in's slot socket (bridged to vm1's real QEMU
slot); the VM guest's kernel is the judge. The same stick into vm3 (on node2) goes through the
API (virt-api emulator), and the virt-api emulator's own slot accounting shows which path a stream
took: a direct stream holds no slot it knows of.

One sandbox and one agent serve the whole module; each test binds what it needs and unbinds it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubevirt_usb.sandbox.datapath import (
    FaultProxy,
    GuestAgent,
    Objects,
    Stick,
    dump,
    node_driver,
    node_stick,
    vm_device,
)
from kubevirt_usb.sandbox.harness import SandboxHarness, poll_until
from tests.e2e.conftest import StreamingBox, streaming_box

pytestmark = pytest.mark.qemu

ATTACH = 120.0
"""Deadline for a binding to reach the VM (TCG guests on a shared, busy 2-core machine)."""
RESTART = 400.0
"""Deadline for a VM restart (a new guest boots) and the stream to come back."""


@dataclass
class World:
    harness: SandboxHarness
    proxy: FaultProxy
    objects: Objects
    agent: GuestAgent
    aaa1: Stick
    _attachments: Iterator[int] = field(default_factory=itertools.count)

    def bind(self, vm: str) -> str:
        """Bind AAA1 to `vm` through a USBAttachment made for this binding; its name. No
        controller runs here to reset what an earlier binding's agent wrote in the status, so an
        attachment used twice would show the last stream's path and slot until the new stream
        writes its own, and a wait for them would be over before the agent even chose."""
        name = f"att-{vm}-{next(self._attachments)}"
        self.objects.attachment(name, vm=vm)
        self.objects.bind(self.aaa1, attachment=name, vm=vm)
        return name

    def status(self, attachment: str) -> dict[str, Any]:
        return self.objects.status(attachment)

    def wait_path(self, attachment: str, *, path: str, reason: str,
                  within: float = ATTACH) -> dict[str, Any]:
        """Wait until the attachment streams (Attached) on `path` for `reason`."""
        def reached() -> bool:
            st = self.status(attachment)
            return (st.get("phase"), st.get("path"), st.get("pathReason")) == (
                "Attached", path, reason)

        try:
            poll_until(reached, within=within, what=f"{attachment} Attached on {path} ({reason})")
        except AssertionError:
            raise AssertionError(f"{dump(self.status(attachment))}\n--- agent log ---\n"
                                 f"{self.agent.log(60)}") from None
        return self.status(attachment)

    def api_slots(self, vm: str) -> tuple[int, ...]:
        """The slots the virt-api emulator handed out for `vm` (the API path's only)."""
        return self.harness.sandbox.virtapi.active_slots(namespace="default", name=vm)

    def sees(self, vm: str, *, within: float = ATTACH) -> None:
        seconds = poll_until(lambda: vm_device(self.harness, f"default/{vm}", "AAA1")
                             is not None, within=within, what=f"{vm} to see AAA1")
        print(f"\nAAA1 seen by {vm}'s kernel after {seconds:.2f} s")

    def loses(self, vm: str, *, within: float = 60.0) -> None:
        poll_until(lambda: vm_device(self.harness, f"default/{vm}", "AAA1") is None,
                   within=within, what=f"{vm} to lose AAA1")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sticks: list[Stick] = []

    def publish(box: StreamingBox) -> None:
        sticks.append(node_stick(box.harness, "AAA1"))
        box.objects.publish(sticks[0])

    with streaming_box(tmp_path_factory.mktemp("localpath"), before_agent=publish) as box:
        yield World(box.harness, box.proxy, box.objects, box.agent, sticks[0])


@pytest.fixture(autouse=True)
def unbound_afterwards(world: World) -> Iterator[None]:
    yield
    with contextlib.suppress(AssertionError):
        world.objects.unbind(world.aaa1)
    poll_until(lambda: node_driver(world.harness, world.aaa1.port_path) == "usb-storage",
               within=60, what="AAA1 back with node1")


def test_aaa1_into_vm1_on_its_own_node_streams_on_the_local_path(world: World) -> None:
    assert world.harness.vm_node("default/vm1") == "node1"
    att = world.bind("vm1")
    world.sees("vm1")
    st = world.wait_path(att, path="Local", reason="SameNode")
    launcher = world.harness.launcher("default/vm1")
    assert (st["slot"], st["slotKind"]) == (3, "Direct")
    assert f"virt-launcher pod {launcher.pod_name}" in st["pathMessage"]
    assert world.api_slots("vm1") == ()  # no API server, virt-api or virt-handler in the way
    assert 'path="Local",reason="SameNode"} 1.0' in world.agent.metrics()
    world.objects.unbind(world.aaa1)
    world.loses("vm1")
    poll_until(lambda: node_driver(world.harness, world.aaa1.port_path) == "usb-storage",
               within=30, what="AAA1 back with node1's usb-storage driver")


def test_the_same_stick_into_vm3_on_node2_goes_through_the_api(world: World) -> None:
    assert world.harness.vm_node("default/vm3") == "node2"
    att = world.bind("vm3")
    world.sees("vm3")
    st = world.wait_path(att, path="API", reason="VMIOnOtherNode")
    assert st["slotKind"] == "VirtHandler"
    assert "runs on node node2, the device is on node node1" in st["pathMessage"]
    assert world.api_slots("vm3") == (0,)


# Holds slot 3 only once QEMU's hello arrived: a connection the bridge closes at once (QEMU still
# tearing down an earlier client) is retried, so the test never starts with slot 3 free.
_HOLD = ("import os, socket, sys, time\n"
         "os.chdir({directory!r})\n"
         "while True:\n"
         "    s = socket.socket(socket.AF_UNIX); s.connect('virt-usbredir-3'); s.settimeout(60)\n"
         "    hello = s.recv(200)\n"
         "    if hello: break\n"
         "    s.close(); time.sleep(1)\n"
         "print('held', len(hello)); sys.stdout.flush(); time.sleep(600)")


def test_a_slot_held_by_another_client_is_passed_over(world: World) -> None:
    """Someone (a virtctl usbredir user, say) holds slot 3: QEMU serves one client per slot and
    leaves a second one waiting without its hello, so the agent takes slot 2."""
    launcher = world.harness.launcher("default/vm1")
    node = world.harness.sandbox.node("node1")
    directory = f"/proc/{launcher.pid}/root/run/kubevirt-private/{launcher.vmi_uid}"
    holder = world.harness.run(node.start_background(
        node.python_command(["-c", _HOLD.format(directory=directory)]),
        log_path="/tmp/slot-holder.log"))
    try:
        poll_until(lambda: "held" in world.harness.on_node("node1", "cat /tmp/slot-holder.log")
                   .output, within=60, what="the other client to hold slot 3")
        att = world.bind("vm1")
        st = world.wait_path(att, path="Local", reason="SameNode")
        assert (st["slot"], st["slotKind"]) == (2, "Direct")
        world.sees("vm1")
    finally:
        world.harness.run(node.signal(holder, signal_name="KILL"))


def test_a_symlink_planted_at_the_slot_is_refused_and_the_stream_takes_the_api(
        world: World) -> None:
    path = world.harness.plant_at_slot("default/vm1", slot=3, kind="symlink",
                                       target="/etc/passwd")
    try:
        att = world.bind("vm1")
        st = world.wait_path(att, path="API", reason="SocketIsALink")
        assert "virt-usbredir-3 is a symbolic link" in st["pathMessage"]
        world.sees("vm1")
        assert world.api_slots("vm1") == (0,)
        print(f"planted {path}: refused, streamed through the API")
    finally:
        world.objects.unbind(world.aaa1)
        world.loses("vm1")
        world.harness.recreate_launcher("default/vm1")


def test_a_dropped_slot_socket_reconnects_on_the_local_path(world: World) -> None:
    att = world.bind("vm1")
    world.sees("vm1")
    first = world.wait_path(att, path="Local", reason="SameNode")
    launcher = world.harness.launcher("default/vm1")
    world.harness.call(launcher.bridge.close_all)  # the slot connection drops, QEMU stays
    poll_until(lambda: world.status(att).get("reconnects", 0) > first["reconnects"],
               within=ATTACH, what="the stream to come back after the socket dropped")
    again = world.wait_path(att, path="Local", reason="SameNode")
    assert f"(process {launcher.pid})" in again["pathMessage"]
    world.sees("vm1")
    assert world.api_slots("vm1") == ()


LAUNCHER_STARTING = {"LauncherProcessNotFound", "LauncherProcessGone", "SocketMissing"}
"""Why a stream may fall back to the API while a recreated launcher is still starting."""


def test_a_recreated_launcher_never_leaves_the_vm_without_its_device(world: World) -> None:
    att = world.bind("vm1")
    world.sees("vm1")
    first = world.wait_path(att, path="Local", reason="SameNode")
    pid = world.harness.recreate_launcher("default/vm1")
    poll_until(lambda: world.status(att).get("reconnects", 0) > first["reconnects"]
               and world.status(att).get("phase") == "Attached",
               within=ATTACH, what="the stream to come back after the launcher was recreated")
    world.sees("vm1")
    st = world.status(att)
    # The reconnect may come before the new launcher is up: then it goes through the API at
    # once (never to nothing) and stays there while it streams; a running stream is not cut
    # just to change paths (the VM would see an unplug).
    assert (st["path"], st["pathReason"]) == ("Local", "SameNode") or (
        st["path"] == "API" and st["pathReason"] in LAUNCHER_STARTING), dump(st)
    print(f"after the launcher was recreated: {st['path']} ({st['pathReason']})")
    world.objects.unbind(world.aaa1)
    world.loses("vm1")
    att = world.bind("vm1")
    again = world.wait_path(att, path="Local", reason="SameNode")
    assert f"(process {pid})" in again["pathMessage"]  # the new launcher's slot
    world.sees("vm1")


def test_unplug_and_replug_streams_again_on_the_local_path(world: World) -> None:
    att = world.bind("vm1")
    world.sees("vm1")
    world.wait_path(att, path="Local", reason="SameNode")
    world.harness.unplug("AAA1", node="node1")
    world.loses("vm1")
    world.harness.plug("AAA1", into="node1")
    world.sees("vm1")
    world.wait_path(att, path="Local", reason="SameNode")


def test_an_agent_killed_with_sigkill_streams_again_on_the_local_path(world: World) -> None:
    att = world.bind("vm1")
    world.sees("vm1")
    world.wait_path(att, path="Local", reason="SameNode")
    world.agent.kill()
    world.loses("vm1")  # the worker died with the agent: the kernel closed the slot socket
    world.agent.start(api_port=world.proxy.port)
    world.sees("vm1", within=240)
    world.wait_path(att, path="Local", reason="SameNode", within=240)


def test_a_vm_that_moves_to_node2_and_back_goes_api_then_local(world: World) -> None:
    att = world.bind("vm1")
    world.sees("vm1")
    world.wait_path(att, path="Local", reason="SameNode")
    old_uid = world.harness.launcher("default/vm1").vmi_uid
    moved = world.harness.restart_vm("default/vm1", node="node2")
    assert moved != old_uid
    world.wait_path(att, path="API", reason="VMIOnOtherNode", within=RESTART)
    world.sees("vm1", within=RESTART)
    assert world.api_slots("vm1") == (0,)
    world.harness.restart_vm("default/vm1", node="node1")
    world.wait_path(att, path="Local", reason="SameNode", within=RESTART)
    world.sees("vm1", within=RESTART)
    assert world.api_slots("vm1") == ()
