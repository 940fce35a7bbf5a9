"""The node agent: keeps this node's USBDevice objects true, and its heartbeat Lease fresh.

Four loops run side by side until cancelled:

- the informer lists and watches every USBDevice in the cluster (identities are cluster-wide);
- the heartbeat renews the node's Lease;
- the event pump turns hot-plug events into a pending burst (`schedule`);
- the publish loop scans sysfs and publishes when a burst settles, every `rescan_interval`
  seconds, when a grace period ends, or when a change to one of this node's objects arrives
  (someone deleted or edited one). It waits for the first list, so identities are never decided
  without the objects that already hold them.

No failure stops the agent: a failed publish is logged once and retried after a jittered backoff;
a missing event source leaves the periodic rescan. Readiness (`ready()`) means: published at
least once, and the API server answered the latest list, renewal and publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubevirt_usb.agent.heartbeat import Heartbeat
from kubevirt_usb.agent.hotplug import EventSource, is_usb_event
from kubevirt_usb.agent.informer import DeviceCache, Informer
from kubevirt_usb.agent.metrics import AgentMetrics
from kubevirt_usb.agent.objects import ABSENT, AVAILABLE, DeviceObject
from kubevirt_usb.agent.publisher import Publisher, PublishResult
from kubevirt_usb.agent.schedule import (
    Schedule,
    after_failure,
    after_success,
    next_run,
    starting,
)
from kubevirt_usb.clock import WallClock, utc_now
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.kube.retry import Backoff, RandomSource, Retry, backoff_delay, decide
from kubevirt_usb.usb import sysfs
from kubevirt_usb.usb.usbids import UsbIds

log = logging.getLogger(__name__)



@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """How one node's agent behaves (times in seconds)."""

    node: str
    usb_ids: UsbIds
    sysfs_root: Path = Path("/sys")
    namespace: str = "kubevirt-usb"
    lease_name: str | None = None
    grace_period: float = 600.0
    rescan_interval: float = 60.0
    lease_duration: int = 40
    renew_interval: float = 10.0
    restart_grace: int = 120
    quiet: float = 0.2
    max_delay: float = 1.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=30.0))
    lease_annotations: Mapping[str, str] = field(default_factory=dict)


def concerns(node: str, obj: DeviceObject | None) -> bool:
    """Whether an object is this node's (published by it, or being created by it)."""
    return obj is not None and obj.belongs_to(node)


def state_counts(node: str, objects: dict[str, DeviceObject]) -> Counter[str]:
    """This node's objects by state (Available, Absent)."""
    return Counter(AVAILABLE if o.present else ABSENT for o in objects.values()
                   if o.status is not None and o.node == node)


