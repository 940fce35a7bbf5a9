"""The controller at work: informers fill the `ClusterView`, its changes enqueue work keys, workers
decide (`decide`, `reachability`) and carry the plans out (`Executor`), and a timer notices
agent heartbeats that ran out. `run_elected` runs all of it only while this replica leads.

Nothing is decided before every informer has listed once; then every attachment and device is
reconciled once, and afterwards only what a change affects. Binds in flight are reserved in
memory (device and VM slot), so concurrent workers never pick the same device or overfill a VM;
the resourceVersion precondition on each claim keeps that true across replicas.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from lightkube import ALL_NS
from lightkube.resources.core_v1 import Namespace

from kubevirt_usb.clock import WallClock, rfc3339, utc_now
from kubevirt_usb.controller.cache import ClusterView, WorkKey
from kubevirt_usb.controller.decide import decide
from kubevirt_usb.controller.events import Event
from kubevirt_usb.controller.leader import LeaderElector
from kubevirt_usb.controller.model import Key, Obj
from kubevirt_usb.controller.reachability import device_plan
from kubevirt_usb.controller.reconciler import Executor, Outcome, Sinks
from kubevirt_usb.controller.recorder import EventRecorder
from kubevirt_usb.controller.workqueue import WorkQueue
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.kube.informer import Informer
from kubevirt_usb.kube.resources import (
    Lease,
    USBAttachment,
    USBDevice,
    USBPolicy,
    VirtualMachine,
    VirtualMachineInstance,
)

log = logging.getLogger(__name__)
Monotonic = Callable[[], float]



@dataclass(frozen=True, kw_only=True)
class ControllerOptions:
    """How the controller runs (see `settings.ControllerSettings` for the user's side)."""

    namespace: str = "kubevirt-usb"
    """Where the agents' heartbeat Leases and the election Lease live."""
    identity: str = "kubevirt-usb-controller"
    """This replica's name (Lease holder, Events' reportingInstance)."""
    agent_lease_prefix: str = "kubevirt-usb-agent-"
    election_lease: str = "kubevirt-usb-controller"
    workers: int = 8
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_exit: bool = True


class Controller:
    """One term of leadership: caches, queue and workers, until cancelled."""

    def __init__(self, client: KubeClient, options: ControllerOptions, *,
                 clock: Monotonic = time.monotonic, wall: WallClock = utc_now) -> None:
        self.client = client
        self.options = options
        self.clock = clock
        self.wall = wall
        self.view = ClusterView(lease_prefix=options.agent_lease_prefix, clock=clock)
        self.queue: WorkQueue[WorkKey] = WorkQueue()
        self.recorder = EventRecorder(client, instance=options.identity, wall=wall)
        self.synced = asyncio.Event()
        self.reserved_devices: dict[str, Key] = {}
        self.reserved_slots: dict[Key, set[str]] = defaultdict(set)
        self.reconciles = 0
        self.retries = 0
        self._timer: asyncio.TimerHandle | None = None
        self.informers = {
            "attachments": self._informer(USBAttachment, self.view.attachment_changed,
                                          namespace=ALL_NS),
            "devices": self._informer(USBDevice, self.view.device_changed),
            "policies": self._informer(USBPolicy, self.view.policy_changed),
            "vms": self._informer(VirtualMachine, self.view.vm_changed, namespace=ALL_NS),
            "vmis": self._informer(VirtualMachineInstance, self.view.vmi_changed,
                                   namespace=ALL_NS),
            "leases": self._informer(Lease, self._lease_changed, namespace=options.namespace),
            "namespaces": self._informer(Namespace, self.view.namespace_changed),
        }
        attachments, devices = self.informers["attachments"], self.informers["devices"]
        self.executor = Executor(client, Sinks(
            attachment=attachments.observe, attachment_gone=attachments.forget,
            device=devices.observe, device_gone=devices.forget, event=self.emit))

    def _informer(self, resource: type, handler: Callable[[Obj | None, Obj | None],
                                                          list[WorkKey]],
                  *, namespace: str | None = None) -> Informer:
        def on_change(old: Obj | None, new: Obj | None) -> None:
            keys = handler(old, new)
            if self.synced.is_set():
                self.queue.add_all(keys)
        return Informer(self.client, resource, on_change=on_change, namespace=namespace)

    def emit(self, event: Event) -> None:
        self.recorder.emit(event)

    # ---- heartbeats ------------------------------------------------------------------------

    def _lease_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        keys = self.view.lease_changed(old, new)
        self._arm_timer()
        return keys

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        expiry = self.view.next_expiry()
        if expiry is not None:
            delay = max(0.0, expiry - self.clock()) + 0.01
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        keys = self.view.refresh_reachability()
        if self.synced.is_set():
            self.queue.add_all(keys)
        self._arm_timer()

    # ---- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch, decide and write until cancelled."""
        tasks = [asyncio.ensure_future(i.run()) for i in self.informers.values()]
        self.recorder.start()
        try:
            waiting = [asyncio.ensure_future(i.synced.wait()) for i in self.informers.values()]
            await _first_failure(waiting, tasks)
            self.view.refresh_reachability()
            self.synced.set()
            self.queue.add_all(self.view.all_keys())
            log.info("controller %s synced: %d attachments, %d devices, %d policies",
                     self.options.identity, len(self.view.attachments),
                     len(self.view.devices), len(self.view.policies))
            workers = [asyncio.ensure_future(self._work()) for _ in range(self.options.workers)]
            await _first_failure(workers + tasks, [])
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self.queue.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.recorder.stop()

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                again = await self.reconcile(key)
            except KubeError as exc:
                delay = self.queue.retry(key)
                log.warning("reconciling %s failed (%s): again in %.2fs", "/".join(key[1:]),
                            exc.message, delay)
            except Exception:
                delay = self.queue.retry(key)
                log.exception("reconciling %s failed: again in %.2fs", "/".join(key[1:]), delay)
            else:
                if again:
                    self.retries += 1
                    self.queue.retry(key)
                else:
                    self.queue.forget(key)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: WorkKey) -> bool:
        """Reconcile one work key; True when it must be reconciled again."""
        self.reconciles += 1
        kind, namespace, name = key
        now_text = rfc3339(self.wall())
        if kind == "device":
            device = self.view.devices.get(name)
            if device is None or device.node is None:
                return False
            step = device_plan(device, self.view.heartbeats.get(device.node), now=self.clock(),
                               now_text=now_text,
                               lease=f"{self.options.namespace}/"
                               f"{self.options.agent_lease_prefix}{device.node}")
            if step is not None:
                await self.executor.mark_device(step)
            return False
        akey = (namespace, name)
        situation = self.view.situation(akey, reserved_devices=self.reserved_devices,
                                        reserved_slots=self.reserved_slots, now=now_text)
        plan = decide(situation)
        attachment = situation.attachment
        held = [b for b in plan.binds if b.device not in {d.name for d in situation.claims}]
        for bind in plan.binds:
            self.reserved_devices[bind.device] = akey
        if held and attachment is not None:
            self.reserved_slots[(namespace, attachment.vm)].add(name)
        try:
            outcome = await self.executor.run(akey, plan, attachment)
        finally:
            for bind in plan.binds:
                self.reserved_devices.pop(bind.device, None)
            if held and attachment is not None:
                self.reserved_slots[(namespace, attachment.vm)].discard(name)
        return outcome is Outcome.AGAIN


