"""The agent's streaming side with its outside world replaced: bindings from USBDevice objects,
one task per binding, what each task waits for, the status it writes and the metrics it keeps."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from kubevirt_usb.agent.localpath import LauncherObjects
from kubevirt_usb.agent.streaming import (
    Binding,
    DeviceStream,
    EnginePool,
    KubeAdapter,
    StatusReporter,
    StreamOptions,
    Supervisor,
    binding_of,
    bindings_for_node,
    stream_endpoint,
    vmi_ready,
)
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import NotFound, Unavailable
from kubevirt_usb.kube.resources import USBAttachment
from kubevirt_usb.redirect import status
from kubevirt_usb.redirect.checks import BoundDevice
from kubevirt_usb.redirect.engine import Engine
from kubevirt_usb.redirect.metrics import StreamMetrics
from kubevirt_usb.redirect.outcome import Cause, Outcome
from kubevirt_usb.redirect.pathchoice import API, Choice, Local, PathReason
from kubevirt_usb.usb.identity import serial_identity
from tests.kube.emulator import NAMESPACE, Emulator, eventually

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def device_object(name: str = "46f4-0001-aaa1", *, node: str = "node1", port: str = "2-1",
                  claim: Mapping[str, str] | None = None) -> dict[str, Any]:
    identity = serial_identity("46f4", "0001", "AAA1")
    return {
        "metadata": {"name": name},
        "spec": {"claimRef": dict(claim) if claim else None},
        "status": {"node": node, "portPath": port, "vendorId": "46f4", "productId": "0001",
                   "serial": "AAA1", "identity": {"tier": identity.tier, "key": identity.key}},
    }


CLAIM = {"namespace": "default", "attachment": "att1", "vm": "vm1"}


def binding(port: str = "2-1") -> Binding:
    found = binding_of(device_object(port=port, claim=CLAIM), node="node1")
    assert found is not None
    return found


# ----------------------------------------------------------------------------- bindings


def test_a_claimed_device_of_this_node_is_a_binding() -> None:
    found = binding()
    assert found.device == BoundDevice(
        name="46f4-0001-aaa1", node="node1", port_path="2-1",
        identity=serial_identity("46f4", "0001", "AAA1"), vendor_id="46f4", product_id="0001",
        serial="AAA1")
    assert (found.namespace, found.attachment, found.vm) == ("default", "att1", "vm1")
    assert found.owner == "USBAttachment default/att1 -> VM default/vm1"


def test_unclaimed_foreign_and_half_published_devices_are_not_bindings() -> None:
    unclaimed = device_object()
    foreign = device_object(node="node2", claim=CLAIM)
    half = device_object(claim=CLAIM)
    del half["status"]["identity"]
    assert bindings_for_node([unclaimed, foreign, half], node="node1") == {}
    assert list(bindings_for_node([device_object(claim=CLAIM)], node="node1")) == \
        ["46f4-0001-aaa1"]


def test_a_vmi_is_streamable_when_running_with_client_passthrough() -> None:
    running = {"spec": {"domain": {"devices": {"clientPassthrough": {}}}},
               "status": {"phase": "Running"}}
    assert vmi_ready(running)
    assert not vmi_ready(None)
    assert not vmi_ready({**running, "status": {"phase": "Scheduling"}})
    assert not vmi_ready({"spec": {"domain": {"devices": {}}}, "status": {"phase": "Running"}})


# ----------------------------------------------------------------------------- fakes


@dataclass
class FakeKube:
    applied: list[dict[str, Any]] = field(default_factory=list)
    vmi_waits: list[str] = field(default_factory=list)
    existing: Mapping[str, Any] | None = None
    missing: bool = False

    async def vm_exists(self, namespace: str, name: str) -> bool | None:
        return True

    async def wait_vmi_ready(self, namespace: str, name: str, *, timeout: float) -> bool:
        self.vmi_waits.append(name)
        return True

    async def attachment_status(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.existing

    async def apply_status(self, body: Mapping[str, Any]) -> None:
        if self.missing:
            raise NotFound("usbattachments.usb.kubevirt-usb.io \"att1\" not found", code=404)
        self.applied.append(dict(body["status"]))

    async def launcher_objects(self, namespace: str, vm: str) -> LauncherObjects:
        return None, []

    def phases(self) -> list[tuple[str, str]]:
        return [(s["phase"], s["conditions"][0]["reason"]) for s in self.applied]


Step = tuple[Outcome, bool]  # how the attempt ends, whether the VM got the device first


@dataclass
class FakeStreamer:
    steps: list[Step]
    exhausted: asyncio.Event = field(default_factory=asyncio.Event)
    port_waits: int = 0
    closed: bool = False
    paths: list[Choice] = field(default_factory=list)

    async def attempt(self, *, on_locked: Callable[[], None], on_attached: Callable[[], None],
                      on_progress: Callable[[int, int], None],
                      on_path: Callable[[Choice], None]) -> Outcome:
        if not self.steps:
            self.exhausted.set()
            await asyncio.Event().wait()
        result, attach = self.steps.pop(0)
        if self.paths:
            on_path(self.paths.pop(0))
        if result.cause is not Cause.DEVICE_BUSY:
            on_locked()
        if attach:
            on_attached()
            on_progress(1000, 10)
            on_progress(3000, 20)
            await _settle()  # streaming for a while: the reporter writes Attached
        return result

    async def wait_port_change(self) -> None:
        self.port_waits += 1

    async def close(self) -> None:
        self.closed = True


def options(delays: list[float]) -> StreamOptions:
    ticks = iter(range(1_000_000))

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    return StreamOptions(sleep=sleep, clock=lambda: float(next(ticks)), wall_clock=lambda: NOW,
                         rand=lambda: 1.0, counter_interval=5.0)


async def run_until_exhausted(stream: DeviceStream, streamer: FakeStreamer) -> None:
    task = asyncio.create_task(stream.run())
    await asyncio.wait_for(streamer.exhausted.wait(), 10)
    for _ in range(20):
        await asyncio.sleep(0)  # let the reporter write
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ----------------------------------------------------------------------------- one device


async def test_a_stream_that_broke_reconnects_after_a_short_backoff() -> None:
    kube, metrics, delays = FakeKube(), StreamMetrics(), list[float]()
    streamer = FakeStreamer([
        (Outcome(cause=Cause.STREAM_BROKEN, detail="code 1006", attached_seconds=60), True),
        (Outcome(cause=Cause.STREAM_ENDED, attached_seconds=1), True),
    ])
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=metrics,
                          options=options(delays))
    await run_until_exhausted(stream, streamer)
    assert delays[0] == 0.5  # first retry after a stable stream: the shortest backoff
    assert delays[1] == 1.0  # it broke again quickly: the next one is longer
    assert ("Attached", "Attached") in kube.phases()
    assert stream.status.reconnects == 1
    assert stream.status.bytes_to_vm == 6000  # 3000 per attempt, counted as additions
    text = generate_latest(metrics.registry).decode()
    assert 'kubevirt_usb_stream_failures_total{reason="StreamBroken"} 1.0' in text
    assert "kubevirt_usb_streams_active 0.0" in text
    assert "att1" not in text  # the ended binding's series are gone
    assert streamer.closed


async def test_the_path_of_each_attempt_is_published_as_it_changes() -> None:
    kube, metrics, delays = FakeKube(), StreamMetrics(), list[float]()
    local = Local(pid=120, slot=3, pod="virt-launcher-vm1-abcde",
                  path="/proc/120/root/run/kubevirt-private/u/virt-usbredir-3")
    moved = API(reason=PathReason.VMI_ON_OTHER_NODE,
                message="VMI default/vm1 runs on node node2, the device is on node node1.")
    streamer = FakeStreamer([
        (Outcome(cause=Cause.STREAM_ENDED, attached_seconds=60), True),
        (Outcome(cause=Cause.STREAM_ENDED, attached_seconds=60), True),
    ], paths=[local, moved])
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=metrics,
                          options=options(delays))
    task = asyncio.create_task(stream.run())
    await asyncio.wait_for(streamer.exhausted.wait(), 10)
    for _ in range(20):
        await asyncio.sleep(0)
    seen = [(s.get("path"), s.get("pathReason"), s.get("slot"), s.get("slotKind"))
            for s in kube.applied]
    assert ("Local", "SameNode", 3, "Direct") in seen
    assert seen[-1] == ("API", "VMIOnOtherNode", None, "VirtHandler")
    text = generate_latest(metrics.registry).decode()
    assert 'path="API",reason="VMIOnOtherNode"} 1.0' in text
    assert 'path="Local"' not in text
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_refused_vm_waits_for_the_vmi_and_a_missing_device_for_its_port() -> None:
    kube, delays = FakeKube(), list[float]()
    streamer = FakeStreamer([
        (Outcome(cause=Cause.NOT_CONFIGURED, kubevirt="Not configured with USB Redirection"),
         False),
        (Outcome(cause=Cause.DEVICE_ABSENT), False),
    ])
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=StreamMetrics(),
                          options=options(delays))
    await run_until_exhausted(stream, streamer)
    assert kube.vmi_waits == ["vm1"]
    assert streamer.port_waits == 1
    assert ("Failed", "VMNotConfiguredForUSBRedirection") in kube.phases()
    assert kube.applied[-1]["phase"] == "Connecting"


async def test_counters_continue_from_the_attachment_and_a_missing_one_is_no_error() -> None:
    kube = FakeKube(existing={"bytesToVM": 100, "reconnects": 2}, missing=True)
    streamer = FakeStreamer([(Outcome(cause=Cause.STREAM_ENDED), True)])
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=StreamMetrics(),
                          options=options([]))
    await run_until_exhausted(stream, streamer)
    assert stream.status.bytes_to_vm == 3100
    assert stream.status.reconnects == 2  # the first attach of a binding is no reconnect
    assert kube.applied == []


async def test_counter_only_changes_wait_for_the_interval() -> None:
    kube, delays = FakeKube(), list[float]()
    reporter = StatusReporter(kube, binding(), options=StreamOptions(
        sleep=_recording(delays), clock=lambda: 100.0, counter_interval=5.0))
    task = asyncio.create_task(reporter.run())
    first = status.seeded(None, now="t")
    reporter.set(first)
    await _settle()
    reporter.set(status.counted(first, to_vm=10, from_vm=0))
    await _settle()
    reporter.set(status.connecting(first, message="phase change", now="t"))
    await _settle()
    task.cancel()
    assert delays == [5.0]  # only the counter-only write waited
    assert [s["bytesToVM"] for s in kube.applied] == [0, 10, 0]


async def test_an_unreachable_api_server_is_retried_later() -> None:
    delays: list[float] = []

    class Flaky(FakeKube):
        failures = 1

        async def apply_status(self, body: Mapping[str, Any]) -> None:
            if self.failures:
                self.failures -= 1
                raise Unavailable("cannot reach the API server")
            await super().apply_status(body)

    kube = Flaky()
    reporter = StatusReporter(kube, binding(), options=StreamOptions(
        sleep=_recording(delays), clock=lambda: 0.0))
    task = asyncio.create_task(reporter.run())
    reporter.set(status.seeded(None, now="t"))
    await _settle()
    task.cancel()
    assert len(kube.applied) == 1
    assert delays == [5.0]


def _recording(delays: list[float]) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    return sleep


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


# ----------------------------------------------------------------------------- the supervisor


async def test_one_task_per_binding_restarted_when_it_changes_and_stopped_when_it_ends() -> None:
    made: dict[str, FakeStreamer] = {}

    def make(b: Binding) -> DeviceStream:
        streamer = FakeStreamer([])
        made[b.device.port_path] = streamer
        return DeviceStream(b, streamer=streamer, kube=FakeKube(), metrics=StreamMetrics(),
                            options=options([]))

    supervisor = Supervisor(make_stream=make, stop_timeout=5)
    first = binding("2-1")
    await supervisor.update({"46f4-0001-aaa1": first})
    await supervisor.update({"46f4-0001-aaa1": first})  # unchanged: left alone
    assert list(made) == ["2-1"]
    await asyncio.wait_for(made["2-1"].exhausted.wait(), 10)
    await supervisor.update({"46f4-0001-aaa1": binding("2-3")})  # the device moved ports
    assert made["2-1"].closed
    assert list(supervisor.running) == ["46f4-0001-aaa1"]
    await asyncio.wait_for(made["2-3"].exhausted.wait(), 10)
    await supervisor.update({})
    assert made["2-3"].closed
    assert supervisor.running == {}


class StreamingStreamer:
    """An attempt that takes slot 3 on the node-local path and streams until cancelled."""

    async def attempt(self, *, on_locked: Callable[[], None], on_attached: Callable[[], None],
                      on_progress: Callable[[int, int], None],
                      on_path: Callable[[Choice], None]) -> Outcome:
        on_path(Local(pid=120, slot=3, pod="virt-launcher-vm1-abcde",
                      path="/proc/120/root/run/kubevirt-private/u/virt-usbredir-3"))
        on_locked()
        on_attached()
        on_progress(3000, 20)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def wait_port_change(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass


STREAM_ONLY = ("path", "pathReason", "pathMessage", "slot", "slotKind", "attachedSince")


@dataclass
class StreamedAttachment:
    """USBAttachment att1 bound to a device of node1 whose agent streams it on slot 3."""

    controller: KubeClient
    supervisor: Supervisor
    device: str

    async def controller_says(self, fields: dict[str, Any]) -> None:
        await self.controller.apply(USBAttachment.Status, {
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"name": "att1", "namespace": NAMESPACE}, "status": fields},
            force=True)

    async def status(self) -> dict[str, Any]:
        got = await self.controller.get(USBAttachment, "att1", namespace=NAMESPACE)
        return dict(got.get("status") or {})


@contextlib.asynccontextmanager
async def streamed_attachment(cluster: Emulator) -> AsyncIterator[StreamedAttachment]:
    agent_api = cluster.client(field_manager=status.FIELD_MANAGER)
    controller_api = cluster.client(field_manager="kubevirt-usb-controller")
    claim = {"namespace": NAMESPACE, "attachment": "att1", "vm": "vm1"}
    bound = binding_of(device_object(claim=claim), node="node1")
    assert bound is not None
    await controller_api.create(USBAttachment, {
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
        "metadata": {"name": "att1", "namespace": NAMESPACE},
        "spec": {"vm": "vm1", "device": {"serial": "AAA1"}}})
    supervisor = Supervisor(make_stream=lambda b: DeviceStream(
        b, streamer=StreamingStreamer(), kube=KubeAdapter(agent_api), metrics=StreamMetrics(),
        options=StreamOptions(counter_interval=0.1)))
    att = StreamedAttachment(controller_api, supervisor, bound.device.name)
    try:
        await att.controller_says({"phase": "Bound", "message": "Bound.", "device": att.device,
                                   "node": "node1"})
        await supervisor.update({bound.device.name: bound})

        async def streaming() -> bool:
            st = await att.status()
            return st.get("phase") == "Attached" and st.get("bytesToVM") == 3000
        await eventually(streaming, what="the stream's status")
        assert {k: (await att.status()).get(k) for k in ("path", "slot", "slotKind")} == {
            "path": "Local", "slot": 3, "slotKind": "Direct"}
        yield att
    finally:
        await supervisor.close()
        await agent_api.close()
        await controller_api.close()


async def test_an_unbound_attachment_no_longer_shows_the_streams_path_and_slot(
        cluster: Emulator) -> None:
    async with streamed_attachment(cluster) as att:
        # The policy is revoked: the controller releases the device, the agent's stream ends.
        await att.controller_says({"phase": "NotAllowed", "message": "No USBPolicy allows it."})
        await att.supervisor.update({})

        async def released() -> dict[str, Any] | None:
            st = await att.status()
            connected = [c for c in st.get("conditions", []) if c["type"] == "Connected"]
            return st if connected and connected[0]["reason"] == "Released" else None
        after = await eventually(released, what="the end of the stream in status")
        assert [k for k in STREAM_ONLY if k in after] == []
        assert (after["phase"], after["bytesToVM"], after["bytesFromVM"]) == (
            "NotAllowed", 3000, 20)
        assert "node" not in after


async def test_a_binding_moved_to_another_node_is_left_to_that_nodes_agent(
        cluster: Emulator) -> None:
    async with streamed_attachment(cluster) as att:
        await att.controller_says({"phase": "Bound", "message": "Bound.", "device": att.device,
                                   "node": "node2"})
        await att.supervisor.update({})  # returns once the stream ended
        after = await att.status()
        assert (after["node"], after["slot"], after["path"]) == ("node2", 3, "Local")
        assert [c["reason"] for c in after["conditions"] if c["type"] == "Connected"] == [
            "Attached"]


# ----------------------------------------------------------------------------- the engine pool


async def test_the_pool_has_a_worker_ready_and_reuses_idle_ones() -> None:
    pool = EnginePool(Engine.spawn, refill_delay=3600)
    pool.warm()
    try:
        first = await asyncio.wait_for(pool.take(), 60)
        assert first.alive
        await pool.give_back(first)
        again = await asyncio.wait_for(pool.take(), 60)
        assert again is first  # an idle, healthy worker serves the next binding
        await again.stop()
        await pool.give_back(again)  # a dead worker is not kept
        fresh = await asyncio.wait_for(pool.take(), 60)
        assert fresh is not first
        assert fresh.alive
        await pool.give_back(fresh)
    finally:
        await pool.close()
    assert not fresh.alive


class _Spawner:
    """Starts engine workers for a pool and keeps each one it started."""

    def __init__(self) -> None:
        self.started: list[Engine] = []

    async def __call__(self) -> Engine:
        engine = await Engine.spawn(ready_timeout=60)
        self.started.append(engine)
        return engine


async def test_workers_of_bindings_that_ended_together_serve_them_when_they_come_back() -> None:
    spawn = _Spawner()
    started = spawn.started
    pool = EnginePool(spawn, refill_delay=3600, linger=3600)
    try:
        streaming = [await asyncio.wait_for(pool.take(), 60) for _ in range(3)]
        for engine in streaming:  # the policy was revoked: the three bindings ended
            await pool.give_back(engine)
        again = [await asyncio.wait_for(pool.take(), 60) for _ in range(3)]  # granted again
        assert len(started) == 3  # no binding waited for a new worker
        assert sorted(map(id, again)) == sorted(map(id, streaming))
        assert all(engine.alive for engine in again)
        for engine in again:
            await pool.give_back(engine)
    finally:
        await pool.close()
    assert not any(engine.alive for engine in started)


async def test_idle_workers_beyond_one_are_stopped_after_lingering() -> None:
    spawn = _Spawner()
    started = spawn.started
    pool = EnginePool(spawn, refill_delay=3600, linger=0.2)
    try:
        streaming = [await asyncio.wait_for(pool.take(), 60) for _ in range(3)]
        for engine in streaming:
            await pool.give_back(engine)
        async with asyncio.timeout(60):
            while sum(engine.alive for engine in started) > 1:
                await asyncio.sleep(0.05)
        kept = await asyncio.wait_for(pool.take(), 60)
        assert kept.alive
        assert kept is streaming[-1]  # the one given back last stays ready
        assert len(started) == 3
        await pool.give_back(kept)
    finally:
        await pool.close()
    assert not any(engine.alive for engine in started)


async def test_a_second_agent_streaming_the_same_binding_waits_quietly() -> None:
    kube, delays = FakeKube(), list[float]()
    twin = binding().owner  # another agent on this node (a rollout overlap) holds the lock
    streamer = FakeStreamer([
        (Outcome(cause=Cause.DEVICE_BUSY, detail=f"held by {twin} (pid 7)", holder=twin), False),
        (Outcome(cause=Cause.DEVICE_BUSY, detail="held by usbredirect", holder="usbredirect"),
         False),
    ])
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=StreamMetrics(),
                          options=options(delays))
    await run_until_exhausted(stream, streamer)
    assert kube.phases() == [("Failed", "DeviceBusy")]  # only the foreign holder is reported
    assert "held by usbredirect" in kube.applied[0]["message"]
    assert len(delays) == 2


# ----------------------------------------------------------------------------- the endpoint


def test_the_streams_use_the_kubeconfig_else_the_pods_service_account(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",
                                                                       "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://10.0.2.2:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    from_file = stream_endpoint(kubeconfig=kubeconfig, environ={})
    assert (from_file.server, from_file.bearer_token()) == ("https://10.0.2.2:6443", "t")
    in_pod = stream_endpoint(kubeconfig=None, environ={
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert in_pod.server == "https://10.96.0.1:443"
    fallback = stream_endpoint(kubeconfig=None, environ={"KUBECONFIG": str(kubeconfig)})
    assert fallback.server == "https://10.0.2.2:6443"


# ----------------------------------------------------------------------------- ended while starting


@dataclass
class LateStreamer:
    """A streamer whose worker answers "streaming" just as the binding ends: the cancellation is
    lost on its way (as asyncio.wait_for of Python 3.11 lost it when the reply came at that very
    moment) and the stream goes on into the VM slot, holding the device's lock."""

    dialing: asyncio.Event = field(default_factory=asyncio.Event)
    streaming: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    async def attempt(self, *, on_locked: Callable[[], None], on_attached: Callable[[], None],
                      on_progress: Callable[[int, int], None],
                      on_path: Callable[[Choice], None]) -> Outcome:
        on_locked()
        self.dialing.set()
        # the worker dials the slot; its "streaming" reply arrives with the cancellation and wins
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        on_attached()
        self.streaming.set()
        await asyncio.Event().wait()  # streams until cancelled (again)
        return Outcome(cause=Cause.STREAM_ENDED)

    async def wait_port_change(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True  # the worker ended, the lock released


async def test_a_binding_that_ends_while_its_stream_starts_stops_that_stream() -> None:
    streamer = LateStreamer()
    supervisor = Supervisor(make_stream=lambda b: DeviceStream(
        b, streamer=streamer, kube=FakeKube(), metrics=StreamMetrics(), options=options([])),
        stop_timeout=0.05)
    await supervisor.update({"46f4-0001-aaa1": binding()})
    async with asyncio.timeout(10):
        await streamer.dialing.wait()
    await supervisor.update({})  # the attachment was deleted while the worker dialed the slot
    assert supervisor.running == {}
    async with asyncio.timeout(10):
        await streamer.streaming.wait()  # the lost cancellation: it went on streaming
        while not streamer.closed:
            await asyncio.sleep(0)
    await supervisor.close()
    assert supervisor.stopping == set()


async def test_a_worker_started_for_a_binding_that_ended_serves_the_next_one() -> None:
    calls: list[int] = []

    async def spawn() -> Engine:
        calls.append(1)
        return await Engine.spawn(ready_timeout=60)

    pool = EnginePool(spawn, refill_delay=3600)
    try:
        taking = asyncio.create_task(pool.take())
        while not calls:
            await asyncio.sleep(0)  # until the worker is starting
        taking.cancel()  # the binding ended meanwhile
        with pytest.raises(asyncio.CancelledError):
            await taking
        engine = await asyncio.wait_for(pool.take(), 60)
        assert engine.alive
        assert len(calls) == 1  # the worker that was starting, not a second one
        await pool.give_back(engine)
    finally:
        await pool.close()
    assert not engine.alive


async def test_after_an_api_outage_a_slow_wait_starts_short_again() -> None:
    # 20 s of a refused API server: the attempts back off (capped at 30 s); the first attempt
    # after it finds the device still held for a moment: that wait must not inherit the outage's
    # doubling (it was 128 s: 0.5 s doubled for each of the 8 failures before it).
    unreachable = (Outcome(cause=Cause.API_UNREACHABLE, detail="connection refused"), False)
    in_use = (Outcome(cause=Cause.DEVICE_IN_USE, detail="claiming interface 0 failed"), False)
    kube, delays = FakeKube(), list[float]()
    streamer = FakeStreamer([unreachable] * 8 + [in_use, in_use])
    ticks = iter(range(1_000_000))
    stream = DeviceStream(binding(), streamer=streamer, kube=kube, metrics=StreamMetrics(),
                          options=StreamOptions(
                              sleep=_recording(delays), clock=lambda: 100.0 * next(ticks),
                              wall_clock=lambda: NOW, rand=lambda: 1.0))
    await run_until_exhausted(stream, streamer)  # (status writes never wait: 100 s apart)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 0.5, 1.0]
