"""The chaos soak: the cluster in a box with its real controller (two replicas, leader election)
and node agent, reaching the API through a fault proxy; two sticks streamed into two VMs and the
serial adapter (a loopback plug on the node) into the second one; in each VM a workload that
writes checksummed blocks, syncs, reads them back past the page cache and verifies
(`bench.soak_guest`); and faults injected one after another from a seeded schedule
(`bench.soak_plan`), each waited out until the product recovered.

Recovery of a fault: counted from the moment the fault ended (the stick plugged back, the VM
booted again, the API answering again...) until every attachment is Attached for its VM's
current instance and every workload has completed a verified block (or an echoed line) after
the fault ended. Invariants checked continuously: no device held by two attachments or seen by
two VMs at once, at most 4 streams per VM instance; after each recovery and at the end (when
every attachment has been deleted): no engine worker, device lock or websocket beyond the
bindings. Corrupt blocks: see `BlockLedger`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import ByteSize

from bench.soak_guest import (
    SerialTally,
    block_command,
    complete_lines,
    is_failed_write,
    is_progress,
    log_path,
    serial_command,
)
from bench.soak_plan import (
    API_REFUSE_SECONDS,
    BlockLedger,
    Fault,
    FaultKind,
    Length,
    ProcessSample,
    RssWindow,
    Targets,
    parse_process_sample,
    percentile,
    rss_trend,
    schedule,
)
from kubevirt_usb import models
from kubevirt_usb.sandbox.components import NAMESPACE
from kubevirt_usb.sandbox.guest import BackgroundProcess
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.sandbox.scenario import (
    ROOT_PORTS,
    DeviceKind,
    DeviceSpec,
    NodeSpec,
    Scenario,
    VMSpec,
)

NODE = "node1"
GROUP_PATH = f"/apis/{models.GROUP}/{models.VERSION}"
ATTACHMENTS = f"{GROUP_PATH}/namespaces/default/usbattachments"
POLICY = "soak"
RECOVERY_BOUND = 240.0
"""Seconds a fault may take to recover before the soak calls it not recovered (TCG guests on a
shared 2-core machine; the measured figures are far below)."""
PER_FAULT_ALLOWANCE = RECOVERY_BOUND + 60.0
"""Seconds the hard cap of a run with --min-faults allows for each fault asked for (its bound
to recover plus a minute to inject it and pause); loaded runs take about 90 s a fault."""
LEAK_GRACE = 45.0
"""Seconds after a recovery for workers, locks and streams to match the bindings again."""
BLOCK_BYTES = 64 * 1024
AGENT = "kubevirt_usb agent"
WORKER = "kubevirt_usb.redirect.worker"
SLOTS = 128  # 8 MiB of each stick, rewritten round-robin


@dataclass(frozen=True)
class Stream:
    """A workload attachment: a device streamed into a VM, exercised by a workload."""

    attachment: str
    vm: str
    serial: str
    kind: str  # "block" or "serial"


STREAMS = (
    Stream("soak-aaa1", "vm1", "AAA1", "block"),
    Stream("soak-aaa2", "vm2", "AAA2", "block"),
    Stream("soak-serial", "vm2", "FT0001", "serial"),
)
EXTRAS = ("AAA3", "AAA4", "AAA5")  # vm2 holds two: two fill its four slots, one is the fifth


def soak_scenario() -> Scenario:
    """node1 with two 64 MiB sticks, a serial adapter with a loopback plug and three small
    sticks for the fifth-device fault; vm1 and vm2 both allow USB redirection."""
    sticks = [DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial="AAA1"),
              DeviceSpec(id="stick2", kind=DeviceKind.USB_STORAGE, serial="AAA2"),
              DeviceSpec(id="serial1", kind=DeviceKind.USB_SERIAL, serial="FT0001", echo=True)]
    extras = [DeviceSpec(id=f"extra{i}", kind=DeviceKind.USB_STORAGE, serial=serial,
                         size=ByteSize(1024 * 1024)) for i, serial in enumerate(EXTRAS, 3)]
    return Scenario(nodes=[NodeSpec(name=NODE, devices=[*sticks, *extras])],
                    vms=[VMSpec(name="vm1", node=NODE), VMSpec(name="vm2", node=NODE)])


@dataclass
class Workload:
    """One stream's workload in its VM: where its log is read up to, what it proved."""

    stream: Stream
    process: BackgroundProcess | None = None
    offset: int = 0
    ledger: BlockLedger = field(default_factory=BlockLedger)
    tally: SerialTally = field(default_factory=SerialTally)
    last_progress: float = 0.0  # monotonic time of the fetch that saw the latest progress
    last_line: str = ""

    def next_start(self) -> int:
        return max(self.ledger.highest_gen, self.tally.highest) + 1


