"""A cluster for the controller's tests, and a kit to populate it like a user and an admin would.

Each test gets a fresh API emulator with the project's CRDs, KubeVirt's CRDs and roles, and the
shipped user roles. With `KUBEVIRT_USB_TEST_KUBECONFIG` (a cluster-admin kubeconfig of a real
kube-apiserver) the tests that take `cluster` run there instead, unchanged: every name is unique
per test, CRDs are installed when missing, and users are ServiceAccounts with TokenRequest tokens.

    async def test_x(kit: Kit) -> None:
        await kit.vm("vm1")
        await kit.device("dev-a", serial="AAA1")
        await kit.allow(serial="AAA1")
        await kit.attach("a1", vm="vm1", serial="AAA1")
        await kit.wait_phase("a1", "Bound")
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from lightkube import ALL_NS
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Event, Namespace, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, RoleBinding

from kubevirt_usb import crds
from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from kubevirt_usb.clock import micro_time
from kubevirt_usb.controller.manager import Controller, ControllerOptions
from kubevirt_usb.kube.client import KubeClient, connect
from kubevirt_usb.kube.config import load_config
from kubevirt_usb.kube.errors import AlreadyExists, NotFound
from kubevirt_usb.kube.objects import Obj
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

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
USER_ROLES = REPO / "deploy" / "base" / "user-roles.yaml"
REAL_KUBECONFIG = os.environ.get("KUBEVIRT_USB_TEST_KUBECONFIG")


def user_roles() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(USER_ROLES.read_text()) if d]


def base_manifests() -> list[dict[str, Any]]:
    return [*crds.all_crds(), *kubevirt.crds(), *kubevirt.cluster_roles(), *user_roles()]


@dataclass
class Cluster:
    """A kube-apiserver (the emulator, or a real one) and a cluster-admin kubeconfig."""

    kubeconfig: Path
    emulator: APIServer | None = None

    def client(self, *, field_manager: str = "kubevirt-usb-test",
               kubeconfig: Path | None = None) -> KubeClient:
        return connect(load_config(kubeconfig=kubeconfig or self.kubeconfig),
                       field_manager=field_manager, timeout=30.0)

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        config = yaml.safe_load(self.kubeconfig.read_text())
        for user in config["users"]:
            user["user"] = {"token": token}
        path.write_text(yaml.safe_dump(config))
        return path


@contextlib.contextmanager
def emulated_cluster(state_dir: Path) -> Iterator[Cluster]:
    background = BackgroundAPIServer(ServerOptions(state_dir=state_dir,
                                                   manifests=base_manifests()))
    server = background.start()
    try:
        yield Cluster(kubeconfig=server.write_kubeconfig(state_dir / "kubeconfig"),
                      emulator=server)
    finally:
        background.stop()


async def wait_for(probe: Callable[[], Awaitable[T | None]], *, what: str,
                   timeout: float = 30.0, interval: float = 0.02) -> T:
    """Ask `probe` until it answers something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)