async def _first_failure(waiting: Collection[asyncio.Future[Any]],
                         watched: Collection[asyncio.Future[Any]]) -> None:
    """Wait for all of `waiting`; raise at once if any of them or of `watched` fails."""
    pending = {*waiting, *watched}
    remaining = set(waiting)
    while remaining:
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            remaining.discard(future)
            if future.cancelled():
                raise asyncio.CancelledError
            error = future.exception()
            if error is not None:
                raise error
            if future in watched:
                raise RuntimeError("a controller loop ended unexpectedly")


async def run_elected(client: KubeClient, options: ControllerOptions, *,
                      clock: Monotonic = time.monotonic, wall: WallClock = utc_now,
                      on_term: Callable[[Controller | None], None] | None = None) -> None:
    """Lead whenever elected: each term runs a fresh `Controller` (`on_term` sees it, and None
    when the term ends)."""
    elector = LeaderElector(client, namespace=options.namespace, name=options.election_lease,
                            identity=options.identity, lease_duration=options.lease_duration,
                            renew_deadline=options.renew_deadline,
                            retry_period=options.retry_period,
                            release_on_exit=options.release_on_exit, clock=clock, wall=wall)

    async def term() -> None:
        # The last term's controller (informers, caches, tasks) is garbage by now, in reference
        # cycles only a full collection frees; waiting for one, a leader losing its Lease at each
        # API outage grew by a term's worth of memory every time (docs/benchmarks.md, "Memory
        # over the run"). A collection per term is cheap beside a term's lists.
        gc.collect()
        controller = Controller(client, options, clock=clock, wall=wall)
        if on_term is not None:
            on_term(controller)
        try:
            await controller.run()
        finally:
            if on_term is not None:
                on_term(None)

    await elector.run(term)
