"""The node agents' load on the API: 100 simulated agents (one process, one asyncio loop, each with
its own 16-device sysfs tree: 1,600 devices) publish against the API emulator running in its own
process. After the initial publish, every API request of every agent is counted over a
steady-state window (writes should be the heartbeat Leases only); then a few hot-plugs measure
how long a plug and an unplug take to show in the API with all agents running; last, one real
`kubevirt-usb agent` process with a 16-device tree joins and its RSS is read once it settled.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import yaml

from kubevirt_usb import crds
from kubevirt_usb.agent.hotplug import QueueEventSource, UEvent
from kubevirt_usb.agent.objects import FIELD_MANAGER
from kubevirt_usb.agent.runner import Agent, AgentOptions
from kubevirt_usb.kube.client import KubeClient, ObservedTransport, connect
from kubevirt_usb.kube.config import load_config
from kubevirt_usb.kube.errors import NotFound
from kubevirt_usb.kube.resources import USBDevice
from kubevirt_usb.sandbox.sysfs_tree import SERIAL_PORT, USB_IDS_TEXT, SysfsTree
from kubevirt_usb.usb.usbids import UsbIds

NAMESPACE = "kubevirt-usb"
LEASES = "/leases/"


def start_emulator(workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The API emulator in a subprocess, with the CRDs and the namespace; its kubeconfig."""
    manifests = workdir / "manifests.yaml"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    manifests.write_text(yaml.safe_dump_all([*crds.all_crds(), namespace]))
    kubeconfig = workdir / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevirt_usb.cli", "sandbox", "apiserver", "--listen",
         "127.0.0.1:0", "--kubeconfig", str(kubeconfig), "--rbac-file", str(manifests)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the API emulator did not start: {err}")
        time.sleep(0.05)
    return proc, kubeconfig


def build_tree(root: Path, node: int, devices: int) -> SysfsTree:
    """A node with `devices` devices: a quarter identical serial-less twins, a quarter serial
    adapters, the rest sticks with unique serials; spread over two buses and a hub's ports."""
    tree = SysfsTree(root)
    tree.root_hub(1)
    tree.root_hub(2)
    for index in range(devices):
        port = f"{1 + index % 2}-{1 + index // 8}.{1 + index % 8}"
        if index % 4 == 0:
            tree.device(port, devnum=index + 2, serial=None)
        elif index % 4 == 1:
            tree.device(port, devnum=index + 2, interfaces=SERIAL_PORT, idVendor="0403",
                        idProduct="6001", serial=f"FT{node:03d}{index:02d}")
        else:
            tree.device(port, devnum=index + 2, serial=f"N{node:03d}D{index:02d}")
    return tree


@dataclass
class SimulatedNode:
    name: str
    tree: SysfsTree
    events: QueueEventSource
    agent: Agent
    client: KubeClient
    requests: Counter[str] = field(default_factory=Counter)
    renewals: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def count(self, request: httpx2.Request) -> None:
        kind = "lease" if LEASES in request.url.path else "device"
        if kind == "lease":
            self.renewals.append(time.monotonic())
        watch = request.url.params.get("watch") in ("true", "1")
        self.requests[f"{request.method} {kind}{' watch' if watch else ''}"] += 1


def _new_node(index: int, workdir: Path, kubeconfig: Path, devices: int,
              usb_ids: UsbIds) -> SimulatedNode:
    name = f"node-{index:03d}"
    tree = build_tree(workdir / name, index, devices)
    events = QueueEventSource()
    holder: list[SimulatedNode] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return ObservedTransport(inner, lambda request: holder[0].count(request))

    client = connect(load_config(kubeconfig=kubeconfig), field_manager=FIELD_MANAGER,
                     timeout=60, wrap=wrap)
    options = AgentOptions(node=name, usb_ids=usb_ids, sysfs_root=tree.root,
                           namespace=NAMESPACE, rescan_interval=20.0)
    node = SimulatedNode(name, tree, events, Agent(options, client=client, events=events),
                         client)
    holder.append(node)
    return node