class Agent:
    """One node's agent (see the module docstring)."""

    def __init__(self, options: AgentOptions, *, client: KubeClient, events: EventSource,
                 clock: WallClock = utc_now, metrics: AgentMetrics | None = None,
                 rand: RandomSource = random.random,
                 read_file: sysfs.FileReader = sysfs.read_attribute) -> None:
        self.options = options
        self.read_file = read_file
        self.client = client
        self.events = events
        self.clock = clock
        self.metrics = metrics or AgentMetrics()
        self.rand = rand
        self.cache = DeviceCache(node=options.node)
        self.publisher = Publisher(client, self.cache, node=options.node,
                                   grace=dt.timedelta(seconds=options.grace_period),
                                   on_write=self.metrics.api_write)
        self.informer = Informer(client, self.cache, on_change=self._on_change,
                                 on_error=self._on_watch_error, backoff=options.backoff,
                                 rand=rand)
        self.heartbeat = Heartbeat(client, node=options.node, namespace=options.namespace,
                                   name=options.lease_name,
                                   duration_seconds=options.lease_duration,
                                   interval=options.renew_interval,
                                   restart_grace=options.restart_grace, clock=clock,
                                   annotations=options.lease_annotations,
                                   on_result=self._on_heartbeat, rand=rand)
        self.published = 0
        self.last_result: PublishResult | None = None
        self._problems: dict[str, str] = {"api": "not connected to the API server yet"}
        self._schedule = Schedule(periodic_at=0.0)
        self._wake = asyncio.Event()
        self._failures = 0
        self._followups = 0
        self._skipped: tuple[sysfs.SkippedDevice, ...] = ()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._extra = {"node": options.node}

    # ---- health -------------------------------------------------------------------------------

    def live(self) -> str | None:
        """None while every loop runs, else which one stopped."""
        for name, task in self._tasks.items():
            if name != "events" and task.done():
                return f"the {name} loop stopped"
        return None

    def ready(self) -> str | None:
        """None once published and the API server answers, else why not."""
        if not self.published:
            return "the first publish has not finished"
        return next(iter(self._problems.values()), None)

    # ---- triggers -----------------------------------------------------------------------------

    def trigger(self) -> None:
        """Ask for a scan soon (debounced like a hot-plug event)."""
        self._schedule = self._schedule.with_event(asyncio.get_running_loop().time())
        self._wake.set()

    def _on_change(self, before: DeviceObject | None, after: DeviceObject | None) -> None:
        if before is None and after is None:  # a fresh list
            self._problems.pop("watch", None)
            self._problems.pop("api", None)
            self.trigger()
        elif concerns(self.options.node, before) or concerns(self.options.node, after):
            self.trigger()

    def _on_watch_error(self, exc: KubeError, attempt: int, delay: float) -> None:
        self.metrics.api_error(exc.reason)
        self._problems["watch"] = f"watching USBDevices failed: {exc.message}"
        log.warning("watching USBDevices failed (attempt %d, next in %.1fs): %s", attempt, delay,
                    exc.message, extra={**self._extra, "reason": exc.reason})

    def _on_heartbeat(self, exc: KubeError | None) -> None:
        if exc is None:
            self.metrics.heartbeats.inc()
            self._problems.pop("heartbeat", None)
        else:
            self.metrics.api_error(exc.reason)
            self._problems["heartbeat"] = f"renewing the Lease failed: {exc.message}"

    # ---- loops --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled."""
        loops = {"informer": self.informer.run(), "heartbeat": self.heartbeat.run(),
                 "events": self._pump(), "publish": self._publish_loop()}
        self._tasks = {name: asyncio.create_task(coro, name=f"agent-{name}")
                       for name, coro in loops.items()}
        try:
            await asyncio.gather(*self._tasks.values())
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _pump(self) -> None:
        try:
            async for event in self.events.events():
                if is_usb_event(event):
                    self.trigger()
        except Exception as exc:  # no netlink, no libudev, or a bug: periodic rescans remain
            log.warning("no hot-plug events (%s: %s); rescanning every %.0fs",
                        type(exc).__name__, exc, self.options.rescan_interval, extra=self._extra)

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.cache.synced:
                await self._wake.wait()
                self._wake.clear()
                continue
            delay = next_run(self._schedule, quiet=self.options.quiet,
                             max_delay=self.options.max_delay) - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):  # not wait_for: see kubevirt_usb.tasks
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._wake.clear()
                continue
            await self.publish_once()

    async def publish_once(self) -> None:
        """Scan and publish now; failures are logged and scheduled for a retry."""
        loop = asyncio.get_running_loop()
        self._schedule = starting(self._schedule)
        try:
            result = await self._scan_and_publish()
        except KubeError as exc:
            self._failed(exc.reason, exc.message, exc)
            return
        except sysfs.SysfsUnreadable as exc:
            self._failed("SysfsUnreadable", str(exc), None)
            return
        except Exception as exc:  # a bug must not stop the agent; it is logged with its trace
            log.exception("publishing failed unexpectedly", extra=self._extra)
            self._failed(type(exc).__name__, str(exc), None)
            return
        self._failures = 0
        self._problems.pop("publish", None)
        self.published += 1
        self.last_result = result
        self.metrics.set_devices(state_counts(self.options.node, self.cache.objects))
        due_at = None
        if result.plan.next_due is not None:
            due_at = loop.time() + max(0.0, (result.plan.next_due - self.clock()).total_seconds())
        self._schedule = after_success(self._schedule, now=loop.time(),
                                       interval=self.options.rescan_interval, due_at=due_at)
        if not result.converged or result.plan.waiting:
            self._followups += 1
            delay = min(backoff_delay(self._followups, policy=self.options.backoff,
                                      rand=self.rand), self.options.rescan_interval)
            self._schedule = after_success(self._schedule, now=loop.time(), interval=delay,
                                           due_at=due_at)
        else:
            self._followups = 0

    async def _scan_and_publish(self) -> PublishResult:
        started = time.perf_counter()
        scan = await asyncio.to_thread(sysfs.scan, sysfs_root=self.options.sysfs_root,
                                       usb_ids=self.options.usb_ids, read_file=self.read_file)
        self.metrics.scan_duration.observe(time.perf_counter() - started)
        if scan.skipped != self._skipped:
            for skipped in scan.skipped:
                log.info("not published: %s", skipped.reason,
                         extra={**self._extra, "port": skipped.port_path})
            if scan.skipped:
                self.trigger()  # look again once the device has settled
            self._skipped = scan.skipped
        return await self.publisher.publish(
            scan.devices, now=self.clock(), unsure_ports=[s.port_path for s in scan.skipped])

    def _failed(self, reason: str, message: str, exc: KubeError | None) -> None:
        loop = asyncio.get_running_loop()
        self._failures += 1
        if exc is not None:
            self.metrics.api_error(reason)
        decision = decide(exc, attempt=self._failures, policy=self.options.backoff,
                          rand=self.rand) if exc is not None else None
        delay = decision.after if isinstance(decision, Retry) else backoff_delay(
            self._failures, policy=self.options.backoff, rand=self.rand)
        self._problems["publish"] = f"publishing failed: {message}"
        log.warning("publishing failed (attempt %d, next in %.1fs): %s", self._failures, delay,
                    message, extra={**self._extra, "reason": reason})
        self._schedule = after_failure(self._schedule, retry_at=loop.time() + delay)
