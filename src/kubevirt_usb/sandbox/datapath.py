"""Helpers for the data-path end-to-end tests and the data-path benchmark (bench/datapath.py), kept
in the sandbox so a benchmark does not depend on the test tree: the streaming agent running inside a
node guest, USBDevice/USBAttachment objects written by hand (as the inventory and the controller
would), and a TCP proxy between the guests and the API emulator that can cut every connection
(a network failure, as the agent sees it: ECONNRESET / EOF without a websocket close frame).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubevirt_usb import models
from kubevirt_usb.sandbox.fault_proxy import FaultProxy
from kubevirt_usb.sandbox.guest import BackgroundProcess, UsbDevice
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.usb.identity import device_object_name, serial_identity

__all__ = ["FaultProxy"]  # the tests import it from here

HOST_FROM_GUEST = "10.0.2.2"
GUEST_DIR = "/run/kvu-datapath"  # inside the guest's chroot of the host root (a tmpfs)
GROUP_PATH = f"/apis/{models.GROUP}/{models.VERSION}"
MERGE = {"Content-Type": "application/merge-patch+json"}


def plain_harness(*, state_dir: Path, **kwargs: Any) -> SandboxHarness:
    """A sandbox without the product's own components: these tests run the streaming agent
    themselves and write the bindings by hand, so nothing else may bind or stream devices."""
    return SandboxHarness(state_dir=state_dir, components=False, **kwargs)


# ----------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class Stick:
    """A device of the node as the tests bind it."""

    serial: str
    port_path: str  # the node's sysfs name, e.g. "2-1"
    vendor_id: str = "46f4"
    product_id: str = "0001"

    @property
    def name(self) -> str:
        return device_object_name(serial_identity(self.vendor_id, self.product_id, self.serial))


def node_stick(harness: SandboxHarness, serial: str, *, node: str = "node1") -> Stick:
    """The stick with this serial as the node's kernel sees it now."""
    devices: list[UsbDevice] = harness.run(harness.sandbox.node(node).usb_devices())
    found = next(d for d in devices if d.serial == serial)
    return Stick(serial=serial, port_path=found.name, vendor_id=found.vendor_id,
                 product_id=found.product_id)


class Objects:
    """USBDevice / USBAttachment objects, written as the cluster admin."""

    def __init__(self, harness: SandboxHarness) -> None:
        self.harness = harness

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self.harness.http() as http:
            response = http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def publish(self, stick: Stick, *, node: str = "node1", port_path: str | None = None) -> None:
        """What the inventory would publish for the stick (status as the agent reads it)."""
        identity = serial_identity(stick.vendor_id, stick.product_id, stick.serial)
        with self.harness.http() as http:
            http.post(f"{GROUP_PATH}/usbdevices", json={
                "apiVersion": models.API_VERSION, "kind": "USBDevice",
                "metadata": {"name": stick.name}, "spec": {}})
        self._request("PATCH", f"{GROUP_PATH}/usbdevices/{stick.name}/status", headers=MERGE,
                      json={"status": {
                          "node": node, "identity": {"tier": identity.tier, "key": identity.key},
                          "portPath": port_path or stick.port_path, "vendorId": stick.vendor_id,
                          "productId": stick.product_id, "serial": stick.serial,
                          "present": True, "state": "Available"}})

    def attachment(self, name: str, *, vm: str, namespace: str = "default") -> None:
        with self.harness.http() as http:
            http.delete(f"{GROUP_PATH}/namespaces/{namespace}/usbattachments/{name}")
            response = http.post(f"{GROUP_PATH}/namespaces/{namespace}/usbattachments", json={
                "apiVersion": models.API_VERSION, "kind": "USBAttachment",
                "metadata": {"name": name, "namespace": namespace}, "spec": {"vm": vm}})
        assert response.status_code == 201, response.text

    def bind(self, stick: Stick, *, attachment: str, vm: str, namespace: str = "default") -> None:
        """`kubectl patch usbdevice ... --type merge` of spec.claimRef, as the controller will."""
        self._request("PATCH", f"{GROUP_PATH}/usbdevices/{stick.name}", headers=MERGE, json={
            "spec": {"claimRef": {"namespace": namespace, "attachment": attachment, "vm": vm}}})

    def unbind(self, stick: Stick) -> None:
        self._request("PATCH", f"{GROUP_PATH}/usbdevices/{stick.name}", headers=MERGE,
                      json={"spec": {"claimRef": None}})

    def status(self, attachment: str, *, namespace: str = "default") -> dict[str, Any]:
        found = self._request("GET", f"{GROUP_PATH}/namespaces/{namespace}/usbattachments/"
                                     f"{attachment}")
        status: dict[str, Any] = found.get("status") or {}
        return status

    def create(self, obj: Mapping[str, Any]) -> None:
        self.harness.call(lambda: self.harness.sandbox.api.create_object(dict(obj)))


# ----------------------------------------------------------------------------- the guest agent


