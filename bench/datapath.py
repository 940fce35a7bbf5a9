"""The data path: N MiB read inside the VM guest from a stick in the node guest, through the whole
chain (the streaming agent's engine in the node guest -> wss -> API emulator -> virt-api emulator
-> the VM's usb-redir slot), against the same read with the device redirected straight into the VM
guest without the agent (Debian's `usbredirect` in the node guest -> TCP -> a byte relay on the
host -> the same kind of slot), in the same run, alternating, on one stick.

Reported: the read times, the throughput ratio (direct time / agent time: 1.0 means the agent
costs nothing), and the CPU seconds the agent and its engine worker spent per GiB streamed (their
own clock ticks inside the node guest, which is software-emulated: a real node is far faster).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ByteSize

from kubevirt_usb.sandbox.datapath import (
    HOST_FROM_GUEST,
    GuestAgent,
    Objects,
    SlotRelay,
    cpu_seconds,
    guest_pids,
    node_stick,
    plain_harness,
)
from kubevirt_usb.sandbox.harness import SandboxHarness, poll_until
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec, Scenario, VMSpec

SERIAL = "BENCH1"
VM = "default/vm1"
ATTACHMENT = "bench"
SLOT_FOR_DIRECT = 3  # the agent's stream takes the lowest free slot through virt-api


def scenario(mib: int) -> Scenario:
    """One node with one stick of `mib` MiB (at least 64), one VM with USB redirection."""
    size = ByteSize(max(64, mib) * 1024 * 1024)
    return Scenario(
        nodes=[NodeSpec(name="node1", devices=[
            DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial=SERIAL, size=size)])],
        vms=[VMSpec(namespace="default", name="vm1", node="node1")])


def _read(harness: SandboxHarness, mib: int) -> float:
    guest = harness.sandbox.vm("default", "vm1")
    return harness.run(guest.read_benchmark(mib, serial=SERIAL), timeout=900)


def _wait_disk(harness: SandboxHarness) -> None:
    poll_until(lambda: harness.probe(VM).disk_by_serial(SERIAL) is not None, within=180,
             what=f"the VM's disk on {SERIAL}", interval=0.5)


def _wait_gone(harness: SandboxHarness) -> None:
    poll_until(lambda: harness.probe(VM).usb_by_serial(SERIAL) is None, within=60,
             what=f"the VM to lose {SERIAL}", interval=0.5)


def _direct(harness: SandboxHarness, relay: SlotRelay, *, mib: int,
            reads: int) -> tuple[list[float], float]:
    guest = harness.sandbox.node("node1")
    command = guest.host_command(["usbredirect", "--device", "46f4:0001", "--to",
                                  f"{HOST_FROM_GUEST}:{relay.port}"])
    process = harness.run(guest.start_background(command, log_path="/tmp/usbredirect.log"))
    try:
        _wait_disk(harness)
        pids = guest_pids(harness, guest, "usbredirect")
        before = cpu_seconds(harness, guest, pids)
        times = [_read(harness, mib) for _ in range(reads)]
        cpu = cpu_seconds(harness, guest, pids) - before
    finally:
        harness.run(guest.signal(process, signal_name="TERM"))
    _wait_gone(harness)
    return times, cpu


def _agent(harness: SandboxHarness, agent: GuestAgent, objects: Objects, *, mib: int,
           reads: int) -> tuple[list[float], float]:
    stick = node_stick(harness, SERIAL)
    objects.bind(stick, attachment=ATTACHMENT, vm="vm1")
    try:
        _wait_disk(harness)
        before = agent.cpu_seconds()
        times = [_read(harness, mib) for _ in range(reads)]
        cpu = agent.cpu_seconds() - before
    finally:
        objects.unbind(stick)
    _wait_gone(harness)
    return times, cpu


def _guest_cpu_flags(harness: SandboxHarness) -> str:
    output = harness.on_node("node1", "grep -m1 '^flags' /proc/cpuinfo").output
    return "with AES instructions" if " aes" in output else "without AES instructions"


def run(*, mib: int = 64, rounds: int = 3, reads: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvu-bench-") as tmp:
        harness = plain_harness(state_dir=Path(tmp) / "sandbox", scenario=scenario(mib))
        with harness:
            objects = Objects(harness)
            objects.publish(node_stick(harness, SERIAL))
            objects.attachment(ATTACHMENT, vm="vm1")
            agent = GuestAgent(harness, "node1")
            agent.start(api_port=harness.sandbox.api.port)
            poll_until(lambda: "ready (libusb" in agent.log(), within=180,
                     what="the agent and its spare engine worker")
            slot = harness.sandbox.vm("default", "vm1").usbredir_socket(SLOT_FOR_DIRECT)
            relay = SlotRelay(slot_path=slot)
            harness.run(relay.start())
            direct: list[float] = []
            through_agent: list[float] = []
            agent_cpu = direct_cpu = 0.0
            started = time.monotonic()
            try:
                for _ in range(rounds):
                    times, cpu = _direct(harness, relay, mib=mib, reads=reads)
                    direct += times
                    direct_cpu += cpu
                    times, cpu = _agent(harness, agent, objects, mib=mib, reads=reads)
                    through_agent += times
                    agent_cpu += cpu
            finally:
                harness.run(relay.stop())
                agent.stop()
            cpu_flags = _guest_cpu_flags(harness)
    gib = mib * rounds * reads / 1024
    direct_median = statistics.median(direct)
    agent_median = statistics.median(through_agent)
    return {
        "mib_per_read": mib, "rounds": rounds, "reads_per_round": reads,
        "direct_seconds": [round(t, 3) for t in direct],
        "agent_seconds": [round(t, 3) for t in through_agent],
        "direct_seconds_median": round(direct_median, 3),
        "agent_seconds_median": round(agent_median, 3),
        "direct_mb_per_s": round(mib * 1.048576 / direct_median, 1),
        "agent_mb_per_s": round(mib * 1.048576 / agent_median, 1),
        "ratio": round(direct_median / agent_median, 3),
        "agent_cpu_seconds_per_gib": round(agent_cpu / gib, 2),
        "usbredirect_cpu_seconds_per_gib": round(direct_cpu / gib, 2),
        "node_guest_cpu": f"TCG qemu64, {cpu_flags}",
        "wall_seconds": round(time.monotonic() - started, 1),
        "direct_path": "usbredirect 0.13.0 (node guest) -> TCP -> host relay -> VM slot socket",
        "agent_path": ("engine worker: libusb + libusbredirhost 0.13.0 + wss (node guest) -> "
                       "API emulator -> virt-api emulator -> VM slot socket"),
    }