@dataclass
class FaultRecord:
    fault: Fault
    recovered_s: float | None
    note: str = ""


@dataclass
class Findings:
    violations: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        if text not in self.violations[-20:]:
            self.violations.append(text)


class Soak:
    """One soak run; `run()` returns the figures."""

    def __init__(self, harness: SandboxHarness, *, seed: int, length: Length,
                 progress: Callable[[str], None],
                 kinds: tuple[FaultKind, ...] = tuple(FaultKind)) -> None:
        self.h = harness
        self.seed = seed
        self.kinds = kinds
        self.length = length
        self.minutes = length.minutes
        self.say = progress
        self.workloads = {s.attachment: Workload(s) for s in STREAMS}
        self.records: list[FaultRecord] = []
        self.repairs: list[str] = []
        self.findings = Findings()
        self.rss: dict[str, list[tuple[float, int, float]]] = {"agent": [], "controller": []}
        # beside each RSS sample, the same process's open fds and threads
        self.processes: dict[str, list[tuple[int, ProcessSample]]] = {"agent": [],
                                                                     "controller": []}
        self.t0 = time.monotonic()
        self._lock = threading.Lock()  # the workloads, between the monitor and the faults
        self._rss_lock = threading.Lock()  # the RSS samples, between the monitor and the run
        self._stop = threading.Event()

    # ---- the API --------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return self.h.http()

    def attachments(self) -> dict[str, dict[str, Any]]:
        with self.http() as http:
            items = http.get(ATTACHMENTS).json().get("items") or []
        return {o["metadata"]["name"]: o for o in items}

    def create_attachment(self, name: str, *, vm: str, serial: str) -> None:
        with self.http() as http:
            response = http.post(ATTACHMENTS, json={
                "apiVersion": models.API_VERSION, "kind": "USBAttachment",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"vm": vm, "device": {"serial": serial}}})
        if response.status_code != 201:
            raise RuntimeError(f"creating {name}: {response.status_code} {response.text}")

    def delete_attachment(self, name: str) -> None:
        with self.http() as http:
            http.delete(f"{ATTACHMENTS}/{name}")
        self.wait(lambda: name not in self.attachments(), within=RECOVERY_BOUND,
                  what=f"attachment {name} deleted")

    def grant(self) -> None:
        with self.http() as http:
            response = http.post(f"{GROUP_PATH}/usbpolicies", json={
                "apiVersion": models.API_VERSION, "kind": "USBPolicy",
                "metadata": {"name": POLICY}, "spec": {"namespaces": ["default"]}})
        if response.status_code != 201:
            raise RuntimeError(f"granting: {response.status_code} {response.text}")

    def revoke(self) -> None:
        with self.http() as http:
            http.delete(f"{GROUP_PATH}/usbpolicies/{POLICY}")

    def vmi_uid(self, vm: str) -> str | None:
        return self.h.sandbox.vm("default", vm).vmi_uid

    def attached(self, name: str, attachments: dict[str, dict[str, Any]]) -> bool:
        status = (attachments.get(name) or {}).get("status") or {}
        vm = self.workloads[name].stream.vm if name in self.workloads else None
        return status.get("phase") == "Attached" and (
            vm is None or status.get("vmiUID") == self.vmi_uid(vm))

    def wait(self, condition: Callable[[], bool], *, within: float, what: str,
             interval: float = 1.0) -> float:
        return self.h.wait_until(condition, within=within, what=what, interval=interval)

    # ---- the workloads --------------------------------------------------------------------

    def start_workload(self, workload: Workload) -> None:
        s = workload.stream
        command = block_command(serial=s.serial, block_bytes=BLOCK_BYTES, slots=SLOTS,
                                start=workload.next_start()) if s.kind == "block" else \
            serial_command(serial=s.serial, start=workload.next_start())
        guest = self.h.sandbox.vm("default", s.vm)
        workload.process = self.h.run(guest.start_background(command,
                                                              log_path=log_path(s.serial)))
        workload.offset = 0

    def stop_workload(self, workload: Workload) -> None:
        """Kill the workload and read its last lines (before its VM goes away)."""
        if workload.process is not None:
            guest = self.h.sandbox.vm("default", workload.stream.vm)
            with contextlib.suppress(Exception):
                self.h.run(guest.signal(workload.process, signal_name="KILL"))
            with contextlib.suppress(Exception):
                self.fetch(workload)
        workload.process = None

    def fetch(self, workload: Workload) -> None:
        """Read the workload's new lines and judge them."""
        if workload.process is None:
            return
        guest = self.h.sandbox.vm("default", workload.stream.vm)
        result = self.h.run(guest.exec(f"tail -c +{workload.offset + 1} "
                                       f"{log_path(workload.stream.serial)}", timeout=60))
        lines, used = complete_lines(result.output)
        workload.offset += used
        now = time.monotonic()
        workload.last_line = lines[-1] if lines else workload.last_line
        for line in lines:
            workload.ledger.feed(line)
            workload.tally.feed(line)
            if is_failed_write(line):
                workload.ledger.write_failed()
            if is_progress(line):
                workload.last_progress = now

    # ---- invariants -----------------------------------------------------------------------

    def check_claims(self) -> None:
        attachments = self.attachments()
        holders: dict[str, list[str]] = {}
        for name, obj in attachments.items():
            status = obj.get("status") or {}
            if status.get("device") and status.get("phase") in {"Bound", "Connecting",
                                                                 "Attached"}:
                holders.setdefault(status["device"], []).append(name)
        for device, names in holders.items():
            if len(names) > 1:
                self.findings.violation(f"device {device} held by {', '.join(sorted(names))}")
        for vm in ("vm1", "vm2"):
            slots = self.active_slots(vm)
            if len(slots) > 4:
                self.findings.violation(f"{vm} has {len(slots)} streams: {slots}")

    def active_slots(self, vm: str) -> tuple[int, ...]:
        virtapi = self.h.sandbox.virtapi
        return self.h.call(lambda: virtapi.active_slots(namespace="default", name=vm))

    def check_seen_once(self) -> None:
        """No serial in two VMs, nor twice in one VM (a stale stream beside a new one)."""
        seen: dict[str, list[str]] = {}
        for vm in ("vm1", "vm2"):
            with contextlib.suppress(Exception):
                for device in self.h.probe(f"default/{vm}").usb_devices:
                    if device.serial:
                        seen.setdefault(device.serial, []).append(vm)
        for serial, vms in seen.items():
            if len(vms) > 1:
                self.findings.violation(f"{serial} streamed into {' and '.join(vms)} at once")

    def node_pids(self, module: str) -> list[int]:
        """The node's processes running `python -m <module>` (not the shells that started
        them)."""
        prefix = shlex.quote(f"{sys.executable} -m {module} ")
        script = ("for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); "
                  f"case \"$c\" in {prefix}*) echo ${{p#/proc/}};; esac; done")
        output = self.h.on_node(NODE, script, timeout=60).output
        return sorted(int(p) for p in output.split() if p.isdigit())

    def resources(self) -> tuple[int, int, int]:
        """Engine workers, held device locks (flock) on the node, streams in the VMs."""
        workers = len(self.node_pids(WORKER))
        locks = self.h.on_node(NODE, "grep -c FLOCK /proc/locks", timeout=60).output.strip()
        streams = sum(len(self.active_slots(vm)) for vm in ("vm1", "vm2"))
        return workers, int(locks) if locks.isdigit() else 0, streams

    def check_leaks(self, *, bindings: int, when: str) -> None:
        """Workers: one per binding plus at most two kept ready (the agent's `EnginePool`
        keeps one idle worker for reuse and one spare started ahead; the idle workers of ended
        streams beyond those, 30 s); locks and streams: one per binding. Given LEAK_GRACE to
        settle."""
        def settled() -> bool:
            workers, locks, streams = self.resources()
            return workers <= bindings + 2 and locks <= bindings and streams <= bindings

        try:
            self.wait(settled, within=LEAK_GRACE, what="resources to match the bindings",
                      interval=3)
        except AssertionError:
            workers, locks, streams = self.resources()
            self.findings.leaks.append(
                f"{when}: {workers} engine workers, {locks} device locks, {streams} streams "
                f"for {bindings} bindings")

    def sample_rss(self) -> None:
        with self._rss_lock:
            now = time.monotonic() - self.t0
            counts = {name: len(samples) for name, samples in self.processes.items()}
            self._sample_rss(now)
            self.say(f"soak {self.elapsed()}: rss " + "; ".join(
                f"{name} " + ", ".join(f"pid {pid} {sample.describe()}"
                                       for pid, sample in samples[counts[name]:])
                for name, samples in self.processes.items()))

    def _sample_rss(self, now: float) -> None:
        for pid in self.node_pids(AGENT):
            # the status lines, then the number of open fds on a line of its own
            command = (f"grep -E '^(VmRSS|Threads):' /proc/{pid}/status 2>/dev/null; "
                       f"ls /proc/{pid}/fd 2>/dev/null | wc -l")
            output = self.h.on_node(NODE, command, timeout=60).output.strip().splitlines()
            listed = output[-1].strip() if output else ""
            self._record("agent", now, pid,
                         parse_process_sample("\n".join(output[:-1]),
                                              fds=int(listed) if listed.isdigit() else None))
        components = self.h.sandbox.components
        for process in (components.controllers.values() if components else ()):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{process.pid}/status").read_text()
                try:
                    opened: int | None = len(list(Path(f"/proc/{process.pid}/fd").iterdir()))
                except OSError:
                    opened = None
                self._record("controller", now, process.pid,
                             parse_process_sample(status, fds=opened))

    def _record(self, name: str, now: float, pid: int, sample: ProcessSample | None) -> None:
        if sample is not None:
            self.rss[name].append((now, pid, sample.rss_mib))
            self.processes[name].append((pid, sample))

    def process_counts(self, name: str, pid: int) -> dict[str, list[int | None]]:
        """The open fds and threads of one sampled process, at its first and last sample."""
        samples = [sample for p, sample in self.processes[name] if p == pid]
        if not samples:
            return {}
        return {"fds": [samples[0].fds, samples[-1].fds],
                "threads": [samples[0].threads, samples[-1].threads]}

    def monitor(self) -> None:
        """Fetch the workloads' lines and check the invariants until the soak ends."""
        rounds = 0
        while not self._stop.wait(2.0):
            rounds += 1
            try:
                with self._lock:
                    for workload in self.workloads.values():
                        with contextlib.suppress(Exception):
                            self.fetch(workload)
                self.check_claims()
                if rounds % 5 == 0:
                    self.check_seen_once()
                if rounds % 15 == 0:
                    self.sample_rss()
            except Exception:  # an API outage is one of the faults: check again later
                if self._stop.is_set():
                    return

    # ---- the faults -----------------------------------------------------------------------

    def inject(self, fault: Fault) -> str:
        """Do the fault; returns a note. Returns when the fault is over (the API answers
        again, the VM booted, the stick is back)."""
        kind = fault.kind
        if kind is FaultKind.AGENT_KILL:
            pids = self.node_pids(AGENT)
            self.h.on_node(NODE, f"kill -9 {' '.join(map(str, pids))}")
            self.wait(lambda: not self.node_pids(AGENT),
                      within=60, what="the agent gone")
            components = self.h.sandbox.components
            assert components is not None
            self.h.run(components.start_agent(self.h.sandbox.node(NODE)))
            return f"killed pid {pids}"
        if kind is FaultKind.WORKER_KILL:
            pids = self.node_pids(WORKER)
            if not pids:
                return "no worker running"
            pid = pids[fault.pick % len(pids)]
            self.h.on_node(NODE, f"kill -9 {pid}")
            return f"killed worker {pid} of {pids}"
        if kind is FaultKind.LEADER_KILL:
            return self.kill_leader()
        if kind is FaultKind.API_CUT:
            proxy = self.h.sandbox.fault_proxy
            assert proxy is not None
            return f"cut {self.h.call(proxy.cut)} connections"
        if kind is FaultKind.API_REFUSE:
            proxy = self.h.sandbox.fault_proxy
            assert proxy is not None

            def refuse(on: bool) -> int:
                proxy.refusing = on
                return proxy.cut() if on else 0

            cut = self.h.call(lambda: refuse(True))
            time.sleep(API_REFUSE_SECONDS)
            self.h.call(lambda: refuse(False))
            return f"refused for {API_REFUSE_SECONDS:.0f} s (cut {cut})"
        if kind is FaultKind.VM_RESTART:
            return self.restart_vm(fault.target)
        if kind is FaultKind.REPLUG:
            self.h.unplug(fault.target, node=NODE)
            time.sleep(3)
            port = self.h.plug(fault.target, into=NODE)
            return f"back in port {port}"
        if kind is FaultKind.MOVE_PORT:
            guest = self.h.sandbox.node(NODE)
            used = {guest.port_of(d.id) for d in guest.node.devices if guest.is_plugged(d.id)}
            free = [str(p) for p in range(1, ROOT_PORTS + 1) if str(p) not in used]
            port = free[fault.pick % len(free)]
            self.h.plug(fault.target, into=NODE, port=port)
            return f"moved to port {port}"
        if kind is FaultKind.RECREATE:
            stream = self.workloads[fault.target].stream
            self.delete_attachment(stream.attachment)
            self.create_attachment(stream.attachment, vm=stream.vm, serial=stream.serial)
            return ""
        if kind is FaultKind.FIFTH_DEVICE:
            return self.fifth_device(fault.target)
        if kind is FaultKind.POLICY_TOGGLE:
            self.revoke()
            time.sleep(5)
            self.grant()
            return ""
        raise AssertionError(kind)

    def leader(self) -> str:
        lease = self.h.call(lambda: self.h.sandbox.api.api.store.get(
            ("coordination.k8s.io", "leases"), NAMESPACE, "kubevirt-usb-controller"))
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def leader_pid(self) -> int | None:
        components = self.h.sandbox.components
        process = components.controllers.get(self.leader()) if components else None
        return process.pid if process is not None else None

    def kill_leader(self) -> str:
        holder = self.leader()
        components = self.h.sandbox.components
        assert components is not None
        process = components.controllers.get(holder)
        if process is None:
            return f"no live leader ({holder})"
        os.kill(process.pid, signal.SIGKILL)
        self.h.run(process.wait())
        time.sleep(2)  # the Deployment starts a new pod
        self.h.run(components.start_controller(holder))
        return f"killed {holder} (pid {process.pid})"

    def restart_vm(self, vm: str) -> str:
        with self._lock:
            mine = [w for w in self.workloads.values() if w.stream.vm == vm]
            for workload in mine:
                self.stop_workload(workload)
            uid = self.h.restart_vm(f"default/{vm}")
            for workload in mine:
                self.start_workload(workload)
        return f"new VMI {uid}"

    def fifth_device(self, vm: str) -> str:
        names = [f"soak-extra-{s.lower()}" for s in EXTRAS]
        for name, serial in zip(names, EXTRAS, strict=True):
            self.create_attachment(name, vm=vm, serial=serial)

        seen: list[str] = []

        def one_waits() -> bool:
            got = self.attachments()
            seen[:] = sorted(str(((got.get(n) or {}).get("status") or {}).get("phase"))
                             for n in names)
            holding = {"Bound", "Connecting", "Attached"}
            return seen.count("NoFreeSlot") == 1 and all(p in holding for p in seen
                                                         if p != "NoFreeSlot")

        try:
            self.wait(one_waits, within=RECOVERY_BOUND, what="two extras holding a slot, one "
                      "waiting in NoFreeSlot", interval=2)
            note = f"the fifth waited in NoFreeSlot ({', '.join(seen)})"
        except AssertionError as exc:
            self.findings.violation(f"fifth device: {exc}; phases {seen}")
            note = f"not as expected: {exc}; phases {seen}"
        for name in names:
            self.delete_attachment(name)
        return note

    def recovered(self, since: float) -> bool:
        attachments = self.attachments()
        if not all(self.attached(name, attachments) for name in self.workloads):
            return False
        with self._lock:
            return all(w.last_progress > since for w in self.workloads.values())

    # ---- the run --------------------------------------------------------------------------

    def setup(self) -> None:
        self.grant()
        for stream in STREAMS:
            self.create_attachment(stream.attachment, vm=stream.vm, serial=stream.serial)
        self.wait(lambda: all(self.attached(s.attachment, self.attachments())
                              for s in STREAMS), within=RECOVERY_BOUND,
                  what="every attachment Attached")
        agents, workers = self.node_pids(AGENT), self.node_pids(WORKER)
        if not agents or len(workers) < len(STREAMS):
            raise RuntimeError(f"the soak does not see the agent's processes on {NODE} "
                               f"(agent {agents}, engine workers {workers})")
        for workload in self.workloads.values():
            self.start_workload(workload)

    def run(self) -> dict[str, Any]:
        at_least = (f", until {self.length.min_faults} faults recovered (hard cap "
                    f"{self.length.cap_seconds / 60:.0f} minutes)" if self.length.min_faults
                    else "")
        left_out = ",".join(k.value for k in FaultKind if k not in self.kinds)
        without = f" --without {left_out}" if left_out else ""
        self.say(f"soak: seed {self.seed}, {self.minutes:g} minutes{at_least}; faults: "
                 f"{', '.join(self.kinds)}; replay with "
                 f"`python -m bench soak --minutes {self.minutes:g} --seed {self.seed}"
                 f"{f' --min-faults {self.length.min_faults}' if at_least else ''}"
                 f"{without}`")
        self.setup()
        monitor = threading.Thread(target=self.monitor, daemon=True, name="soak-monitor")
        monitor.start()
        start = time.monotonic()
        self.wait(lambda: self.recovered(start), within=RECOVERY_BOUND,
                  what="every workload verifying its first block")
        self.say(f"soak: workloads running ({self.status_line()})")
        self.sample_rss()
        end = start + self.minutes * 60
        targets = Targets(vms=("vm1", "vm2"), sticks=("AAA1", "AAA2", "FT0001"),
                          attachments=tuple(self.workloads), crowded_vm="vm2")
        for fault in schedule(self.seed, targets, kinds=self.kinds):
            if not self.length.keep_injecting(elapsed=time.monotonic() - start,
                                              recovered=self.faults_recovered()):
                break
            self.one_fault(fault)
            time.sleep(max(0.0, min(fault.pause_after, end - time.monotonic())))
        self.sample_rss()
        self._stop.set()
        monitor.join(60)
        with self._lock:
            for workload in self.workloads.values():
                self.stop_workload(workload)
        self.check_leaks(bindings=len(STREAMS), when="at the end, attached")
        for stream in STREAMS:
            self.delete_attachment(stream.attachment)
        self.check_leaks(bindings=0, when="at the end, every attachment deleted")
        return self.results(seconds=time.monotonic() - start)

    @staticmethod
    def rss_figures(samples: list[tuple[float, int, float]], *,
                    leader: int | None) -> dict[str, Any] | None:
        """RSS start, end and slope of the process that tells most (the leading controller
        when it was sampled twice, else the longest-lived instance), and every instance's
        window."""
        trend = rss_trend(samples)
        if trend is None:
            return None
        leading = [w for w in trend.windows if w.pid == leader and w.samples >= 2]
        main = leading[0] if leading else trend.longest

        def figures(w: RssWindow) -> dict[str, Any]:
            return {"pid": w.pid, "start_mib": round(w.start_mib, 1),
                    "end_mib": round(w.end_mib, 1),
                    "slope_mib_per_hour": round(w.slope_mib_per_hour, 2),
                    "over_s": round(w.seconds), "samples": w.samples}

        return {**figures(main), "instances": len(trend.windows),
                **({"leader": True} if leading else {}),
                "windows": [figures(w) for w in trend.windows]}

    def faults_recovered(self) -> int:
        return sum(r.recovered_s is not None for r in self.records)

    def one_fault(self, fault: Fault) -> None:
        self.say(f"soak {self.elapsed()}: fault {fault.describe()}")
        try:
            note = self.inject(fault)
        except Exception as exc:  # a fault that cannot be done is reported, not fatal
            self.records.append(FaultRecord(fault, None, f"injecting failed: {exc}"))
            self.say(f"soak {self.elapsed()}:   injecting failed: {exc}")
            return
        with self._lock:  # what the workloads logged until now happened before the fault ended
            for workload in self.workloads.values():
                with contextlib.suppress(Exception):
                    self.fetch(workload)
        ended = time.monotonic()
        try:
            seconds = self.wait(lambda: self.recovered(ended), within=RECOVERY_BOUND,
                                what="recovery", interval=0.5)
        except AssertionError:
            self.records.append(FaultRecord(fault, None, note))
            self.say(f"soak {self.elapsed()}:   NOT recovered within {RECOVERY_BOUND:.0f} s "
                     f"({note}); {self.status_line()}; {self.stuck()}")
            self.repair(since=ended)
            return
        self.records.append(FaultRecord(fault, seconds, note))
        self.say(f"soak {self.elapsed()}:   recovered in {seconds:.1f} s ({note}); "
                 f"{self.status_line()}")
        self.check_leaks(bindings=len(STREAMS), when=f"after {fault.describe()}")

    def repair(self, *, since: float) -> None:
        """What an admin would do about a VM whose device stopped working: restart it, so the
        soak goes on measuring the other faults (the non-recovery stays counted)."""
        vms = sorted({w.stream.vm for w in self.workloads.values() if w.last_progress <= since})
        for vm in vms:
            self.say(f"soak {self.elapsed()}:   repair: restarting {vm}")
            with contextlib.suppress(Exception):
                self.restart_vm(vm)
            self.repairs.append(vm)
        restarted = time.monotonic()
        with contextlib.suppress(AssertionError):
            seconds = self.wait(lambda: self.recovered(restarted), within=RECOVERY_BOUND,
                                what="recovery after the repair", interval=1)
            self.say(f"soak {self.elapsed()}:   repaired in {seconds:.1f} s")

    def stuck(self) -> str:
        """What each workload and attachment looks like now (for a fault that did not
        recover)."""
        now = time.monotonic()
        phases: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            got = self.attachments()
            phases = {n: ((got.get(n) or {}).get("status") or {}).get("phase")
                      for n in self.workloads}
        lines = [f"{w.stream.serial} in {w.stream.vm}: {phases.get(name)}, last progress "
                 f"{now - w.last_progress:.0f} s ago, last line {w.last_line!r}"
                 for name, w in self.workloads.items()]
        procs = ("for p in /proc/[0-9]*; do [ -n \"$(head -c 1 $p/cmdline)\" ] && "
                 "echo \"${p#/proc/} $(cut -d' ' -f3 $p/stat) $(cat $p/wchan) "
                 "$(head -c 60 $p/cmdline | tr '\\0' ' ')\"; done; ls /sys/block; ")
        for vm in ("vm1", "vm2"):
            with contextlib.suppress(Exception):
                lines.append(f"{vm}'s USB devices: " + ", ".join(
                    f"{d.name} {d.vid_pid} {d.serial}"
                    for d in self.h.probe(f"default/{vm}").usb_devices))
        for name, w in self.workloads.items():
            if w.process is None or now - w.last_progress < 30:
                continue
            with contextlib.suppress(Exception):
                lines.append(f"{w.stream.vm} ({name} stuck):\n" + self.h.in_vm(
                    f"default/{w.stream.vm}", procs + f"cat /proc/{w.process.pid}/stack; "
                    f"tail -n 5 {log_path(w.stream.serial)}", timeout=60).output)
                lines.append(self.h.in_vm(f"default/{w.stream.vm}", "dmesg | tail -n 40",
                                          timeout=60).output)
        with contextlib.suppress(Exception):
            lines.append("agent log:\n" + self.h.on_node(
                NODE, "tail -n 40 /tmp/agent.log | cut -c1-400", timeout=60).output)
        return "\n".join(lines)

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.t0)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def status_line(self) -> str:
        blocks = [w.ledger for w in self.workloads.values() if w.stream.kind == "block"]
        serial = [w.tally for w in self.workloads.values() if w.stream.kind == "serial"]
        return (f"{sum(b.verified for b in blocks) * BLOCK_BYTES / 2**20:.1f} MiB verified, "
                f"{sum(len(b.corrupt) for b in blocks)} corrupt, "
                f"{sum(t.ok for t in serial)} serial echoes, "
                f"{len(self.findings.violations)} violations, {len(self.findings.leaks)} leaks")

    def results(self, *, seconds: float) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = {}
        for kind in self.kinds:
            records = [r for r in self.records if r.fault.kind is kind]
            times = [r.recovered_s for r in records if r.recovered_s is not None]
            by_kind[kind.value] = {
                "injected": len(records), "recovered": len(times),
                "p50_s": round(percentile(times, 50), 1) if times else None,
                "p99_s": round(percentile(times, 99), 1) if times else None,
                "max_s": round(max(times), 1) if times else None}
        blocks = [w.ledger for w in self.workloads.values() if w.stream.kind == "block"]
        serial = [w.tally for w in self.workloads.values() if w.stream.kind == "serial"]
        all_times = [r.recovered_s for r in self.records if r.recovered_s is not None]
        rss = {name: self.rss_figures(samples, leader=self.leader_pid() if
                                      name == "controller" else None)
               for name, samples in self.rss.items()}
        for name, figures in rss.items():
            if figures is not None:
                figures.update(self.process_counts(name, figures["pid"]))
        return {
            "seed": self.seed, "minutes": self.minutes, "faulted_seconds": round(seconds),
            "fault_kinds": [k.value for k in self.kinds],
            "min_faults": self.length.min_faults,
            "hard_cap_s": round(self.length.cap_seconds),
            "incomplete": self.length.shortfall(recovered=len(all_times)),
            "recovery_bound_s": RECOVERY_BOUND,
            "faults_injected": len(self.records), "faults_recovered": len(all_times),
            "recovery_p50_s": round(percentile(all_times, 50), 1) if all_times else None,
            "recovery_p99_s": round(percentile(all_times, 99), 1) if all_times else None,
            "recovery_max_s": round(max(all_times), 1) if all_times else None,
            "by_kind": by_kind,
            "repairs": self.repairs,
            "not_recovered": [f"{r.fault.describe()}: {r.note}" for r in self.records
                              if r.recovered_s is None],
            "block_bytes": BLOCK_BYTES,
            "mib_written": round(sum(b.writes for b in blocks) * BLOCK_BYTES / 2**20, 1),
            "mib_verified": round(sum(b.verified for b in blocks) * BLOCK_BYTES / 2**20, 1),
            "blocks_audited": sum(b.audits for b in blocks),
            "failed_writes": sum(b.failed_writes for b in blocks),
            "corrupt_blocks": sum(len(b.corrupt) for b in blocks),
            "corrupt": [c for b in blocks for c in b.corrupt][:20],
            "serial_echoes_ok": sum(t.ok for t in serial),
            "serial_kib_echoed": round(sum(t.bytes_echoed for t in serial) / 1024, 1),
            "serial_lost": sum(t.lost for t in serial),
            "serial_garbled": sum(t.garbled for t in serial),
            "violations": self.findings.violations[:20],
            "leaks": self.findings.leaks,
            "rss": rss,
            "median_fault_pause_s": statistics.median([r.fault.pause_after
                                                       for r in self.records] or [0]),
        }


def run(*, minutes: float, min_faults: int = 0, seed: int | None = None,
        state_dir: Path | None = None, kinds: tuple[FaultKind, ...] = tuple(FaultKind),
        progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Start the soak sandbox, run the soak, stop everything; the figures. Faults are
    injected for `minutes` and, past them, until `min_faults` faults have recovered (up to a
    hard cap; a run that reaches it says so in "incomplete")."""
    length = Length.of(minutes=minutes, min_faults=min_faults, per_fault=PER_FAULT_ALLOWANCE)
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvu-soak-")))
        progress(f"soak: starting the cluster in a box in {state_dir}")
        harness = SandboxHarness(state_dir=state_dir, scenario=soak_scenario(),
                                 controller_replicas=2, api_proxy=True, boot_timeout=600,
                                 progress=lambda m: progress(f"sandbox: {m}"))
        with harness:
            return Soak(harness, seed=seed, length=length, progress=progress,
                        kinds=kinds).run()
    raise AssertionError("unreachable")
