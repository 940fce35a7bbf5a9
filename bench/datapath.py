"""The data path: N MiB read inside the VM guest from a stick in the node guest, over three paths
measured alternately in one run, on one stick and the same two guests:

- **direct**: Debian's `usbredirect` in the node guest -> the launcher stand-in's TCP port for slot
  3 -> the bridge (QEMU user networking, a splice on the host) -> the VM's slot socket. No agent,
  no API server, no TLS: the limit.
- **local**: the streaming agent's engine worker -> the launcher stand-in's slot socket (the
  node-local path) -> the same bridge -> the VM's slot socket.
- **direct-host** (the bridge's cost): `usbredirect` -> TCP 10.0.2.2 straight to the bridge's
  host end -> the VM's slot socket, skipping the stand-in's hop in the node guest (the baseline
  before the node-local path existed).
- **api**: the engine worker -> websocket over TLS -> the API emulator -> the virt-api emulator ->
  the VM's slot socket. The launcher stand-in is stopped for these rounds so that the agent, which
  tries the local path first, falls back to the API (reason LauncherProcessNotFound); the bridge
  is not in this path.

Warm-up is explicit: one round of each path first (attach, one read, detach), reported apart and
excluded from the medians; it absorbs the engine worker's first session and the spare worker the
agent starts a few seconds after a stream takes the ready one (seconds of the node guest's one
emulated CPU: importing Python modules over 9p), and the measured rounds start only once that
spare is ready. Then `rounds` rounds, each path in turn, `reads` reads per path per round.

Reported per path: the read times and their median, the throughput ratio to direct (direct median
/ path median), the CPU seconds per GiB of the path's own processes (usbredirect; the agent and its
engine workers) and of the bridge's in-guest half (the stand-in), in the node guest's clock ticks,
and the attach latency (binding written, or usbredirect started, until the VM's kernel lists the
device). The host's CPU model is recorded with every result.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ByteSize

from kubevirt_usb.sandbox.datapath import (
    GuestAgent,
    Objects,
    Stick,
    cpu_seconds,
    guest_pids,
    node_stick,
    plain_harness,
)
from kubevirt_usb.sandbox.harness import SandboxHarness, poll_until
from kubevirt_usb.sandbox.launcher import HOST_FROM_GUEST
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec, Scenario, VMSpec

SERIAL = "BENCH1"
VM = "default/vm1"
ATTACHMENT = "bench"
DIRECT_SLOT = 3  # the slot the agent's local path takes first (from 3 down)
PATHS = ("direct", "local", "api", "direct-host")
EXPECTED_PATH = {"local": "Local", "api": "API"}


def scenario(mib: int) -> Scenario:
    """One node with one stick of `mib` MiB (at least 64), one VM on it with USB redirection."""
    size = ByteSize(max(64, mib) * 1024 * 1024)
    return Scenario(
        nodes=[NodeSpec(name="node1", devices=[
            DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial=SERIAL, size=size)])],
        vms=[VMSpec(namespace="default", name="vm1", node="node1")])


def host_cpu(cpuinfo: str) -> str:
    """The host's CPU model and count from /proc/cpuinfo, e.g. '2 x AMD EPYC'."""
    models = [line.partition(":")[2].strip() for line in cpuinfo.splitlines()
              if line.startswith("model name")]
    return f"{len(models)} x {models[0]}" if models else "unknown"


@dataclass
class PathRun:
    """One path's samples."""

    seconds: list[float] = field(default_factory=list)
    attach: list[float] = field(default_factory=list)
    cpu: float = 0.0
    bridge_cpu: float = 0.0
    mib: int = 0
    seen: list[str] = field(default_factory=list)  # status path (pathReason) per round