async def _until(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def _writes(counts: Counter[str], kind: str) -> int:
    return sum(v for k, v in counts.items() if not k.startswith("GET") and f" {kind}" in k)


async def _hotplug_latencies(node: SimulatedNode, api: KubeClient, samples: int
                             ) -> tuple[list[float], list[float]]:
    plugs, unplugs = [], []
    for n in range(samples):
        port, serial = f"2-9.{n + 1}", f"HOTPLUG{n}"
        name = f"46f4-0001-{serial.lower()}"
        node.tree.device(port, devnum=100 + n, serial=serial)
        node.events.push(UEvent("add", "usb", "usb_device", port))

        async def present(name: str = name) -> bool:
            try:
                obj = await api.get(USBDevice, name)
            except NotFound:
                return False
            return bool((obj.get("status") or {}).get("present"))

        plugs.append(await _until(present, timeout=30, what=f"{name} to appear"))
        for link in list(node.tree.bus_dir.iterdir()):
            if link.name == port or link.name.startswith(f"{port}:"):
                target = link.resolve()
                link.unlink()
                if link.name == port:
                    shutil.rmtree(target)
        node.events.push(UEvent("remove", "usb", "usb_device", port))

        async def absent(name: str = name) -> bool:
            obj = await api.get(USBDevice, name)
            return (obj.get("status") or {}).get("state") == "Absent"

        unplugs.append(await _until(absent, timeout=30, what=f"{name} to be absent"))
    return plugs, unplugs


async def simulate(*, kubeconfig: Path, workdir: Path, agents: int, devices: int,
                   steady_seconds: float) -> dict[str, Any]:
    (workdir / "usb.ids").write_text(USB_IDS_TEXT)
    usb_ids = UsbIds(workdir / "usb.ids")
    nodes = [_new_node(i, workdir, kubeconfig, devices, usb_ids) for i in range(agents)]
    api = connect(load_config(kubeconfig=kubeconfig), field_manager="bench", timeout=60)
    total = agents * devices
    started = time.monotonic()
    for node in nodes:
        node.task = asyncio.create_task(node.agent.run())
    try:
        async def all_published() -> bool:
            if not all(n.agent.published and n.agent.last_result and
                       n.agent.last_result.converged for n in nodes):
                return False
            items = (await api.list(USBDevice)).items
            return len(items) == total and all("status" in i for i in items)

        await _until(all_published, timeout=1800, what="the initial publish")
        initial = time.monotonic() - started
        names = [i["metadata"]["name"] for i in (await api.list(USBDevice)).items]
        await asyncio.sleep(5)  # let the last watch events and follow-up scans drain
        before = [Counter(n.requests) for n in nodes]
        versions = {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                    for i in (await api.list(USBDevice)).items}
        window_start = time.monotonic()
        await asyncio.sleep(steady_seconds)
        window_end = time.monotonic()
        window = window_end - window_start
        periods = [later - earlier for n in nodes
                   for earlier, later in itertools.pairwise(
                       t for t in n.renewals if window_start <= t <= window_end)]
        deltas = [n.requests - b for n, b in zip(nodes, before, strict=True)]
        alive = sum(1 for n in nodes if n.agent.live() is None)
        unchanged = versions == {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                                 for i in (await api.list(USBDevice)).items}
        plugs, unplugs = await _hotplug_latencies(nodes[0], api, samples=5)
    finally:
        for node in nodes:
            if node.task is not None:
                node.task.cancel()
        await asyncio.gather(*(n.task for n in nodes if n.task), return_exceptions=True)
        for node in nodes:
            await node.client.close()
        await api.close()
    minutes = window / 60
    device_writes = [_writes(d, "device") for d in deltas]
    lease_writes = [_writes(d, "lease") for d in deltas]
    reads = [sum(v for k, v in d.items() if k.startswith("GET")) for d in deltas]
    return {
        "agents": agents,
        "agents_alive_after_window": alive,
        "devices": total,
        "unique_objects": len(set(names)),
        "initial_publish_s": round(initial, 1),
        "steady_window_s": round(window, 1),
        "steady_device_writes_per_agent_per_min": round(statistics.mean(device_writes) / minutes,
                                                        3),
        "steady_lease_writes_per_agent_per_min": round(statistics.mean(lease_writes) / minutes,
                                                       3),
        "steady_writes_per_agent_per_min": round(
            statistics.mean(d + w for d, w in zip(device_writes, lease_writes, strict=True))
            / minutes, 3),
        "steady_lease_period_s_median": round(statistics.median(periods), 2),
        "steady_lease_period_s_max": round(max(periods), 2),
        "steady_reads_per_agent_per_min": round(statistics.mean(reads) / minutes, 3),
        "steady_resource_versions_unchanged": unchanged,
        "hotplug_plug_visible_s_median": round(statistics.median(plugs), 3),
        "hotplug_plug_visible_s_max": round(max(plugs), 3),
        "hotplug_unplug_visible_s_median": round(statistics.median(unplugs), 3),
        "hotplug_unplug_visible_s_max": round(max(unplugs), 3),
    }


def _status_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def measure_agent_rss(*, kubeconfig: Path, workdir: Path, devices: int,
                      settle_seconds: float) -> dict[str, Any]:
    """Start one real agent process with a `devices`-device tree and read its memory."""
    tree = build_tree(workdir / "rss-node", 999, devices)
    (workdir / "usb.ids").write_text(USB_IDS_TEXT)
    health = "127.0.0.1:" + str(_free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevirt_usb.cli", "agent", "--node-name", "rss-node",
         "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE, "--sysfs-root",
         str(tree.root), "--usb-ids", str(workdir / "usb.ids"), "--health-listen", health,
         "--uevents", "kernel", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the agent exited: {proc.stderr.read().decode()}"
                                   if proc.stderr else "the agent exited")
            try:
                if httpx.get(f"http://{health}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not become ready")
            time.sleep(0.2)
        ready_after = time.monotonic()
        time.sleep(settle_seconds)
        memory = _status_kib(proc.pid)
        metrics = httpx.get(f"http://{health}/metrics", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(20)
    available = next((line.split()[-1] for line in metrics.splitlines()
                      if line.startswith('kubevirt_usb_agent_devices{state="Available"}')), "?")
    return {"agent_rss_mib": round(memory["VmRSS"] / 1024, 1),
            "agent_peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
            "agent_rss_settle_s": round(time.monotonic() - ready_after, 1),
            "agent_rss_devices_published": available}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(*, agents: int = 100, devices: int = 16, steady_seconds: float = 60.0,
        settle_seconds: float = 15.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, kubeconfig = start_emulator(workdir)
        try:
            out = asyncio.run(simulate(kubeconfig=kubeconfig, workdir=workdir, agents=agents,
                                       devices=devices, steady_seconds=steady_seconds))
            out.update(measure_agent_rss(kubeconfig=kubeconfig, workdir=workdir,
                                         devices=devices, settle_seconds=settle_seconds))
        finally:
            proc.terminate()
            proc.wait(20)
    out["cpus"] = os.cpu_count()
    out["python"] = sys.version.split()[0]
    return out

