"""What the web UI's tests stand on: an API emulator seeded with nodes' devices (one with markup
and control characters in its product string), VMs, a policy and three users, and the UI served
on its own thread against it."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ssl
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx

from kubevirt_usb import crds
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from kubevirt_usb.models import API_VERSION
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.scenario import VMSpec
from kubevirt_usb.web import rbac
from kubevirt_usb.web.app import build_app
from kubevirt_usb.web.config import WebConfig
from kubevirt_usb.web.context import WebContext
from kubevirt_usb.web.kubeapi import UserAPI
from kubevirt_usb.web.server import RunningWeb, start

T = TypeVar("T")
EVIL_PRODUCT = '<script>alert("pwned")</script><img src=x onerror=alert(1)>\x1b[31mRED\u202e'
ALICE = "alice-token-0123456789"  # edits namespace default, sees the devices
MALLORY = "mallory-token-0123456789"  # sees the devices, nothing in default
VERA = "vera-token-0123456789"  # views namespace default, sees the devices
EVE = "eve-token-0123456789"  # no rights; her name (from an IdP) holds a bidi override
EVE_NAME = "eve\u202egnp.exe"
NOW = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # when the seed was "published"


def device(name: str, *, node: str, port: str, serial: str | None, product: str,
           vid: str = "46f4", pid: str = "0001", claim: dict[str, str] | None = None,
           present: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """A USBDevice and the status its node's agent would publish."""
    obj = {"apiVersion": API_VERSION, "kind": "USBDevice", "metadata": {"name": name},
           "spec": {"claimRef": claim} if claim else {}}
    status: dict[str, Any] = {
        "node": node, "portPath": port, "vendorId": vid, "productId": pid,
        "identity": {"tier": "serial" if serial else "port",
                     "key": serial or f"{node}/{port}"},
        "vendorName": "QEMU", "productName": "QEMU USB HARDDRIVE", "manufacturer": "QEMU",
        "product": product, "present": present, "state": "Available" if present else "Absent",
        "lastSeen": NOW}
    if serial:
        status["serial"] = serial
    if not present:
        status["absentSince"] = NOW
    return obj, status


def devices() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        device("46f4-0001-aaa1", node="node1", port="2-1", serial="AAA1",
               product="QEMU USB HARDDRIVE"),
        device("46f4-0001-aaa2", node="node1", port="2-2", serial="AAA2",
               product="QEMU USB HARDDRIVE",
               claim={"namespace": "default", "attachment": "vm2-held", "vm": "vm2"}),
        device("0403-6001-ft0001", node="node1", port="2-3", serial="FT0001",
               product="FT232 Serial", vid="0403", pid="6001"),
        device("46f4-0001-evil", node="node2", port="1-4", serial="EVIL\x07<b>1</b>",
               product=EVIL_PRODUCT),
        device("46f4-0001-gone", node="node2", port="1-5", serial="GONE1",
               product="Unplugged stick", present=False),
    ]


