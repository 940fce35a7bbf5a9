"""The node agent's data path: every USBDevice bound on this node (`spec.claimRef` set,
`status.node` this node) is streamed into the claimed VM by one asyncio task, for as long as the
binding lasts.

A device's task runs attempts (`redirect.session`: lock, check, open, VM slot, stream) through its
own engine worker, and after each one waits for what can make the next one succeed: a jittered
exponential backoff for transient trouble, the VMI changing for VM-side refusals, the port
changing for a missing or different device (`redirect.outcome.decide`). It reports to the
attachment's status (server-side apply, field manager `kubevirt-usb-agent`; bounded: phase
changes at once, byte counters at most every `counter_interval` seconds) and to Prometheus.
Setting the claimRef to null, or binding the device elsewhere, stops the task: the device is
given back to its node and the VM slot freed within a second.

`python -m kubevirt_usb.agent.streaming --node NODE [--kubeconfig FILE]` runs this part alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from kubevirt_usb.agent import localpath
from kubevirt_usb.agent.localpath import LauncherObjects, LocalPathSettings
from kubevirt_usb.clock import WallClock, rfc3339, utc_now
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import Gone, KubeError, NotFound
from kubevirt_usb.kube.resources import (
    Pod,
    USBAttachment,
    USBDevice,
    VirtualMachine,
    VirtualMachineInstance,
)
from kubevirt_usb.redirect import checks, outcome, status
from kubevirt_usb.redirect.checks import BoundDevice
from kubevirt_usb.redirect.engine import Engine, EngineError
from kubevirt_usb.redirect.localpath import Dialed
from kubevirt_usb.redirect.lock import DEFAULT_DIRECTORY, DeviceLock
from kubevirt_usb.redirect.metrics import StreamMetrics
from kubevirt_usb.redirect.outcome import Cause, Outcome, Wait
from kubevirt_usb.redirect.pathchoice import CREATED_BY, Choice
from kubevirt_usb.redirect.session import Attempt, LocalDial, ReadPort, run_attempt, sysfs_reader
from kubevirt_usb.redirect.status import StreamStatus
from kubevirt_usb.stream.endpoint import APIEndpoint
from kubevirt_usb.usb.model import IDENTITY_TIERS, DeviceIdentity

log = logging.getLogger(__name__)

FIELD_MANAGER = status.FIELD_MANAGER
STOP_TIMEOUT = 1.0
"""Seconds an unbound stream may take to give back the device and the slot."""
STABLE_SECONDS = 10.0
"""A stream that kept the device this long resets the backoff."""
LINGER = 30.0
"""Seconds the idle engine workers of ended streams are kept (beyond one) for bindings that come
back."""
VMI_RECHECK = 60.0
"""Longest wait for a VMI change before trying again anyway."""

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]




# ----------------------------------------------------------------------------- bindings


@dataclass(frozen=True, kw_only=True)
class Binding:
    """A device of this node bound to an attachment: what its stream needs to know."""

    device: BoundDevice
    namespace: str
    attachment: str
    vm: str

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.namespace, self.attachment, self.device.name)

    @property
    def owner(self) -> str:
        return f"USBAttachment {self.namespace}/{self.attachment} -> VM {self.namespace}/{self.vm}"

    def context(self) -> outcome.Context:
        return outcome.Context(device=self.device.describe(), node=self.device.node,
                               port_path=self.device.port_path, namespace=self.namespace,
                               vm=self.vm)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def binding_of(obj: Mapping[str, Any], *, node: str) -> Binding | None:
    """The binding a USBDevice object describes, if it is bound and published by `node`."""
    name = _text((obj.get("metadata") or {}).get("name"))
    claim = (obj.get("spec") or {}).get("claimRef") or {}
    st = obj.get("status") or {}
    identity = st.get("identity") or {}
    if not isinstance(claim, Mapping) or not isinstance(st, Mapping) or st.get("node") != node:
        return None
    namespace, attachment, vm = (_text(claim.get(k)) for k in ("namespace", "attachment", "vm"))
    port, vid, pid = (_text(st.get(k)) for k in ("portPath", "vendorId", "productId"))
    tier, key = (identity.get("tier"), _text(identity.get("key"))) if isinstance(
        identity, Mapping) else (None, None)
    if not (name and namespace and attachment and vm and port and vid and pid and key):
        return None
    if tier not in IDENTITY_TIERS:
        return None
    device = BoundDevice(name=name, node=node, port_path=port,
                         identity=DeviceIdentity(tier, key), vendor_id=vid, product_id=pid,
                         serial=_text(st.get("serial")))
    return Binding(device=device, namespace=namespace, attachment=attachment, vm=vm)


def bindings_for_node(objects: Iterable[Mapping[str, Any]], *, node: str) -> dict[str, Binding]:
    """Device name -> binding, for every USBDevice bound on `node`."""
    found = (binding_of(obj, node=node) for obj in objects)
    return {b.device.name: b for b in found if b is not None}


def vmi_ready(vmi: Mapping[str, Any] | None) -> bool:
    """Whether a VMI looks streamable: running, with `clientPassthrough`, not s390x."""
    if not vmi:
        return False
    spec = vmi.get("spec") or {}
    devices = (spec.get("domain") or {}).get("devices") or {}
    return (devices.get("clientPassthrough") is not None and spec.get("architecture") != "s390x"
            and (vmi.get("status") or {}).get("phase") == "Running")


# ----------------------------------------------------------------------------- seams


class Kube(Protocol):
    """What a stream asks the Kubernetes API."""

    async def vm_exists(self, namespace: str, name: str) -> bool | None:
        """Whether the VirtualMachine exists (None: cannot tell now)."""
        ...

    async def wait_vmi_ready(self, namespace: str, name: str, *, timeout: float) -> bool:
        """Wait until the VMI looks streamable (True), or `timeout` (False). KubeError when the
        API cannot be asked."""
        ...

    async def attachment_status(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The attachment's status ({} without one); None when the attachment does not exist."""
        ...

    async def apply_status(self, body: Mapping[str, Any]) -> None:
        """Server-side apply of the attachment's status (forced); NotFound without it."""
        ...

    async def launcher_objects(self, namespace: str, vm: str) -> LauncherObjects:
        """The VMI (None without one) and the pods labelled `kubevirt.io/created-by=<its uid>`
        (for the node-local path). KubeError when the API cannot be asked."""
        ...


