"""The chaos soak's decisions, as plain values: which faults, in which order, on what (a pure
schedule from a seed, so a run is replayed by its seed); the verdict on every block a VM's
workload wrote and read back; and the figures (recovery percentiles, RSS slope).

`bench.soak` does the I/O: it runs the cluster in a box, executes this schedule and feeds the
workloads' lines to `BlockLedger`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    AGENT_KILL = "agent-kill"  # kill -9 of the node agent (its DaemonSet starts it again)
    WORKER_KILL = "worker-kill"  # kill -9 of one engine worker
    LEADER_KILL = "leader-kill"  # kill -9 of the leading controller (its Deployment restarts it)
    API_CUT = "api-cut"  # every connection to the API cut at once
    API_REFUSE = "api-refuse"  # the API refuses connections for 20 s
    VM_RESTART = "vm-restart"  # the VM restarted: a new VMI
    REPLUG = "replug"  # a stick unplugged and plugged back into its port
    MOVE_PORT = "move-port"  # a stick moved to another port
    RECREATE = "recreate"  # an attachment deleted and created again
    FIFTH_DEVICE = "fifth-device"  # a VM asking for a fifth device
    POLICY_TOGGLE = "policy-toggle"  # the policy revoked and granted again


API_REFUSE_SECONDS = 20.0


class UnknownFaultKind(ValueError):
    """A fault kind asked for by name that the soak does not know."""


def choose_kinds(*, only: Sequence[str] = (),
                 without: Sequence[str] = ()) -> tuple[FaultKind, ...]:
    """The fault kinds a run injects: `only` those named (all when none are), less those in
    `without`, in the declared order. Raises `UnknownFaultKind` naming the unknown names and
    the known kinds, or when nothing is left to inject."""
    known = {kind.value: kind for kind in FaultKind}
    unknown = [name for name in (*only, *without) if name not in known]
    if unknown:
        raise UnknownFaultKind(f"unknown fault kind {', '.join(unknown)}; the kinds are "
                               f"{', '.join(known)}")
    chosen = tuple(kind for kind in FaultKind
                   if (not only or kind.value in only) and kind.value not in without)
    if not chosen:
        raise UnknownFaultKind(f"no fault kind left to inject; the kinds are {', '.join(known)}")
    return chosen


@dataclass(frozen=True)
class Fault:
    """One fault: its kind, what it hits (a VM, a stick, an attachment; "" when the kind has
    no target), a number the executor uses to pick among things only known at run time (which
    worker, which free port), and the pause before the next fault."""

    index: int
    kind: FaultKind
    target: str
    pick: int
    pause_after: float

    def describe(self) -> str:
        return f"#{self.index} {self.kind}" + (f" {self.target}" if self.target else "")


@dataclass(frozen=True)
class Targets:
    """What the faults can hit."""

    vms: tuple[str, ...]  # VMs that can be restarted
    sticks: tuple[str, ...]  # serials of the devices that can be unplugged or moved
    attachments: tuple[str, ...]  # attachments that can be deleted and recreated
    crowded_vm: str  # the VM that asks for a fifth device


def schedule(seed: int, targets: Targets, *, pause: tuple[float, float] = (3.0, 10.0),
             kinds: Sequence[FaultKind] = tuple(FaultKind)) -> Iterator[Fault]:
    """An endless sequence of faults from `seed`: every kind in turn in a shuffled round (so a
    short run still sees each kind), each with a random target and pause."""
    rng = random.Random(seed)
    index = 0
    while True:
        round_ = list(kinds)
        rng.shuffle(round_)
        for kind in round_:
            yield Fault(index=index, kind=kind, target=_target(kind, targets, rng),
                        pick=rng.randrange(1 << 16), pause_after=round(rng.uniform(*pause), 1))
            index += 1


@dataclass(frozen=True)
class Length:
    """How long faults are injected: at least `minutes`, and until `min_faults` faults have
    recovered; never past `cap_seconds` (a run that reaches it is incomplete: a failure)."""

    minutes: float
    min_faults: int
    cap_seconds: float

    @classmethod
    def of(cls, *, minutes: float, min_faults: int, per_fault: float) -> Length:
        """The cap: the minutes plus `per_fault` seconds for each fault asked for."""
        return cls(minutes=minutes, min_faults=min_faults,
                   cap_seconds=minutes * 60 + min_faults * per_fault)

    def keep_injecting(self, *, elapsed: float, recovered: int) -> bool:
        """Whether to inject another fault, `elapsed` seconds into the faults with
        `recovered` of them recovered."""
        if elapsed >= self.cap_seconds:
            return False
        return elapsed < self.minutes * 60 or recovered < self.min_faults

    def shortfall(self, *, recovered: int) -> str | None:
        """Why the run is incomplete (None when it is not)."""
        if recovered >= self.min_faults:
            return None
        return (f"only {recovered} of the {self.min_faults} faults asked for (--min-faults) "
                f"recovered within the hard cap of {self.cap_seconds / 60:.0f} minutes")


def _target(kind: FaultKind, targets: Targets, rng: random.Random) -> str:
    if kind is FaultKind.VM_RESTART:
        return rng.choice(targets.vms)
    if kind in (FaultKind.REPLUG, FaultKind.MOVE_PORT):
        return rng.choice(targets.sticks)
    if kind is FaultKind.RECREATE:
        return rng.choice(targets.attachments)
    if kind is FaultKind.FIFTH_DEVICE:
        return targets.crowded_vm
    return ""


# ---------------------------------------------------------------------------- the block ledger


@dataclass
class BlockLedger:
    """What a stick's workload was told, and whether what it read back agrees.

    The workload prints one line per step (see `bench.soak_guest`): `T slot gen` before it
    writes generation `gen` into `slot`; `A slot gen` once the write (O_DIRECT, then fsync)
    returned success, so the VM was told it was written; `V slot gen ok|bad` when it read the
    slot back (O_DIRECT) right after; `C slot gen ok|bad|empty` when it audited an older slot.

    A block is corrupt when a successful read of an acknowledged slot returns anything but
    that generation or a later one that was attempted: content that is not self-consistent,
    an older generation (a lost write), or nothing. A write that failed (the device vanished)
    leaves its slot uncertain until the next acknowledged write: reading a torn block there
    is not corruption, as the VM was never told it was written.
    """

    acknowledged: dict[int, int] = field(default_factory=dict)
    uncertain: dict[int, int] = field(default_factory=dict)  # slot -> newest attempted gen
    writes: int = 0
    verified: int = 0
    audits: int = 0
    failed_writes: int = 0
    corrupt: list[str] = field(default_factory=list)
    highest_gen: int = -1

    def feed(self, line: str) -> None:
        parts = line.split()
        if len(parts) < 3 or parts[0] not in {"T", "A", "V", "C"} or not parts[1].isdigit():
            return
        tag, slot = parts[0], int(parts[1])
        gen = int(parts[2]) if parts[2].isdigit() else None
        verdict = parts[3] if len(parts) > 3 else ""
        if tag == "T" and gen is not None:
            self.uncertain[slot] = gen
            self.highest_gen = max(self.highest_gen, gen)
        elif tag == "A" and gen is not None:
            self.writes += 1
            self.acknowledged[slot] = gen
            self.uncertain.pop(slot, None)
        elif tag == "V":
            self._judge(slot, gen, verdict, line)
            self.verified += verdict == "ok"
        elif tag == "C":
            self.audits += 1
            self._judge(slot, gen, verdict, line)

    def write_failed(self) -> None:
        self.failed_writes += 1

    def _judge(self, slot: int, gen: int | None, verdict: str, line: str) -> None:
        acked = self.acknowledged.get(slot)
        if acked is None:
            return  # never acknowledged: nothing was promised
        if slot in self.uncertain:
            return  # a later write was attempted and not acknowledged: may be torn
        if verdict == "ok" and gen is not None and gen >= acked:
            return
        self.corrupt.append(f"{line} (acknowledged generation {acked})")


# ---------------------------------------------------------------------------- the figures


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def slope_per_hour(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per hour; 0 for fewer than two."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 3600


@dataclass(frozen=True)
class RssWindow:
    """RSS of one process (one pid: a kill -9 starts a new one, whose memory starts over)
    over the part of its life that was sampled after its warm-up."""

    pid: int
    start_mib: float
    end_mib: float
    slope_mib_per_hour: float
    seconds: float
    samples: int


@dataclass(frozen=True)
class RssTrend:
    """RSS of one process kind over the run: every instance's window, and the longest one
    (the trend that tells whether memory grows; its length says how much it is worth)."""

    windows: tuple[RssWindow, ...]

    @property
    def longest(self) -> RssWindow:
        return max(self.windows, key=lambda w: (w.seconds, w.samples))


@dataclass(frozen=True)
class ProcessSample:
    """What /proc says of one process at one time: RSS, and the counts that tell a leak's kind
    when RSS grows (an open socket or file per reconnect, a thread per request)."""

    rss_mib: float
    threads: int | None
    fds: int | None

    def describe(self) -> str:
        counts = [f"{n} {what}" for n, what in ((self.fds, "fds"), (self.threads, "threads"))
                  if n is not None]
        return ", ".join([f"{self.rss_mib:.1f} MiB", *counts])


def parse_process_sample(status: str, *, fds: int | None) -> ProcessSample | None:
    """From the text of /proc/PID/status (VmRSS, Threads) and the number of entries in
    /proc/PID/fd (None when it could not be listed); None without a VmRSS line (the process
    is gone, or a kernel thread)."""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = fields.get("VmRSS", "").split()
    if not rss or not rss[0].isdigit():
        return None
    threads = fields.get("Threads", "").strip()
    return ProcessSample(rss_mib=int(rss[0]) / 1024,
                         threads=int(threads) if threads.isdigit() else None, fds=fds)


RSS_WARMUP = 120.0
"""Seconds after a process's first sample that do not count for its trend: a Python process
on an emulated node is still importing and opening its connections then."""


def rss_trend(samples: Sequence[tuple[float, int, float]], *,
              warmup: float = RSS_WARMUP) -> RssTrend | None:
    """From (seconds, pid, MiB) samples, one window per pid in order of first sample; each
    instance's first `warmup` seconds are left out (unless that leaves fewer than two
    samples)."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, mib in samples:
        by_pid.setdefault(pid, []).append((t, mib))
    if not by_pid:
        return None
    windows = []
    for pid, series in by_pid.items():
        settled = [(t, v) for t, v in series if t - series[0][0] >= warmup]
        used = settled if len(settled) >= 2 else series
        windows.append(RssWindow(pid=pid, start_mib=used[0][1], end_mib=used[-1][1],
                                 slope_mib_per_hour=slope_per_hour(used),
                                 seconds=used[-1][0] - used[0][0], samples=len(used)))
    return RssTrend(windows=tuple(windows))