@dataclass
class Kit:
    """One test's namespace and the admin's hands (see the module docstring)."""

    cluster: Cluster
    client: KubeClient
    namespace: str
    system_namespace: str
    tag: str
    tmp: Path
    controllers: list[asyncio.Task[None]] = field(default_factory=list)
    clients: list[KubeClient] = field(default_factory=list)

    def name(self, base: str) -> str:
        """A cluster-wide unique name for a cluster-scoped object."""
        return f"{self.tag}-{base}"

    # ---- objects ---------------------------------------------------------------------------

    async def vm(self, name: str, *, passthrough: bool = True, running: bool = True,
                 node: str = "node1", namespace: str | None = None) -> tuple[Obj, Obj | None]:
        spec = VMSpec(namespace=namespace or self.namespace, name=name,
                               client_passthrough=passthrough, node=node)
        vm = await self.client.create(VirtualMachine, kubevirt.vm_object(spec))
        vmi = await self.start_vmi(name, node=node, passthrough=passthrough,
                                   namespace=spec.namespace) if running else None
        return vm, vmi

    async def start_vmi(self, name: str, *, node: str = "node1", passthrough: bool = True,
                        namespace: str | None = None, phase: str = "Running") -> Obj:
        ns = namespace or self.namespace
        spec = VMSpec(namespace=ns, name=name, client_passthrough=passthrough,
                               node=node)
        vm = await self.client.get(VirtualMachine, name, namespace=ns)
        await self.client.create(VirtualMachineInstance,
                                       kubevirt.vmi_object(spec, vm_uid=vm["metadata"]["uid"]))
        return await self.client.patch(VirtualMachineInstance.Status, name,
                                       {"status": kubevirt.vmi_status(spec, phase=phase)},
                                       namespace=ns)

    async def stop_vmi(self, name: str) -> None:
        await self.client.delete(VirtualMachineInstance, name, namespace=self.namespace)
        await wait_for(lambda: self._gone(VirtualMachineInstance, name, self.namespace),
                       what=f"VMI {name} deleted")

    async def _gone(self, res: type, name: str, namespace: str | None) -> bool:
        try:
            await self.client.get(res, name, namespace=namespace)
        except NotFound:
            return True
        return False

    async def device(self, base: str, *, serial: str | None = None, vendor: str = "46f4",
                     product: str = "0001", node: str = "node1", port: str = "1-1",
                     present: bool = True, product_name: str = "QEMU USB HARDDRIVE",
                     claim: dict[str, Any] | None = None) -> Obj:
        """A USBDevice as a node agent publishes it (name made unique: `kit.name(base)`)."""
        name = self.name(base)
        body: dict[str, Any] = {"apiVersion": "usb.kubevirt-usb.io/v1alpha1",
                                "kind": "USBDevice", "metadata": {"name": name}, "spec": {}}
        if claim is not None:
            body["spec"]["claimRef"] = claim
        await self.client.create(USBDevice, body)
        return await self.client.patch(USBDevice.Status, name, {"status": self.device_status(
            serial=serial, vendor=vendor, product=product, node=node, port=port,
            present=present, product_name=product_name)})

    def device_status(self, *, serial: str | None, vendor: str, product: str, node: str,
                      port: str, present: bool, product_name: str) -> dict[str, Any]:
        key = serial or f"{node}/{port}"
        return {"node": node, "identity": {"tier": "serial" if serial else "port", "key": key},
                "portPath": port, "vendorId": vendor, "productId": product,
                "productName": product_name, "product": product_name, "serial": serial,
                "present": present, "state": "Available" if present else "Absent"}

    async def set_present(self, base: str, present: bool) -> Obj:
        return await self.client.patch(USBDevice.Status, self.name(base), {"status": {
            "present": present, "state": "Available" if present else "Absent"}})

    async def allow(self, *, namespaces: list[str] | None = None, base: str = "policy",
                    **selector: str) -> Obj:
        body = {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
                "metadata": {"name": self.name(base)},
                "spec": {"namespaces": namespaces or [self.namespace], "devices": selector}}
        return await self.client.create(USBPolicy, body)

    async def attach(self, name: str, *, vm: str, namespace: str | None = None,
                     client: KubeClient | None = None, **selector: str) -> Obj:
        body = {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
                "metadata": {"name": name, "namespace": namespace or self.namespace},
                "spec": {"vm": vm, "device": selector}}
        return await (client or self.client).create(USBAttachment, body)

    async def heartbeat(self, node: str, *, duration: int = 30) -> Obj:
        """Renew node's agent Lease as the agent does (create it the first time)."""
        name = f"kubevirt-usb-agent-{node}"
        spec = {"holderIdentity": node, "leaseDurationSeconds": duration,
                "renewTime": micro_time(dt.datetime.now(dt.UTC))}
        try:
            return await self.client.create(Lease, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": self.system_namespace}, "spec": spec})
        except AlreadyExists:
            return await self.client.patch(Lease, name, {"spec": spec},
                                           namespace=self.system_namespace)

    # ---- reading ---------------------------------------------------------------------------

    async def attachment(self, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.client.get(USBAttachment, name,
                                         namespace=namespace or self.namespace)
        except NotFound:
            return None

    async def get_device(self, base: str) -> Obj:
        return await self.client.get(USBDevice, self.name(base))

    async def wait_phase(self, name: str, phase: str, *, timeout: float = 30.0,
                         device: str | None = None) -> Obj:
        async def probe() -> Obj | None:
            obj = await self.attachment(name)
            st = (obj or {}).get("status") or {}
            if st.get("phase") == phase and (device is None or st.get("device") == device):
                return obj
            return None
        where = f" on {device}" if device else ""
        return await wait_for(probe, what=f"attachment {name} {phase}{where}",
                              timeout=timeout)

    async def wait_claim(self, base: str, attachment: str | None, *,
                         timeout: float = 30.0) -> Obj:
        """Until the device's claimRef names `attachment` (None: until it is free)."""
        async def probe() -> Obj | None:
            obj = await self.get_device(base)
            ref = (obj.get("spec") or {}).get("claimRef")
            holder = ref.get("attachment") if ref else None
            return obj if holder == attachment else None
        return await wait_for(probe, what=f"device {base} claimed by {attachment}",
                              timeout=timeout)

    async def wait_gone(self, name: str, *, timeout: float = 30.0) -> None:
        await wait_for(lambda: self._gone(USBAttachment, name, self.namespace),
                       what=f"attachment {name} gone", timeout=timeout)

    async def events(self, *, name: str, namespace: str | None = None) -> list[Obj]:
        listed = await self.client.list(Event, namespace=namespace or self.namespace)
        return [e for e in listed.items if (e.get("involvedObject") or {}).get("name") == name]

    async def wait_event(self, *, name: str, reason: str, namespace: str | None = None,
                         timeout: float = 30.0) -> Obj:
        async def probe() -> Obj | None:
            found = [e for e in await self.events(name=name, namespace=namespace)
                     if e.get("reason") == reason]
            return found[0] if found else None
        return await wait_for(probe, what=f"Event {reason} about {name}", timeout=timeout)

    # ---- users and the controller ----------------------------------------------------------

    async def user(self, name: str, *, role: str, namespace: str | None = None) -> KubeClient:
        """A ServiceAccount with `role` (ClusterRole) bound in `namespace`, as a client."""
        ns = namespace or self.namespace
        await self.client.create(ServiceAccount, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                  "metadata": {"name": name, "namespace": ns}})
        await self.client.create(RoleBinding, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{name}-{role}", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})
        token = await self.token(name, ns)
        path = self.cluster.kubeconfig_for(token, self.tmp / f"{ns}-{name}.kubeconfig")
        client = self.cluster.client(kubeconfig=path, field_manager=f"user-{name}")
        self.clients.append(client)
        return client

    async def token(self, name: str, namespace: str) -> str:
        """A TokenRequest token for the ServiceAccount `namespace/name`."""
        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=name, namespace=namespace),
            spec=TokenRequestSpec(audiences=[], expirationSeconds=3600))
        answer = await self.client.lightkube.create(request, name, namespace=namespace)
        assert answer.status is not None, "the TokenRequest was not answered"
        return str(answer.status.token)

    def options(self, **overrides: Any) -> ControllerOptions:
        values: dict[str, Any] = {"namespace": self.system_namespace,
                                  "identity": f"controller-{self.tag}",
                                  "election_lease": f"kubevirt-usb-controller-{self.tag}",
                                  "lease_duration": 3.0, "renew_deadline": 2.0,
                                  "retry_period": 0.25}
        return ControllerOptions(**{**values, **overrides})

    async def start_controller(self, **overrides: Any) -> Controller:
        """A controller (no election) running on this loop until the test ends."""
        client = self.cluster.client(field_manager="kubevirt-usb-controller")
        self.clients.append(client)
        controller = Controller(client, self.options(**overrides))
        task = asyncio.ensure_future(controller.run())
        self.controllers.append(task)
        waiter = asyncio.ensure_future(controller.synced.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED, timeout=30)
        if task.done():
            task.result()
        assert controller.synced.is_set(), "the controller did not sync"
        return controller

    async def close(self) -> None:
        for task in self.controllers:
            task.cancel()
        await asyncio.gather(*self.controllers, return_exceptions=True)
        for client in [*self.clients, self.client]:
            await client.close()