class Bench:
    """The sandbox, the agent, the objects and the launcher stand-in for one run."""

    def __init__(self, harness: SandboxHarness, *, mib: int, reads: int) -> None:
        self.harness = harness
        self.mib = mib
        self.reads = reads
        self.objects = Objects(harness)
        self.agent = GuestAgent(harness, "node1")
        self.stick: Stick | None = None

    @property
    def node(self) -> Any:
        return self.harness.sandbox.node("node1")

    def start(self) -> None:
        self.stick = node_stick(self.harness, SERIAL)
        self.objects.publish(self.stick)
        self.objects.attachment(ATTACHMENT, vm="vm1")
        self.agent.start(api_port=self.harness.sandbox.api.port)
        try:
            poll_until(lambda: "ready (libusb" in self.agent.log(), within=600, interval=1,
                       what="the agent and its spare engine worker")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- agent log ---\n{self.agent.log()}") from None

    def spares_ready(self) -> int:
        return self.agent.log(lines=400).count("ready (libusb")

    # ---- one path, one round ---------------------------------------------------------------

    def round(self, path: str, into: PathRun, *, reads: int) -> None:
        attach: Callable[[], Callable[[], None]] = {
            "direct": self._attach_direct, "direct-host": self._attach_direct_host,
            "local": self._attach_agent, "api": self._attach_agent}[path]
        self._launcher_for(path)
        started = time.monotonic()
        detach = attach()
        try:
            try:
                poll_until(lambda: self.harness.probe(VM).disk_by_serial(SERIAL) is not None,
                           within=300, interval=0.1, what=f"the VM's disk on {SERIAL} ({path})")
            except AssertionError as exc:
                status = self.objects.status(ATTACHMENT)
                raise AssertionError(f"{exc}\nstatus: {status}\n--- agent log ---\n"
                                     f"{self.agent.log(lines=60)}") from None
            into.attach.append(time.monotonic() - started)
            if path in EXPECTED_PATH:
                into.seen.append(self._path_seen(path))
            pids = self._pids(path)
            bridge = self._bridge_pids(path)
            before = self._cpu(pids), self._cpu(bridge)
            into.seconds += [self._read() for _ in range(reads)]
            into.cpu += self._cpu(pids) - before[0]
            into.bridge_cpu += self._cpu(bridge) - before[1]
            into.mib += self.mib * reads
        finally:
            detach()
        poll_until(lambda: self.harness.probe(VM).usb_by_serial(SERIAL) is None, within=60,
                   interval=0.25, what=f"the VM to lose {SERIAL} ({path})")

    def _launcher_for(self, path: str) -> None:
        launcher = self.harness.launcher(VM)
        running = launcher.pid is not None
        if path == "api" and running:
            self.harness.kill_launcher(VM)
        elif path != "api" and not running:
            self.harness.recreate_launcher(VM)

    def _attach_direct(self) -> Callable[[], None]:
        return self._usbredirect(f"127.0.0.1:{self.harness.launcher(VM).tcp_ports[DIRECT_SLOT]}")

    def _attach_direct_host(self) -> Callable[[], None]:
        port = self.harness.launcher(VM).bridge.ports[DIRECT_SLOT]
        return self._usbredirect(f"{HOST_FROM_GUEST}:{port}")

    def _usbredirect(self, to: str) -> Callable[[], None]:
        command = self.node.host_command(["usbredirect", "--device", "46f4:0001", "--to", to])
        process = self.harness.run(self.node.start_background(
            command, log_path="/tmp/usbredirect.log"))
        return lambda: self.harness.run(self.node.signal(process, signal_name="TERM"))

    def _attach_agent(self) -> Callable[[], None]:
        assert self.stick is not None
        stick = self.stick
        self.objects.bind(stick, attachment=ATTACHMENT, vm="vm1")
        return lambda: self.objects.unbind(stick)

    def _path_seen(self, path: str) -> str:
        def reported() -> bool:
            return bool(self.objects.status(ATTACHMENT).get("path"))

        try:
            poll_until(reported, within=30, interval=0.25, what="status.path")
        except AssertionError:
            return "unreported"
        status = self.objects.status(ATTACHMENT)
        seen = f"{status.get('path')} ({status.get('pathReason')})"
        if status.get("path") != EXPECTED_PATH[path]:
            raise AssertionError(f"the {path} rounds streamed on {seen}: "
                                 f"{status.get('pathMessage')}")
        return seen

    def _pids(self, path: str) -> list[int]:
        if path.startswith("direct"):
            return guest_pids(self.harness, self.node, "usbredirect")
        return self.agent.pids()

    def _bridge_pids(self, path: str) -> list[int]:
        pid = self.harness.launcher(VM).pid
        return [pid] if path in ("direct", "local") and pid is not None else []

    def _cpu(self, pids: list[int]) -> float:
        return cpu_seconds(self.harness, self.node, pids)

    def _read(self) -> float:
        guest = self.harness.sandbox.vm("default", "vm1")
        return self.harness.run(guest.read_benchmark(self.mib, serial=SERIAL), timeout=900)


