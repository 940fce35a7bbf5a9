"""A small cluster for `kubectl usb` tests: the API emulator with the CRDs, KubeVirt's CRDs and
virt-api version endpoint, two nodes, the field notes' devices (two identical sticks AAA1/AAA2
and a serial adapter on node1) and VMs default/vm1 (clientPassthrough) and default/vm2 (without).

Tests run the INSTALLED command (`.venv/bin/kubectl-usb`, or `kubectl usb` through kubectl's
plugin mechanism) and play the controller and the agent by writing status themselves.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from kubevirt_usb import crds
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from kubevirt_usb.clock import rfc3339
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.scenario import VMSpec
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from tests.polling import wait_until

BIN = Path(sys.executable).parent
KUBECTL_USB = BIN / "kubectl-usb"
GROUP = "/apis/usb.kubevirt-usb.io/v1alpha1"
KUBEVIRT = "/apis/kubevirt.io/v1"
Obj = dict[str, Any]


def stick(serial: str, *, port: str, node: str = "node1") -> tuple[str, Obj]:
    return f"46f4-0001-{serial.lower()}", {
        "node": node, "identity": {"tier": "serial", "key": f"serial:46f4:0001:{serial}"},
        "portPath": port, "busNumber": 2, "deviceNumber": int(port.split("-")[1]) + 1,
        "vendorId": "46f4", "productId": "0001", "vendorName": "QEMU",
        "productName": "QEMU USB HARDDRIVE", "manufacturer": "QEMU",
        "product": "QEMU USB HARDDRIVE", "serial": serial, "speed": "480", "present": True,
        "state": "Available", "lastSeen": rfc3339(dt.datetime.now(dt.UTC)),
    }


def serial_adapter() -> tuple[str, Obj]:
    return "0403-6001-ft0001", {
        "node": "node1", "identity": {"tier": "serial", "key": "serial:0403:6001:FT0001"},
        "portPath": "2-3", "busNumber": 2, "deviceNumber": 4, "vendorId": "0403",
        "productId": "6001", "vendorName": "Future Technology Devices International, Ltd",
        "productName": "FT232 Serial (UART) IC", "manufacturer": "QEMU",
        "product": "QEMU USB SERIAL", "serial": "FT0001", "speed": "12", "present": True,
        "state": "Available", "lastSeen": rfc3339(dt.datetime.now(dt.UTC)),
    }


def device_obj(name: str, status: Obj, *, claim: Obj | None = None) -> Obj:
    """A USBDevice as the API returns it (for tests of pure functions)."""
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBDevice",
            "metadata": {"name": name, "resourceVersion": "1"},
            "spec": {"claimRef": claim} if claim else {}, "status": status}


def field_notes_devices(*, claim_aaa1: Obj | None = None) -> list[Obj]:
    """AAA1, AAA2 and FT0001 as USBDevice objects."""
    return [device_obj(*stick("AAA1", port="2-1"), claim=claim_aaa1),
            device_obj(*stick("AAA2", port="2-2")), device_obj(*serial_adapter())]


def attachment_obj(name: str, *, vm: str, device: Obj, namespace: str = "default",
                   status: Obj | None = None) -> Obj:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {"vm": vm, "device": device}, "status": status or {}}


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cluster:
    """The emulator plus helpers to read, write and run the CLI against it."""

    def __init__(self, tmp: Path, *, installed: bool = True) -> None:
        self.tmp = tmp
        ours = crds.all_crds() if installed else []
        manifests = [*ours, *kubevirt.crds(), *kubevirt.cluster_roles(),
                     kubevirt.node_object("node1"), kubevirt.node_object("node2"),
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}]
        virtapi = VirtAPIEmulator(slot_dir=lambda ns, name, uid: tmp / "no-slots")
        self.background = BackgroundAPIServer(ServerOptions(
            state_dir=tmp / "apiserver", manifests=manifests, extensions=[virtapi]))
        self.server: APIServer = self.background.start()
        self.kubeconfig = self.server.write_kubeconfig(tmp / "kubeconfig")

    def stop(self) -> None:
        self.background.stop()

    # ---- API access as the cluster admin ------------------------------------------------------

    def http(self, *, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, verify=self.server.ssl_context(),
                            headers={"Authorization": f"Bearer {token or self.server.admin_token}"},
                            timeout=30)

    def get(self, path: str) -> Obj | None:
        with self.http() as http:
            response = http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: Obj = response.json()
        return body

    def create(self, path: str, obj: Obj) -> Obj:
        with self.http() as http:
            response = http.post(path, json=obj)
        assert response.status_code == 201, response.text
        body: Obj = response.json()
        return body

    def patch(self, path: str, patch: Obj) -> Obj:
        with self.http() as http:
            response = http.patch(path, json=patch,
                                  headers={"Content-Type": "application/merge-patch+json"})
        assert response.status_code == 200, response.text
        body: Obj = response.json()
        return body

    def delete(self, path: str) -> None:
        with self.http() as http:
            response = http.delete(path)
        assert response.status_code in (200, 202), response.text

    def add_user(self, name: str) -> Path:
        """A kubeconfig for a user with no permissions (until bound to a role)."""
        token = self.background.call(lambda: self.server.add_user(
            UserInfo(name=name, groups=("system:authenticated",))))
        return self.server.write_kubeconfig(self.tmp / f"{name}.kubeconfig", token=token,
                                            user=name)

    def grant(self, user: str, rules: list[Obj], *, namespace: str | None = None) -> None:
        """Bind `user` to a role with these rules (cluster-wide without a namespace)."""
        role_name = f"{user}-role"
        if namespace is None:
            self.create("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": role_name}, "rules": rules})
            self.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": role_name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role_name},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                              "name": user}]})
            return
        base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        self.create(f"{base}/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": role_name, "namespace": namespace}, "rules": rules})
        self.create(f"{base}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role_name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": role_name},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                          "name": user}]})

    # ---- the world --------------------------------------------------------------------------

    def add_device(self, name: str, status: Obj, *, claim: Obj | None = None) -> Obj:
        self.create(f"{GROUP}/usbdevices", {
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBDevice",
            "metadata": {"name": name}, "spec": {"claimRef": claim} if claim else {}})
        return self.patch(f"{GROUP}/usbdevices/{name}/status", {"status": status})

    def add_field_notes_devices(self) -> None:
        for serial, port in (("AAA1", "2-1"), ("AAA2", "2-2")):
            self.add_device(*stick(serial, port=port))
        self.add_device(*serial_adapter())

    def add_vm(self, name: str, *, namespace: str = "default", passthrough: bool = True,
               running: bool = True) -> None:
        spec = VMSpec(name=name, namespace=namespace, client_passthrough=passthrough,
                      node="node1")
        vm = self.create(f"{KUBEVIRT}/namespaces/{namespace}/virtualmachines",
                         kubevirt.vm_object(spec))
        if not running:
            return
        self.create(f"{KUBEVIRT}/namespaces/{namespace}/virtualmachineinstances",
                    kubevirt.vmi_object(spec, vm_uid=vm["metadata"]["uid"]))
        self.patch(f"{KUBEVIRT}/namespaces/{namespace}/virtualmachineinstances/{name}/status",
                   {"status": kubevirt.vmi_status(spec, phase="Running")})

    def device(self, name: str) -> Obj:
        found = self.get(f"{GROUP}/usbdevices/{name}")
        assert found is not None
        return found

    def attachment(self, name: str, *, namespace: str = "default") -> Obj | None:
        return self.get(f"{GROUP}/namespaces/{namespace}/usbattachments/{name}")

    def attachments(self, *, namespace: str = "default") -> list[Obj]:
        found = self.get(f"{GROUP}/namespaces/{namespace}/usbattachments")
        assert found is not None
        return list(found["items"])

    def policies(self) -> list[Obj]:
        found = self.get(f"{GROUP}/usbpolicies")
        assert found is not None
        return list(found["items"])

    def bind(self, device: str, *, attachment: str, vm: str, namespace: str = "default",
             phase: str = "Attached", **status: Any) -> None:
        """Do what the controller and the agent do when they attach a device."""
        self.claim(device, attachment=attachment, vm=vm, namespace=namespace)
        self.set_phase(attachment, phase, namespace=namespace, device=device, node="node1",
                       **status)

    def claim(self, device: str, *, attachment: str, vm: str, namespace: str = "default") -> None:
        """Do what the controller does when it binds a device (spec.claimRef)."""
        self.patch(f"{GROUP}/usbdevices/{device}", {"spec": {"claimRef": {
            "namespace": namespace, "attachment": attachment, "vm": vm}}})

    def set_phase(self, attachment: str, phase: str, *, namespace: str = "default",
                  **status: Any) -> None:
        self.patch(f"{GROUP}/namespaces/{namespace}/usbattachments/{attachment}/status",
                   {"status": {"phase": phase, **status}})

    def release(self, device: str) -> None:
        self.patch(f"{GROUP}/usbdevices/{device}", {"spec": {"claimRef": None}})

    # ---- the command --------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECTL_USB")}
        env.update(KUBECONFIG=str(self.kubeconfig), PATH=f"{BIN}:{env.get('PATH', '')}",
                   HOME=str(self.tmp), PYTHONFAULTHANDLER="1")  # SIGABRT dumps every thread
        env.update(extra)
        return env

    def run(self, *args: str, env: Mapping[str, str] | None = None,
            input: str | None = None) -> Result:
        """`kubectl-usb ARGS` as a user runs it."""
        return run([str(KUBECTL_USB), *args], env=env or self.env(), input=input)

    def kubectl(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """`kubectl ARGS`, with the plugin on PATH (so `kubectl usb` finds kubectl-usb)."""
        return run(["kubectl", *args], env=env or self.env())

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`kubectl-usb ARGS` in the background (for --wait and watch)."""
        return subprocess.Popen([str(KUBECTL_USB), *args], env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)