async def ensure_base(client: KubeClient) -> None:
    """Install the CRDs and roles the tests need when a real cluster lacks them, and wait
    until the CRDs are served."""
    for obj in base_manifests():
        res = CustomResourceDefinition if obj["kind"] == "CustomResourceDefinition" \
            else ClusterRole
        with contextlib.suppress(AlreadyExists):
            await client.create(res, obj)

    async def served() -> bool:
        try:
            for cluster_scoped in (USBDevice, USBPolicy):
                await client.list(cluster_scoped)
            for namespaced in (USBAttachment, VirtualMachine, VirtualMachineInstance):
                await client.list(namespaced, namespace=ALL_NS)
        except NotFound:
            return False
        return True

    await wait_for(served, what="the CRDs served", timeout=60)


@contextlib.asynccontextmanager
async def make_kit(cluster: Cluster, tmp: Path) -> AsyncIterator[Kit]:
    tag = uuid.uuid4().hex[:6]
    client = cluster.client(field_manager="kubevirt-usb-test")
    if cluster.emulator is None:
        await ensure_base(client)
    namespace, system = f"ctl-{tag}", f"kvu-{tag}"
    for ns in (namespace, system):
        await client.create(Namespace, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}})
    kit = Kit(cluster=cluster, client=client, namespace=namespace, system_namespace=system,
              tag=tag, tmp=tmp)
    try:
        yield kit
    finally:
        await kit.close()