def _summary(run: PathRun, *, mib: int, direct_median: float | None) -> dict[str, Any]:
    median = statistics.median(run.seconds)
    gib = run.mib / 1024
    out: dict[str, Any] = {
        "seconds": [round(t, 3) for t in run.seconds],
        "seconds_median": round(median, 3),
        "mb_per_s": round(mib * 1.048576 / median, 1),
        "cpu_seconds_per_gib": round(run.cpu / gib, 2) if gib else None,
        "attach_seconds": [round(t, 2) for t in run.attach],
        "attach_seconds_median": round(statistics.median(run.attach), 2),
    }
    if len(run.seconds) >= 4:
        quartiles = statistics.quantiles(run.seconds, n=4)
        out["seconds_iqr"] = [round(quartiles[0], 3), round(quartiles[2], 3)]
    if run.bridge_cpu:
        out["bridge_cpu_seconds_per_gib"] = round(run.bridge_cpu / gib, 2)
    if direct_median is not None:
        out["ratio_to_direct"] = round(direct_median / median, 3)
    if run.seen:
        out["path_seen"] = sorted(set(run.seen))
    return out


def run(*, mib: int = 64, rounds: int = 5, reads: int = 2,
        paths: tuple[str, ...] = PATHS) -> dict[str, Any]:
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ValueError(f"unknown path {unknown[0]!r}: the paths are {', '.join(PATHS)}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kvu-bench-") as tmp:
        harness = plain_harness(state_dir=Path(tmp) / "sandbox", scenario=scenario(mib))
        with harness:
            bench = Bench(harness, mib=mib, reads=reads)
            started = time.monotonic()
            try:
                bench.start()
                warm = {p: PathRun() for p in paths}
                for path in paths:
                    bench.round(path, warm[path], reads=1)
                try:
                    poll_until(lambda: bench.spares_ready() >= 2, within=300, interval=1,
                               what="the agent's replacement spare engine worker")
                    spare_ready = True
                except AssertionError:  # a loaded machine: measure anyway, and say so
                    spare_ready = False
                measured = {p: PathRun() for p in paths}
                for _ in range(rounds):
                    for path in paths:
                        bench.round(path, measured[path], reads=reads)
            finally:
                bench.agent.stop()
            wall = time.monotonic() - started
    direct = statistics.median(measured["direct"].seconds) if "direct" in paths else None
    return {
        "mib_per_read": mib, "rounds": rounds, "reads_per_round": reads,
        "spare_worker_ready_before_measuring": spare_ready,
        "warmup": {p: {"first_read_seconds": round(w.seconds[0], 3),
                       "attach_seconds": round(w.attach[0], 2)} for p, w in warm.items()},
        **{p: _summary(m, mib=mib, direct_median=None if p == "direct" else direct)
           for p, m in measured.items()},
        "host_cpu": host_cpu(Path("/proc/cpuinfo").read_text()),
        "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "node_guest_cpu": "TCG qemu64 (1 vCPU), without AES instructions",
        "wall_seconds": round(wall, 1),
        "paths": {
            "direct": "usbredirect 0.13.0 -> stand-in TCP 127.0.0.1 -> bridge -> VM slot",
            "local": "engine worker (libusb + libusbredirhost 0.13.0) -> stand-in unix slot "
                     "socket -> bridge -> VM slot",
            "api": "engine worker -> wss (ChaCha20) -> API emulator -> virt-api emulator -> "
                   "VM slot",
            "direct-host": "usbredirect 0.13.0 -> TCP 10.0.2.2 -> bridge's host end -> VM slot",
            "bridge": "stand-in in the node guest (splice) -> TCP 10.0.2.2 (QEMU user "
                      "networking) -> host asyncio splice -> VM guest's unix slot socket",
        },
    }