def push_file(harness: SandboxHarness, guest: NodeGuest, path: str, data: bytes) -> None:
    """Write a file into the guest's chroot (`path` as the chroot sees it)."""
    encoded = base64.b64encode(data).decode()
    directory = path.rsplit("/", 1)[0]
    command = (f"mkdir -p /host{directory} && echo {encoded} | base64 -d > /host{path} && "
               f"chmod 600 /host{path}")
    harness.run(guest.exec(command, timeout=30)).check(f"writing {path}")


def guest_kubeconfig(harness: SandboxHarness, *, port: int) -> bytes:
    """The admin kubeconfig, with the API at 10.0.2.2:`port` (the host, from a guest)."""
    config = yaml.safe_load(harness.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://{HOST_FROM_GUEST}:{port}"
    return yaml.safe_dump(config).encode()


@dataclass
class GuestAgent:
    """`python -m kubevirt_usb.agent.streaming` running in a node guest."""

    harness: SandboxHarness
    node: str
    process: BackgroundProcess | None = None
    log_path: str = "/tmp/streaming-agent.log"

    @property
    def guest(self) -> NodeGuest:
        return self.harness.sandbox.node(self.node)

    def start(self, *, api_port: int, metrics_port: int = 9108, local_path: bool = True) -> None:
        """Start it; `local_path=False` streams through the API even into VMs on this node."""
        kubeconfig = f"{GUEST_DIR}/kubeconfig"
        push_file(self.harness, self.guest, kubeconfig, guest_kubeconfig(self.harness,
                                                                         port=api_port))
        command = self.guest.python_command([
            "-m", "kubevirt_usb.agent.streaming", "--node", self.node,
            "--kubeconfig", kubeconfig, "--metrics-port", str(metrics_port),
            *([] if local_path else ["--no-local-path"])])
        self.process = self.harness.run(self.guest.start_background(command,
                                                                    log_path=self.log_path))

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.harness.run(self.guest.signal(self.process, signal_name="TERM"))
            self.process = None

    def kill(self) -> None:
        """kill -9 the agent (its engine workers follow it: PR_SET_PDEATHSIG)."""
        if self.process is not None:
            self.harness.run(self.guest.signal(self.process, signal_name="KILL"))
            self.process = None

    def log(self, lines: int = 40) -> str:
        result = self.harness.run(self.guest.exec(f"tail -n {lines} {self.log_path}",
                                                  timeout=30))
        return result.output

    def pids(self) -> list[int]:
        """The agent's process and its engine workers (in the guest)."""
        if self.process is None:
            return []
        return _pids_matching(self.harness, self.guest, "kubevirt_usb.agent.streaming",
                              "kubevirt_usb.redirect.worker")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the agent and its workers so far (guest clock ticks)."""
        return cpu_seconds(self.harness, self.guest, self.pids())

    def metrics(self, *, port: int = 9108) -> str:
        result = self.harness.run(self.guest.exec(
            f"wget -q -O - http://127.0.0.1:{port}/metrics", timeout=30))
        return result.output


def guest_pids(harness: SandboxHarness, guest: NodeGuest, needle: str) -> list[int]:
    """Processes in the guest whose command line contains `needle`."""
    return _pids_matching(harness, guest, needle)


def _pids_matching(harness: SandboxHarness, guest: NodeGuest, *needles: str) -> list[int]:
    """Pids whose command line contains any of `needles`: one grep over /proc/*/cmdline (a
    process per pid, as a shell loop would start, takes tens of seconds in a busy TCG guest)."""
    # "a[.]b" matches "a.b" but not the pattern's own text in grep's (and its shell's) cmdline
    patterns = " ".join(f"-e {shlex.quote(n.replace('.', '[.]'))}" for n in needles)
    script = f"grep -ls {patterns} /proc/[0-9]*/cmdline"
    output = harness.run(guest.exec(script, timeout=60)).output
    pids = (line.split("/")[2] for line in output.splitlines() if line.count("/") == 3)
    return sorted(int(p) for p in pids if p.isdigit())


def cpu_seconds(harness: SandboxHarness, guest: NodeGuest, pids: list[int]) -> float:
    if not pids:
        return 0.0
    script = "; ".join(f"cut -d' ' -f14,15 /proc/{p}/stat 2>/dev/null" for p in pids)
    output = harness.run(guest.exec(script, timeout=30)).output
    ticks = sum(int(v) for v in output.split() if v.isdigit())
    return ticks / 100.0  # USER_HZ


def vm_device(harness: SandboxHarness, vm: str, serial: str) -> UsbDevice | None:
    return harness.probe(vm).usb_by_serial(serial)


def node_driver(harness: SandboxHarness, port_path: str, *, node: str = "node1") -> str:
    """The kernel driver of the device's first interface on the node ('' when none)."""
    result = harness.on_node(node, f"readlink /sys/bus/usb/devices/{port_path}:1.0/driver")
    return result.output.strip().rsplit("/", 1)[-1] if result.ok else ""


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