class Streamer(Protocol):
    """One device's way to the VM: attempts, and waiting for its port to change."""

    async def attempt(self, *, on_locked: Callable[[], None], on_attached: Callable[[], None],
                      on_progress: Callable[[int, int], None],
                      on_path: Callable[[Choice], None]) -> Outcome: ...

    async def wait_port_change(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(kw_only=True)
class StreamOptions:
    """Timings and sources of randomness and time, shared by every stream."""

    counter_interval: float = 5.0
    port_poll: float = 0.25
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    wall_clock: WallClock = utc_now
    rand: Callable[[], float] = random.random


# ----------------------------------------------------------------------------- the real streamer


class EngineStreamer:
    """Streams through an engine worker of its own, holding the port's lock meanwhile."""

    def __init__(self, binding: Binding, *, endpoint: Callable[[], APIEndpoint], kube: Kube,
                 lock_dir: Path, sysfs_root: Path, devfs_root: Path,
                 spawn: Callable[[], Awaitable[Engine]], options: StreamOptions,
                 release: Callable[[Engine], Awaitable[None]] | None = None,
                 local: LocalDial | None = None) -> None:
        self.binding = binding
        self._local = local
        self._release = release
        self._endpoint = endpoint
        self._kube = kube
        self._lock = DeviceLock(directory=lock_dir, port_path=binding.device.port_path)
        self._read_port: ReadPort = sysfs_reader(sysfs_root)
        self._sysfs_root = sysfs_root
        self._devfs_root = devfs_root
        self._spawn = spawn
        self._options = options
        self._engine: Engine | None = None

    async def attempt(self, *, on_locked: Callable[[], None], on_attached: Callable[[], None],
                      on_progress: Callable[[int, int], None],
                      on_path: Callable[[Choice], None]) -> Outcome:
        if self._engine is None or not self._engine.alive:
            await self._stop_engine()
            try:
                self._engine = await self._spawn()
            except EngineError as exc:
                return Outcome(cause=Cause.ENGINE_FAILED, detail=str(exc))
        binding = self.binding

        async def vm_exists() -> bool | None:
            return await self._kube.vm_exists(binding.namespace, binding.vm)

        result = await run_attempt(Attempt(
            device=binding.device, namespace=binding.namespace, vm=binding.vm,
            owner=binding.owner, lock=self._lock, engine=self._engine,
            endpoint=self._endpoint, read_port=self._read_port, vm_exists=vm_exists,
            sysfs_root=str(self._sysfs_root), devfs_root=str(self._devfs_root),
            local=self._local,
        ), on_locked=on_locked, on_attached=on_attached, on_progress=on_progress,
            on_path=on_path)
        if result.cause is Cause.ENGINE_FAILED:
            await self._stop_engine()
        return result

    async def wait_port_change(self) -> None:
        device = self.binding.device
        first = checks.check_port(device, self._read_port(device.port_path))
        while checks.check_port(device, self._read_port(device.port_path)) == first:
            await self._options.sleep(self._options.port_poll)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        try:
            if engine is not None and self._release is not None:
                await self._release(engine)
            elif engine is not None:
                await engine.stop()
        finally:
            self._lock.release()

    async def _stop_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.stop()


class EnginePool:
    """Keeps one engine worker ready ahead of need: starting a Python process takes seconds on
    small or emulated nodes, and a new binding should not wait for it. Workers of ended streams
    are reused when idle and healthy; a replacement is started a little later, so that starting it
    does not compete with the stream that just took the ready one.

    Bindings often end together and come back together (a USBPolicy revoked and granted again,
    a VM restarted, attachments recreated): every idle, healthy worker given back is kept, so the
    bindings that come back find one each instead of waiting for new ones (on an emulated node
    busy streaming, a new worker took 13-31 s). Those beyond one are stopped once no worker has
    been given back for `linger` seconds."""

    def __init__(self, spawn: Callable[[], Awaitable[Engine]], *,
                 refill_delay: float = 5.0, linger: float = LINGER) -> None:
        self._spawn = spawn
        self._refill_delay = refill_delay
        self._linger = linger
        self._idle: list[Engine] = []
        self._spawning: asyncio.Future[Engine] | None = None
        self._refill: asyncio.TimerHandle | None = None
        self._trim: asyncio.TimerHandle | None = None
        self._giving: set[asyncio.Future[None]] = set()

    def warm(self) -> None:
        """Start a worker now unless one is ready or starting."""
        if not self._idle and self._spawning is None:
            self._spawning = asyncio.ensure_future(self._spawn())
            self._spawning.add_done_callback(_report_spare)

    async def take(self) -> Engine:
        """A ready worker: an idle one, else the one starting (or a new one)."""
        while self._idle:
            engine = self._idle.pop()
            if engine.alive and not engine.in_session:
                self._refill_later()
                return engine
            await engine.stop()
        self.warm()
        spawning, self._spawning = self._spawning, None
        assert spawning is not None
        try:
            engine = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            self._keep(spawning)
            raise
        self._refill_later()
        if engine.alive:
            return engine
        await engine.stop()
        return await self._spawn()

    def _keep(self, spawning: asyncio.Future[Engine]) -> None:
        """The binding ended while its worker started: the worker becomes the next spare (or is
        stopped if there is one already), never lost."""
        if self._spawning is None:
            self._spawning = spawning
            return

        def done(future: asyncio.Future[Engine]) -> None:
            if not future.cancelled() and future.exception() is None:
                giving = asyncio.ensure_future(self.give_back(future.result()))
                self._giving.add(giving)
                giving.add_done_callback(self._giving.discard)

        spawning.add_done_callback(done)

    def _refill_later(self) -> None:
        if self._refill is None or self._refill.cancelled():
            self._refill = asyncio.get_running_loop().call_later(self._refill_delay, self._rewarm)

    def _rewarm(self) -> None:
        self._refill = None
        self.warm()

    async def give_back(self, engine: Engine) -> None:
        """Keep an idle, healthy worker for the next binding; stop anything else."""
        if engine.alive and not engine.in_session:
            self._idle.append(engine)
            self._trim_later()
            return
        await engine.stop()

    def _trim_later(self) -> None:
        """Stop the idle workers beyond one `linger` seconds from now (each worker given back
        starts the wait again)."""
        if self._trim is not None:
            self._trim.cancel()
        self._trim = asyncio.get_running_loop().call_later(self._linger, self._trim_idle)

    def _trim_idle(self) -> None:
        self._trim = None
        surplus, self._idle = self._idle[:-1], self._idle[-1:]
        for engine in surplus:
            stopping = asyncio.ensure_future(engine.stop())
            self._giving.add(stopping)
            stopping.add_done_callback(self._giving.discard)

    async def close(self) -> None:
        if self._refill is not None:
            self._refill.cancel()
        if self._trim is not None:
            self._trim.cancel()
        await asyncio.gather(*self._giving, return_exceptions=True)
        idle, self._idle = self._idle, []
        for engine in idle:
            await engine.stop()
        spawning, self._spawning = self._spawning, None
        if spawning is not None:
            spawning.cancel()
            with contextlib.suppress(asyncio.CancelledError, EngineError):
                await (await spawning).stop()


def _report_spare(future: asyncio.Future[Engine]) -> None:
    if future.cancelled():
        return
    if future.exception() is not None:
        log.warning("cannot start an engine worker: %s", future.exception())
        return
    engine = future.result()
    log.info("engine worker %d ready (libusb %s)", engine.pid, engine.libusb_version)


# ----------------------------------------------------------------------------- status reporting


class StatusReporter:
    """Writes one attachment's status: changes of phase or condition at once, counters at most
    every `interval` seconds. A missing attachment is logged once; streaming goes on."""

    def __init__(self, kube: Kube, binding: Binding, *, options: StreamOptions) -> None:
        self._kube = kube
        self._binding = binding
        self._options = options
        self._latest: StreamStatus | None = None
        self._written: StreamStatus | None = None
        self._wake = asyncio.Event()
        self._missing_logged = False
        self.writes = 0

    def set(self, current: StreamStatus) -> None:
        self._latest = current
        self._wake.set()

    async def run(self) -> None:
        last_write = -float("inf")
        while True:
            await self._wake.wait()
            latest = self._latest
            if latest is None:
                self._wake.clear()
                continue
            if self._written is not None and status.only_counters_changed(self._written, latest):
                due = last_write + self._options.counter_interval - self._options.clock()
                if due > 0:
                    await self._options.sleep(due)
                    latest = self._latest or latest
            self._wake.clear()
            if latest == self._written:
                continue
            if await self._write(latest):
                self._written = latest
                last_write = self._options.clock()
            else:
                await self._options.sleep(self._options.counter_interval)
                self._wake.set()

    async def _write(self, current: StreamStatus) -> bool:
        b = self._binding
        body = status.apply_object(namespace=b.namespace, name=b.attachment, status=current)
        try:
            await self._kube.apply_status(body)
        except NotFound:
            if not self._missing_logged:
                self._missing_logged = True
                log.warning("USBAttachment %s/%s does not exist: streaming %s without "
                            "reporting status", b.namespace, b.attachment, b.device.name)
            return False
        except KubeError as exc:
            log.warning("cannot write the status of USBAttachment %s/%s: %s", b.namespace,
                        b.attachment, exc)
            return False
        self.writes += 1
        return True

    async def flush(self) -> None:
        """Write the latest status now if it was not written (on the way out)."""
        if self._latest is not None and self._latest != self._written:
            with contextlib.suppress(KubeError):
                if await self._write(self._latest):
                    self._written = self._latest


# ----------------------------------------------------------------------------- one device


class DeviceStream:
    """The task of one binding: attempts, waits, status and metrics, until cancelled."""

    def __init__(self, binding: Binding, *, streamer: Streamer, kube: Kube,
                 metrics: StreamMetrics, options: StreamOptions) -> None:
        self.binding = binding
        self._streamer = streamer
        self._kube = kube
        self._metrics = metrics
        self._options = options
        self.reporter = StatusReporter(kube, binding, options=options)
        self.status = StreamStatus()
        self._attached = False
        self._had_device = False
        self.closing = False
        """True once the task gives back what it holds (it must not be cancelled then)."""
        self.unbound = False
        """Set before the task is cancelled because its binding ended or changed: on its way out
        it removes the running stream's fields from the attachment's status."""

    def _now(self) -> str:
        return rfc3339(self._options.wall_clock())

    def _set(self, current: StreamStatus) -> None:
        self.status = current
        self.reporter.set(current)

    async def run(self) -> None:
        reporter = asyncio.create_task(self.reporter.run())
        try:
            await self._seed()
            await self._loop()
        finally:
            self.closing = True
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            if self._attached:
                self._metrics.active.dec()
            await self._streamer.close()
            self._metrics.forget(self.binding.labels)
            if self.unbound:
                await self._release()

    async def _release(self) -> None:
        """Record the end of the binding's stream, unless the attachment is gone or another node
        streams it now (a binding moved: that node's agent writes its own stream's fields)."""
        b = self.binding
        try:
            existing = await self._kube.attachment_status(b.namespace, b.attachment)
            if existing is None or existing.get("node") not in (None, b.device.node):
                return
            await self._kube.apply_status(status.released_object(
                namespace=b.namespace, name=b.attachment, status=self.status, now=self._now()))
        except NotFound:
            return  # detached: the attachment went away meanwhile
        except KubeError as exc:
            log.warning("cannot record the end of the stream of USBAttachment %s/%s: %s",
                        b.namespace, b.attachment, exc)

    async def _seed(self) -> None:
        b = self.binding
        try:
            existing = await self._kube.attachment_status(b.namespace, b.attachment)
        except KubeError:
            existing = None
        self.status = status.seeded(existing, now=self._now())

    async def _loop(self) -> None:
        repeats: dict[Wait, int] = {}
        ctx = self.binding.context()
        connecting = (f"Opening {ctx.device} on node {ctx.node} and connecting it to "
                      f"{ctx.vm_ref}.")
        while True:
            result = await self._streamer.attempt(
                on_locked=lambda: self._set(status.connecting(self.status, now=self._now(),
                                                              message=connecting)),
                on_attached=self._attach_timer(), on_progress=self._progress_counter(),
                on_path=self._on_path)
            if self._attached:
                self._attached = False
                self._metrics.active.dec()
            decision = outcome.decide(result, ctx)
            self._metrics.failures.labels(result.cause.value).inc()
            failures = _repeated(repeats, decision.wait,
                                 stable=result.attached_seconds >= STABLE_SECONDS)
            if result.holder == self.binding.owner:
                # Another agent on this node (a DaemonSet rollout overlap) streams this very
                # binding: it reports; this one waits quietly for the lock.
                await self._wait(Wait.BACKOFF, failures)
                continue
            self._set(status.ended(self.status, decision=decision, outcome=result,
                                   now=self._now()))
            log.info("%s: %s", self.binding.device.name, decision.message,
                     extra={"device": self.binding.device.name, "reason": decision.reason.value})
            await self._wait(decision.wait, failures)

    def _on_path(self, choice: Choice) -> None:
        """The attempt under way takes this path (Local or API), for this reason."""
        self._metrics.path_chosen(self.binding.labels, path=choice.kind.value,
                                  reason=choice.reason.value)
        if (self.status.path, self.status.path_reason) != (choice.kind.value,
                                                           choice.reason.value):
            log.info("%s: %s path (%s): %s", self.binding.device.name, choice.kind.value,
                     choice.reason.value, choice.message,
                     extra={"device": self.binding.device.name, "reason": choice.reason.value})
        self._set(status.path_chosen(self.status, choice))

    def _attach_timer(self) -> Callable[[], None]:
        started = self._options.clock()
        return lambda: self._on_attached(started)

    def _on_attached(self, started: float) -> None:
        ctx = self.binding.context()
        self._attached = True
        self._metrics.active.inc()
        self._metrics.connect_seconds.observe(self._options.clock() - started)
        if self._had_device:
            self._metrics.reconnects.labels(*self.binding.labels).inc()
        self._set(status.attached(self.status, now=self._now(), reconnect=self._had_device,
                                  message=(f"Streaming {ctx.device} from node {ctx.node} port "
                                           f"{ctx.port_path} into {ctx.vm_ref}.")))
        self._had_device = True

    def _progress_counter(self) -> Callable[[int, int], None]:
        seen = [0, 0]

        def progress(to_vm: int, from_vm: int) -> None:
            more_to, more_from = to_vm - seen[0], from_vm - seen[1]
            if more_to <= 0 and more_from <= 0:
                return
            seen[:] = [to_vm, from_vm]
            self._metrics.streamed(self.binding.labels, to_vm=more_to, from_vm=more_from)
            self._set(status.counted(self.status, to_vm=more_to, from_vm=more_from))

        return progress

    async def _wait(self, wait: Wait, failures: int) -> None:
        if wait is Wait.DEVICE_CHANGE:
            await self._streamer.wait_port_change()
            return
        if wait is Wait.VMI_CHANGE:
            b = self.binding
            try:
                if not await self._kube.wait_vmi_ready(b.namespace, b.vm, timeout=VMI_RECHECK):
                    return
            except KubeError:
                pass
        delay = outcome.backoff_delay(attempt=failures, jitter=self._options.rand(), wait=wait)
        await self._options.sleep(delay)


def _repeated(repeats: dict[Wait, int], wait: Wait, *, stable: bool) -> int:
    """How many failures in a row waited this way (1 = the first): the backoff grows with the
    repeats of its own kind only, so that the transient failures of an API outage do not make
    the first slow wait after it (a device still in use, for a moment) minutes long. A stream
    that kept the device `STABLE_SECONDS` starts every count again."""
    if stable:
        repeats.clear()
    repeats[wait] = repeats.get(wait, 0) + 1
    return repeats[wait]


# ----------------------------------------------------------------------------- the supervisor


StreamFactory = Callable[[Binding], DeviceStream]


@dataclass
class _Running:
    stream: DeviceStream
    task: asyncio.Task[None]


@dataclass
class Supervisor:
    """Keeps exactly one stream task per binding of this node."""

    make_stream: StreamFactory
    stop_timeout: float = STOP_TIMEOUT
    running: dict[str, _Running] = field(default_factory=dict)
    stopping: set[asyncio.Task[None]] = field(default_factory=set)
    """Streams of ended bindings that did not stop at the first cancellation."""

    async def update(self, bindings: Mapping[str, Binding]) -> None:
        """Stop the streams whose binding ended or changed, start the new ones."""
        for name in [n for n, r in self.running.items() if bindings.get(n) != r.stream.binding]:
            await self._stop(name)
        for name, binding in bindings.items():
            if name not in self.running:
                stream = self.make_stream(binding)
                task = asyncio.create_task(stream.run(), name=f"stream {name}")
                task.add_done_callback(self._finished)
                self.running[name] = _Running(stream, task)
                log.info("streaming %s to %s", name, binding.owner, extra={"device": name})

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the stream task %s failed", task.get_name(), exc_info=task.exception())

    async def _stop(self, name: str, *, unbound: bool = True) -> None:
        running = self.running.pop(name)
        running.stream.unbound = unbound
        running.task.cancel()
        done, _ = await asyncio.wait({running.task}, timeout=self.stop_timeout)
        if done:
            log.info("stopped streaming %s", name, extra={"device": name})
            return
        # Still running: it is giving back the device slowly, or a cancellation was lost on its
        # way (its worker answered at that very moment). It is never forgotten: cancelled again
        # until it ended, its lock released and its worker stopped.
        log.warning("the stream of %s did not stop within %.1f s: stopping it again", name,
                    self.stop_timeout, extra={"device": name})
        reaper = asyncio.create_task(self._reap(name, running), name=f"stopping {name}")
        self.stopping.add(reaper)
        reaper.add_done_callback(self.stopping.discard)

    async def _reap(self, name: str, running: _Running) -> None:
        task = running.task
        while not task.done():
            if not running.stream.closing:  # not while it gives back the worker and the lock
                task.cancel()
            await asyncio.wait({task}, timeout=self.stop_timeout)
        log.info("stopped streaming %s", name, extra={"device": name})

    async def close(self) -> None:
        for name in list(self.running):
            await self._stop(name, unbound=False)  # the agent stops; the bindings stand
        while self.stopping:
            await asyncio.wait(set(self.stopping))

    def statuses(self) -> dict[str, StreamStatus]:
        return {name: r.stream.status for name, r in self.running.items()}


# ----------------------------------------------------------------------------- Kubernetes


class KubeAdapter:
    """`Kube` over the project's Kubernetes client."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def vm_exists(self, namespace: str, name: str) -> bool | None:
        try:
            await self.client.get(VirtualMachine, name, namespace=namespace)
        except NotFound:
            return False
        except KubeError:
            return None
        return True

    async def wait_vmi_ready(self, namespace: str, name: str, *, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await self._follow_vmi(namespace, name)
        except TimeoutError:
            return False

    async def _follow_vmi(self, namespace: str, name: str) -> bool:
        while True:
            listed = await self.client.list(VirtualMachineInstance, namespace=namespace)
            current = next((o for o in listed.items
                            if (o.get("metadata") or {}).get("name") == name), None)
            if vmi_ready(current):
                return True
            try:
                async for event in self.client.watch(VirtualMachineInstance, namespace=namespace,
                                                      resource_version=listed.resource_version):
                    if (event.object.get("metadata") or {}).get("name") != name:
                        continue
                    if event.type != "DELETED" and vmi_ready(event.object):
                        return True
            except Gone:
                continue

    async def attachment_status(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            obj = await self.client.get(USBAttachment, name, namespace=namespace)
        except NotFound:
            return None
        found = obj.get("status")
        return found if isinstance(found, Mapping) else {}

    async def apply_status(self, body: Mapping[str, Any]) -> None:
        await self.client.apply(USBAttachment.Status, dict(body), force=True)

    async def launcher_objects(self, namespace: str, vm: str) -> LauncherObjects:
        try:
            vmi = await self.client.get(VirtualMachineInstance, vm, namespace=namespace)
        except NotFound:
            return None, []
        uid = (vmi.get("metadata") or {}).get("uid")
        if not uid:
            return vmi, []
        pods = await self.client.list(Pod, namespace=namespace, labels={CREATED_BY: str(uid)})
        return vmi, list(pods.items)


async def follow_bindings(client: KubeClient, *, node: str,
                          on_bindings: Callable[[dict[str, Binding]], Awaitable[None]],
                          options: StreamOptions | None = None) -> None:
    """List and watch USBDevice objects forever, telling `on_bindings` this node's bindings
    whenever they may have changed. Streams keep running while the API cannot be reached."""
    opts = options or StreamOptions()
    failures = 0
    while True:
        try:
            listed = await client.list(USBDevice)
            objects = {str((o.get("metadata") or {}).get("name")): o for o in listed.items}
            await on_bindings(bindings_for_node(objects.values(), node=node))
            failures = 0
            async for event in client.watch(USBDevice, resource_version=listed.resource_version):
                name = str((event.object.get("metadata") or {}).get("name"))
                if event.type == "DELETED":
                    objects.pop(name, None)
                elif event.type in ("ADDED", "MODIFIED"):
                    objects[name] = event.object
                else:
                    continue
                await on_bindings(bindings_for_node(objects.values(), node=node))
        except Gone:
            continue
        except KubeError as exc:
            failures += 1
            delay = outcome.backoff_delay(attempt=failures, jitter=opts.rand(),
                                          wait=Wait.BACKOFF)
            log.warning("watching USBDevices failed (%s); again in %.1f s", exc, delay)
            await opts.sleep(delay)


# ----------------------------------------------------------------------------- running it


@dataclass(kw_only=True)
class StreamingConfig:
    """Where this node's streams run and what they use."""

    node: str
    endpoint: Callable[[], APIEndpoint]
    lock_dir: Path = DEFAULT_DIRECTORY
    sysfs_root: Path = Path("/sys")
    devfs_root: Path = Path("/dev")
    spawn: Callable[[], Awaitable[Engine]] = Engine.spawn
    release: Callable[[Engine], Awaitable[None]] | None = None
    """Where a stream's idle worker goes when the stream ends (None: it is stopped)."""
    options: StreamOptions = field(default_factory=StreamOptions)
    local_path: LocalPathSettings = field(default_factory=LocalPathSettings)


def stream_factory(config: StreamingConfig, *, kube: Kube,
                   metrics: StreamMetrics) -> StreamFactory:
    """Makes the real stream of a binding (engine worker, lock, sysfs)."""

    def make(binding: Binding) -> DeviceStream:
        async def local() -> Dialed:
            return await localpath.dial(node=config.node, settings=config.local_path,
                                        look_up=kube.launcher_objects,
                                        namespace=binding.namespace, vm=binding.vm)

        streamer = EngineStreamer(binding, endpoint=config.endpoint, kube=kube,
                                  lock_dir=config.lock_dir, sysfs_root=config.sysfs_root,
                                  devfs_root=config.devfs_root, spawn=config.spawn,
                                  options=config.options, release=config.release, local=local)
        return DeviceStream(binding, streamer=streamer, kube=kube, metrics=metrics,
                            options=config.options)

    return make


async def run_streaming(config: StreamingConfig, *, client: KubeClient,
                        metrics: StreamMetrics) -> None:
    """Stream this node's bound devices until cancelled; then stop every stream."""
    kube = KubeAdapter(client)
    pool = EnginePool(config.spawn)
    pool.warm()
    pooled = dataclasses.replace(config, spawn=pool.take, release=pool.give_back)
    supervisor = Supervisor(make_stream=stream_factory(pooled, kube=kube, metrics=metrics))
    try:
        await follow_bindings(client, node=config.node, on_bindings=supervisor.update,
                              options=config.options)
    finally:
        await asyncio.shield(supervisor.close())
        await asyncio.shield(pool.close())


def stream_endpoint(*, kubeconfig: Path | None, context: str | None = None,
                    environ: Mapping[str, str]) -> APIEndpoint:
    """Where the streams' websockets go: the kubeconfig when given, else the pod's service
    account when in a cluster, else $KUBECONFIG or ~/.kube/config (as `kube.config` decides)."""
    from kubevirt_usb.stream.endpoint import EndpointError, in_cluster, load_kubeconfig

    if kubeconfig is None and context is None:
        with contextlib.suppress(EndpointError):
            return in_cluster(environ=environ)
    path = kubeconfig or Path(environ.get("KUBECONFIG") or "~/.kube/config").expanduser()
    return load_kubeconfig(path, context=context)


def start_streaming(*, node: str, client: KubeClient, endpoint: APIEndpoint,
                    registry: CollectorRegistry | None = None,
                    sysfs_root: Path = Path("/sys"),
                    local_path: LocalPathSettings | None = None) -> asyncio.Task[None]:
    """Stream this node's bound devices in the background (for `kubevirt-usb agent`): the task
    to cancel on the way out; its metrics go into `registry` (a prometheus CollectorRegistry)."""
    config = StreamingConfig(node=node, endpoint=lambda: endpoint, sysfs_root=sysfs_root,
                             local_path=local_path or LocalPathSettings())
    return asyncio.create_task(run_streaming(config, client=client,
                                             metrics=StreamMetrics(registry)),
                               name="streaming")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kubevirt_usb.agent.streaming",
                                     description="Stream this node's bound USB devices.")
    parser.add_argument("--node", default=os.environ.get("NODE_NAME") or os.uname().nodename)
    parser.add_argument("--kubeconfig", type=Path)
    parser.add_argument("--lock-dir", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--sysfs", type=Path, default=Path("/sys"))
    parser.add_argument("--devfs", type=Path, default=Path("/dev"))
    parser.add_argument("--no-local-path", dest="local_path", action="store_false",
                        help="always stream through the API server")
    parser.add_argument("--host-proc", type=Path, default=Path("/proc"),
                        help="the host's /proc (for the node-local path)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus metrics on this port (0: do not)")
    parser.add_argument("--log-level", default="INFO")
    return parser


async def _main(args: argparse.Namespace) -> None:
    import signal

    from prometheus_client import start_http_server

    from kubevirt_usb.kube.client import connect
    from kubevirt_usb.kube.config import load_config

    endpoint = stream_endpoint(kubeconfig=args.kubeconfig, environ=os.environ)
    client = connect(load_config(kubeconfig=args.kubeconfig), field_manager=FIELD_MANAGER)
    metrics = StreamMetrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=metrics.registry)
    config = StreamingConfig(node=args.node, endpoint=lambda: endpoint, lock_dir=args.lock_dir,
                             sysfs_root=args.sysfs, devfs_root=args.devfs,
                             local_path=LocalPathSettings(enabled=args.local_path,
                                                          host_proc=args.host_proc))
    task = asyncio.create_task(run_streaming(config, client=client, metrics=metrics))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    log.info("streaming the devices bound on node %s", args.node)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