class Cluster:
    """The seeded API emulator, and admin HTTP access to it."""

    def __init__(self, state_dir: Path) -> None:
        self.background = BackgroundAPIServer(ServerOptions(state_dir=state_dir,
                                                            bookmark_interval=1.0))
        self.server: APIServer = self.background.start()
        self.server.add_user(UserInfo(name="alice", groups=("system:authenticated",)),
                             token=ALICE)
        self.server.add_user(UserInfo(name="mallory", groups=("system:authenticated",)),
                             token=MALLORY)
        self.server.add_user(UserInfo(name="vera", groups=("system:authenticated",)),
                             token=VERA)
        self.server.add_user(UserInfo(name=EVE_NAME, groups=("system:authenticated",)),
                             token=EVE)
        for obj in [*crds.all_crds(), *kubevirt.crds(), *kubevirt.cluster_roles(),
                    *rbac.shipped_user_roles(), rbac.namespace_role("alice", namespace="default"),
                    rbac.namespace_role("vera", namespace="default", role="view"),
                    rbac.device_viewer("alice"), rbac.device_viewer("mallory"),
                    rbac.device_viewer("vera")]:
            self.background.call(functools.partial(self.server.create_object, obj))

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, *, token: str | None = None) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.server.certificate.ca_path))
        return httpx.Client(base_url=self.url, verify=verify,
                            timeout=30, headers={"Authorization":
                                                 f"Bearer {token or self.server.admin_token}"})

    def create(self, obj: dict[str, Any], status: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Create `obj` as the admin (and then set its status, as its controller would)."""
        path = _path(obj)
        with self.http() as http:
            answer = http.post(path, json=obj)
            answer.raise_for_status()
            created: dict[str, Any] = answer.json()
            if status is not None:
                created = self.set_status(created, status)
        return created

    def set_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        with self.http() as http:
            answer = http.patch(f"{_path(obj)}/{name}/status", json={"status": status},
                                headers={"Content-Type": "application/merge-patch+json"})
            answer.raise_for_status()
            patched: dict[str, Any] = answer.json()
            return patched

    def get(self, obj_path: str) -> dict[str, Any] | None:
        with self.http() as http:
            answer = http.get(obj_path)
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
            found: dict[str, Any] = answer.json()
            return found

    def list(self, obj_path: str) -> list[dict[str, Any]]:
        with self.http() as http:
            answer = http.get(obj_path)
            answer.raise_for_status()
            return list(answer.json()["items"])

    def seed(self) -> None:
        for obj, status in devices():
            self.create(obj, status)
        for name in ("vm1", "vm2"):
            self.add_vm(name)
        self.create({"apiVersion": API_VERSION, "kind": "USBPolicy",
                     "metadata": {"name": "default-sticks"},
                     "spec": {"namespaces": ["default"], "devices": {"vendorId": "46f4"}}})
        held = self.create({"apiVersion": API_VERSION, "kind": "USBAttachment",
                            "metadata": {"name": "vm2-held", "namespace": "default"},
                            "spec": {"vm": "vm2", "device": {"serial": "AAA2"}}})
        self.set_status(held, {"phase": "Attached", "device": "46f4-0001-aaa2",
                               "node": "node1", "bytesToVM": 123456,
                               "bytesFromVM": 789, "attachedSince": NOW,
                               "path": "Local", "pathReason": "SameNode", "slot": 3,
                               "slotKind": "Direct",
                               "pathMessage": "The VM runs on this node: streaming straight "
                                              "into usb-redir slot 3."})

    def add_vm(self, name: str, *, namespace: str = "default") -> None:
        spec = VMSpec(namespace=namespace, name=name, client_passthrough=True, node="node1")
        created = self.create(kubevirt.vm_object(spec), kubevirt.vm_status(running=True))
        self.create(kubevirt.vmi_object(spec, vm_uid=created["metadata"]["uid"]),
                    kubevirt.vmi_status(spec, phase="Running"))

    def stop(self) -> None:
        self.background.stop()


def _path(obj: dict[str, Any]) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    plural = {"USBDevice": "usbdevices", "USBAttachment": "usbattachments",
              "USBPolicy": "usbpolicies", "VirtualMachine": "virtualmachines",
              "VirtualMachineInstance": "virtualmachineinstances", "Event": "events"}[obj["kind"]]
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    namespace = obj["metadata"].get("namespace")
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{plural}"


class WebThread:
    """The UI served on its own thread and event loop, against `cluster`."""

    def __init__(self, cluster: Cluster, *, auth: str = "login", secure_cookies: bool = True,
                 now: Callable[[], dt.datetime] | None = None) -> None:
        self.cluster = cluster
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="kubevirt-usb-web-test")
        self.config = WebConfig(auth=auth, secure_cookies=secure_cookies)  # type: ignore[arg-type]
        self._now = now
        self.context: WebContext | None = None
        self.running: RunningWeb | None = None

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> WebThread:
        self._thread.start()
        self.running = self.run(self._start())
        return self

    async def _start(self) -> RunningWeb:
        verify = ssl.create_default_context(cafile=str(self.cluster.server.certificate.ca_path))
        self.context = WebContext.create(self.config,
                                         api=UserAPI(server=self.cluster.url, verify=verify),
                                         now=self._now)
        return await start(build_app(self.context))

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    def stop(self) -> None:
        if self.running is not None:
            self.run(self.running.stop())
            assert self.context is not None
            self.run(self.context.api.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