def run(argv: list[str], *, env: Mapping[str, str], input: str | None = None) -> Result:
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, input=input,
                          timeout=120, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


class LineReader:
    """The lines a background command prints, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], *, within: float, what: str) -> str:
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.lines if predicate(line)]
            return bool(found)

        wait_until(seen, timeout=within, what=what)
        return found[0]

    def interrupt(self) -> int:
        """Ctrl-C, as a person stops it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        code = exit_code(self.process, within=60)
        self._thread.join(timeout=10)
        return code


def exit_code(process: subprocess.Popen[str], *, within: float) -> int:
    """The command's exit code once it has ended; one that does not end within `within`
    seconds fails the test with where each of its threads was (faulthandler's dump on SIGABRT).
    """
    try:
        return process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        dump = process.stderr.read() if process.stderr is not None else ""
        raise AssertionError(f"{process.args!r} did not end within {within} s; where it was:\n"
                             f"{dump}") from None


def one_line_error(result: Result) -> str:
    """The error a failed command printed: exactly one line, `error: ...`, no traceback."""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


class StderrLines:
    """A running command's stderr, line by line as it writes it (its progress lines), so a test
    can wait for one before changing what the command waits on."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def shown(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for line in self.lines)

    def text(self) -> str:
        """Everything, once the command has exited."""
        self._reader.join(timeout=10)
        return "".join(self.lines)
