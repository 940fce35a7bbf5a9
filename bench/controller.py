"""The controller's control-plane latency: USBAttachment created until its status says Bound, for
400 attachments over 1,600 devices on the API emulator (its own process, as in the sandbox), and
the API requests the controller made per attachment.

Setup: 1,600 USBDevices on 4 nodes (agents heartbeating), one USBPolicy, 100 running VMs with
clientPassthrough (4 attachments each, the usbredir limit). Then 400 attachments are created at
`rate` per second (0: all at once, 16 at a time) by a client beside the controller, each
naming one device by serial (`--selector serial`) or any device of the model
(`--selector model`: 400 attachments compete for 1,600 identical devices); a watch records
when each is first seen Bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import ALL_NS
from lightkube.resources.core_v1 import Namespace

from kubevirt_usb import crds
from kubevirt_usb.controller.manager import Controller, ControllerOptions
from kubevirt_usb.kube.client import KubeClient, ObservedTransport, connect
from kubevirt_usb.kube.config import load_config
from kubevirt_usb.kube.resources import (
    Lease,
    USBAttachment,
    USBDevice,
    USBPolicy,
    VirtualMachine,
    VirtualMachineInstance,
)
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.scenario import VMSpec

NAMESPACE = "bench"
SYSTEM = "kubevirt-usb"
NODES = 4


def _start_emulator(workdir: Path, manifests: Path) -> subprocess.Popen[bytes]:
    """The API emulator in its own process; returns once its kubeconfig is written."""
    kubeconfig = workdir / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevirt_usb.cli", "sandbox", "apiserver", "--listen",
         "127.0.0.1:0", "--kubeconfig", str(kubeconfig), "--rbac-file", str(manifests)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            proc.kill()
            raise RuntimeError(f"the API emulator did not start: {err}")
        time.sleep(0.05)
    return proc


def _manifests(workdir: Path) -> Path:
    path = workdir / "manifests.yaml"
    path.write_text(yaml.safe_dump_all([*crds.all_crds(), *kubevirt.crds()]))
    return path


async def _gather_limited(jobs: list[Any], limit: int) -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await queue.get_nowait()

    await asyncio.gather(*(worker() for _ in range(limit)))


async def _setup(client: KubeClient, *, devices: int, vms: int) -> None:
    for ns in (NAMESPACE, SYSTEM):
        await client.create(Namespace, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}})
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for n in range(NODES):
        await client.create(Lease, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": f"kubevirt-usb-agent-node{n}", "namespace": SYSTEM},
            "spec": {"holderIdentity": f"node{n}", "leaseDurationSeconds": 3600,
                     "renewTime": now}})
    await client.create(USBPolicy, {"apiVersion": "usb.kubevirt-usb.io/v1alpha1",
                                    "kind": "USBPolicy", "metadata": {"name": "bench"},
                                    "spec": {"namespaces": [NAMESPACE]}})

    async def device(i: int) -> None:
        name = f"dev-{i:04d}"
        await client.create(USBDevice, {"apiVersion": "usb.kubevirt-usb.io/v1alpha1",
                                        "kind": "USBDevice", "metadata": {"name": name}})
        node = f"node{i % NODES}"
        await client.patch(USBDevice.Status, name, {"status": {
            "node": node, "identity": {"tier": "serial", "key": f"S{i:04d}"},
            "portPath": f"{1 + i % 8}-{1 + i // 8 % 8}", "vendorId": "0781",
            "productId": "5567", "productName": "Cruzer Blade", "serial": f"S{i:04d}",
            "present": True, "state": "Available"}})

    async def vm(i: int) -> None:
        spec = VMSpec(namespace=NAMESPACE, name=f"vm-{i:03d}", client_passthrough=True,
                      node=f"node{i % NODES}")
        created = await client.create(VirtualMachine, kubevirt.vm_object(spec))
        await client.create(VirtualMachineInstance, kubevirt.vmi_object(
            spec, vm_uid=created["metadata"]["uid"]))
        await client.patch(VirtualMachineInstance.Status, spec.name,
                           {"status": kubevirt.vmi_status(spec, phase="Running")},
                           namespace=NAMESPACE)

    await _gather_limited([device(i) for i in range(devices)], 16)
    await _gather_limited([vm(i) for i in range(vms)], 16)


async def _watch_bound(client: KubeClient, bound: dict[str, float], ready: asyncio.Event,
                       all_bound: asyncio.Event, expected: int) -> None:
    listed = await client.list(USBAttachment, namespace=ALL_NS)
    ready.set()
    async for event in client.watch(USBAttachment, namespace=ALL_NS,
                                    resource_version=listed.resource_version):
        name = event.object["metadata"]["name"]
        phase = (event.object.get("status") or {}).get("phase")
        if phase == "Bound" and name not in bound:
            bound[name] = time.perf_counter()
            if len(bound) == expected:
                all_bound.set()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


async def _measure(kubeconfig: Path, *, attachments: int, devices: int, rate: float,
                   selector: str, workers: int) -> dict[str, Any]:
    config = load_config(kubeconfig=kubeconfig)
    admin = connect(config, field_manager="bench", timeout=60)
    await _setup(admin, devices=devices, vms=(attachments + 3) // 4)
    requests: list[str] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return ObservedTransport(inner, lambda r: requests.append(r.method))

    controller_client = connect(config, field_manager="kubevirt-usb-controller", timeout=60,
                                wrap=wrap)
    controller = Controller(controller_client, ControllerOptions(namespace=SYSTEM,
                                                                 identity="bench",
                                                                 workers=workers))
    started = time.perf_counter()
    task = asyncio.ensure_future(controller.run())
    async with asyncio.timeout(120):
        await controller.synced.wait()
    sync_seconds = time.perf_counter() - started
    await asyncio.sleep(0.5)  # let the first full pass (no writes) finish
    baseline = len(requests)

    bound: dict[str, float] = {}
    ready, all_bound = asyncio.Event(), asyncio.Event()
    watcher = asyncio.ensure_future(_watch_bound(admin, bound, ready, all_bound, attachments))
    await ready.wait()
    created: dict[str, float] = {}

    async def create(i: int) -> None:
        name = f"a-{i:04d}"
        device = {"serial": f"S{i * (devices // attachments):04d}"} if selector == "serial" \
            else {"vendorId": "0781", "productId": "5567"}
        body = {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"vm": f"vm-{i // 4:03d}", "device": device}}
        created[name] = time.perf_counter()
        await admin.create(USBAttachment, body)

    t0 = time.perf_counter()
    if rate > 0:
        pending = []
        for i in range(attachments):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.ensure_future(create(i)))
        await asyncio.gather(*pending)
    else:
        await _gather_limited([create(i) for i in range(attachments)], 16)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(120):
            await all_bound.wait()
    total = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    await controller.recorder.flush(timeout=30)
    writes = len(requests) - baseline
    watcher.cancel()
    task.cancel()
    await asyncio.gather(watcher, task, return_exceptions=True)
    await controller_client.close()
    await admin.close()
    if len(bound) < attachments:
        raise RuntimeError(f"only {len(bound)} of {attachments} attachments were Bound")
    latencies = [bound[n] - created[n] for n in created]
    return {
        "attachments": attachments, "devices": devices, "selector": selector,
        "creation_rate_per_s": rate or "burst (16 concurrent creates)", "workers": workers,
        "bound_p50_s": round(statistics.median(latencies), 3),
        "bound_p99_s": round(_percentile(latencies, 99), 3),
        "bound_max_s": round(max(latencies), 3),
        "all_bound_after_s": round(total, 2),
        "controller_sync_s": round(sync_seconds, 2),
        "controller_requests_per_attachment": round(writes / attachments, 2),
        "events_posted": controller.recorder.posted,
        "reconciles": controller.reconciles,
        "lost_races": controller.retries,
    }


def run(*, attachments: int, devices: int, rate: float, selector: str,
        workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvu-bench-") as tmp:
        workdir = Path(tmp)
        proc = _start_emulator(workdir, _manifests(workdir))
        try:
            return asyncio.run(_measure(workdir / "kubeconfig", attachments=attachments,
                                        devices=devices, rate=rate, selector=selector,
                                        workers=workers))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


# ---- the cluster in a box ----------------------------------------------------------------------


def run_sandbox(*, rounds: int) -> dict[str, Any]:
    """Attach latency end to end: a USBAttachment created until vm1's kernel shows the stick
    (and until Bound), then deleted until the kernel lost it, `rounds` times, in the default
    sandbox (its real agent, streaming, and controller)."""
    from kubevirt_usb.sandbox.harness import SandboxHarness

    group = "/apis/usb.kubevirt-usb.io/v1alpha1"
    attachments = f"{group}/namespaces/default/usbattachments"
    seen: list[float] = []
    bound: list[float] = []
    gone: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kvu-bench-") as tmp, \
            SandboxHarness(state_dir=Path(tmp)) as sandbox:
        with sandbox.http() as http:
            http.post(f"{group}/usbpolicies", json={
                "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
                "metadata": {"name": "bench"}, "spec": {"namespaces": ["default"]}}
                      ).raise_for_status()
        for i in range(rounds):
            name = f"bench-{i}"
            with sandbox.http() as http:
                start = time.perf_counter()
                http.post(attachments, json={
                    "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
                    "metadata": {"name": name},
                    "spec": {"vm": "vm1", "device": {"serial": "AAA1"}}}).raise_for_status()
                while ((http.get(f"{attachments}/{name}").json().get("status") or {})
                       .get("phase") not in ("Bound", "Connecting", "Attached")):
                    if time.perf_counter() - start > 60:
                        raise RuntimeError(f"{name} was not Bound within 60 s")
                    time.sleep(0.02)
                bound.append(time.perf_counter() - start)
            sandbox.wait_until(lambda: sandbox.vm_sees("default/vm1", "AAA1"), within=180,
                               what="vm1 to show AAA1", interval=0.1)
            seen.append(time.perf_counter() - start)
            with sandbox.http() as http:
                start = time.perf_counter()
                http.delete(f"{attachments}/{name}").raise_for_status()
            sandbox.wait_until(lambda: not sandbox.vm_sees("default/vm1", "AAA1"), within=180,
                               what="vm1 to lose AAA1", interval=0.1)
            gone.append(time.perf_counter() - start)
    return {"rounds": rounds,
            "created_to_bound_s": [round(s, 3) for s in bound],
            "created_to_kernel_sees_s": [round(s, 2) for s in seen],
            "created_to_kernel_sees_s_median": round(statistics.median(seen), 2),
            "deleted_to_kernel_loses_s": [round(s, 2) for s in gone]}
