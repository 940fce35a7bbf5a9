"""The cluster in a box: the API emulator with the virt-api emulator mounted, QEMU node guests with
emulated USB devices, QEMU VM guests behind KubeVirt's usb-redir slots, and the Node, VM and VMI
objects that mirror them, all on one asyncio loop.

With `apiserver_kubeconfig` the same guests and components run against a real kube-apiserver the
user brings instead (sandbox/realplane.py), the virt-api emulator served as an aggregated API.

`Sandbox` is what tests, benchmarks and `kubevirt-usb sandbox up` stand on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevirt_usb import crds
from kubevirt_usb.apiserver.kubeconfig import write_kubeconfig
from kubevirt_usb.apiserver.server import APIServer
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.components import (
    NAMESPACE,
    ComponentError,
    Components,
    agent_log,
    agent_ready,
    controller_identities,
    install_manifests,
)
from kubevirt_usb.sandbox.controlplane import (
    LEASES,
    NODES,
    PODS,
    USB_DEVICES,
    VMIS,
    VMS,
    ControlPlane,
    ControlPlaneError,
    EmulatorPlane,
)
from kubevirt_usb.sandbox.fault_proxy import FaultProxy
from kubevirt_usb.sandbox.guest import BOOT_TIMEOUT, ExecResult, GuestError
from kubevirt_usb.sandbox.guest_image import GuestImage, build_guest_image
from kubevirt_usb.sandbox.launcher import (
    Launcher,
    SlotBridge,
    kill_standin,
    mount_cgroup2,
    start_standin,
)
from kubevirt_usb.sandbox.node_guest import NodeGuest, compile_project
from kubevirt_usb.sandbox.scenario import DeviceSpec, NodeSpec, Scenario, VMSpec
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from kubevirt_usb.sandbox.vm_guest import VMGuest

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
VMKey = tuple[str, str]


class SandboxError(RuntimeError):
    """Something in the cluster in a box cannot be done; the message says what and why."""


@dataclass
class SandboxOptions:
    scenario: Scenario
    state_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 0
    image: GuestImage | None = None  # None: build (or take from the cache) at start
    image_cache: Path | None = None
    progress: Progress = field(default=lambda message: log.info("%s", message))
    extra_manifests: list[dict[str, Any]] = field(default_factory=list)
    components: bool = True  # run the node agents and the controller, as an install would
    components_timeout: float = 600.0  # agents start Python inside TCG guests: minutes when busy
    apiserver_kubeconfig: Path | None = None  # a real kube-apiserver instead of the emulator
    controller_replicas: int = 1  # more: they elect a leader through their Lease
    api_proxy: bool = False  # the product reaches the API through a `FaultProxy` (`fault_proxy`)
    boot_timeout: float = BOOT_TIMEOUT  # per guest (a soak on a loaded machine needs more)


class Sandbox:
    """One cluster in a box. `start()` returns when every guest is up and mirrored in the API."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.scenario = options.scenario
        self.state_dir = options.state_dir
        self.nodes: dict[str, NodeGuest] = {}
        self.vms: dict[VMKey, VMGuest] = {}
        self.launchers: dict[VMKey, Launcher] = {}
        self.virtapi = VirtAPIEmulator(slot_dir=self._slot_dir)
        self.plane: ControlPlane = self._new_plane(options)
        self._started = False
        self._image: GuestImage | None = options.image
        self.components: Components | None = None
        self.fault_proxy: FaultProxy | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def _new_plane(self, options: SandboxOptions) -> ControlPlane:
        if options.apiserver_kubeconfig is None:
            return EmulatorPlane(virtapi=self.virtapi, state_dir=self.state_dir / "apiserver",
                                 host=options.api_host, port=options.api_port)
        from kubevirt_usb.sandbox.realplane import RealPlane

        return RealPlane(kubeconfig=options.apiserver_kubeconfig, virtapi=self.virtapi,
                         state_dir=self.state_dir / "real-apiserver", progress=options.progress)

    @property
    def on_real_apiserver(self) -> bool:
        return self.plane.kind == "real"

    @property
    def api(self) -> APIServer:
        """The API emulator (web UI, demo, tests of the emulator itself)."""
        if not self._started:
            raise SandboxError("the sandbox has not been started")
        if not isinstance(self.plane, EmulatorPlane):
            raise SandboxError("this sandbox runs against a real API server, not the emulator")
        return self.plane.api

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        report = self.options.progress
        try:
            await self._start_api(report)
            image = await self._guest_image(report)
            await self._start_guests(image, report)
            if self.options.components:
                await self._start_components(report)
        except BaseException:
            await self.stop()
            raise

    async def _start_api(self, report: Progress) -> None:
        if self.on_real_apiserver:
            report("installing KubeVirt's CRDs, the product's CRDs and RBAC on the real API "
                   "server")
        else:
            report("starting the API emulator with the virt-api emulator")
        manifests = [*kubevirt.crds(), *crds.all_crds(), *kubevirt.cluster_roles(),
                     *(kubevirt.node_object(n.name) for n in self.scenario.nodes),
                     *self.options.extra_manifests]
        namespaces = sorted({vm.namespace for vm in self.scenario.vms} - {"default"})
        manifests += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                      for ns in namespaces]
        self._started = True
        try:
            await self.plane.start(manifests=manifests)
        except ControlPlaneError as exc:
            raise SandboxError(str(exc)) from exc
        write_kubeconfig(self.kubeconfig_path, self.plane.admin_kubeconfig())
        what = "real API server" if self.on_real_apiserver else "API emulator"
        report(f"{what} ready at {self.plane.url}")

    async def _guest_image(self, report: Progress) -> GuestImage:
        if self._image is None:
            cache = self.options.image_cache
            self._image = await asyncio.to_thread(build_guest_image, cache_dir=cache,
                                                  progress=report)
        return self._image

    async def _start_guests(self, image: GuestImage, report: Progress) -> None:
        await asyncio.to_thread(compile_project)
        work = self.state_dir / "guests"
        work.mkdir(parents=True, exist_ok=True)
        for node in self.scenario.nodes:
            self.nodes[node.name] = NodeGuest(node, image=image, work_dir=work,
                                              boot_timeout=self.options.boot_timeout)
        starts: list[Awaitable[None]] = []
        for node_guest in self.nodes.values():
            starts.append(self._start_node(node_guest, report))
        for vm in self.scenario.vms:
            starts.append(self._start_vm(vm, image=image, work=work, report=report))
        await asyncio.gather(*starts)
        await asyncio.gather(*(mount_cgroup2(g) for g in self.nodes.values()))
        await asyncio.gather(*(self._launch_vmi(key) for key in self.vms))

    @staticmethod
    async def _boot(what: str, start: Awaitable[None], report: Progress) -> None:
        report(f"booting {what}")
        await start
        report(f"{what} is up")

    async def _start_node(self, guest: NodeGuest, report: Progress) -> None:
        await self._boot(f"node {guest.name}", guest.start(), report)
        await self._set_node_ready(guest, ready=True)

    async def _set_node_ready(self, guest: NodeGuest, *, ready: bool) -> None:
        current = await self.plane.get(NODES, name=guest.name)
        if current is None:
            return
        status = kubevirt.node_status(ready=ready, kernel_release=guest.image.kernel_release)
        await self.plane.update_status(NODES, {**current, "status": status})

    async def _start_vm(self, vm: VMSpec, *, image: GuestImage, work: Path,
                        report: Progress) -> None:
        vm_obj = await self._write(kubevirt.vm_object(vm))
        vmi = await self._new_vmi(vm, vm_uid=vm_obj["metadata"]["uid"])
        guest = VMGuest(vm, image=image, vmi_uid=vmi["metadata"]["uid"], work_dir=work,
                        boot_timeout=self.options.boot_timeout)
        self.vms[(vm.namespace, vm.name)] = guest
        await self._boot(f"VM {vm.namespace}/{vm.name}", guest.start(), report)

    async def _launch_vmi(self, key: VMKey) -> None:
        """The VMI's launcher Pod and its stand-in on the VM's node, then the VMI is Running."""
        await self._start_launcher(key)
        await self._set_running(self.vms[key].vm, running=True)

    async def _start_launcher(self, key: VMKey) -> Launcher:
        guest = self.vms[key]
        vm = guest.vm
        pod = await self.plane.create(PODS, kubevirt.launcher_pod_object(
            vm, vmi_uid=guest.vmi_uid, suffix=secrets.token_hex(3)[:5]))
        bridge = SlotBridge({slot: guest.usbredir_socket(slot) for slot in range(guest.slots)})
        await bridge.start()
        launcher = Launcher(namespace=vm.namespace, vm=vm.name, node=vm.node,
                            vmi_uid=guest.vmi_uid, pod_name=pod["metadata"]["name"],
                            pod_uid=pod["metadata"]["uid"], bridge=bridge)
        self.launchers[key] = launcher
        await start_standin(self.node(vm.node), launcher, python=sys.executable)
        await self._set_pod_running(launcher, running=True)
        return launcher

    async def _stop_launcher(self, key: VMKey) -> None:
        """As KubeVirt and the kubelet end a launcher Pod: it is deleted (Terminating: bound to
        a node, it waits for its kubelet), its containers stop, and the kubelet the sandbox
        plays confirms the deletion with grace period 0, which removes it."""
        launcher = self.launchers.pop(key, None)
        if launcher is None:
            return
        present = await self.plane.get(PODS, namespace=launcher.namespace,
                                       name=launcher.pod_name) is not None
        if present:
            await self.plane.delete(PODS, namespace=launcher.namespace, name=launcher.pod_name)
        node = self.nodes.get(launcher.node)
        if node is not None:
            await kill_standin(node, launcher, remove_root=True)
        await launcher.bridge.stop()
        if present:
            await self.plane.delete(PODS, namespace=launcher.namespace, name=launcher.pod_name,
                                    grace_period_seconds=0)

    async def _set_pod_running(self, launcher: Launcher, *, running: bool) -> None:
        current = await self.plane.get(PODS, namespace=launcher.namespace,
                                       name=launcher.pod_name)
        if current is None:
            return
        await self.plane.update_status(PODS, {**current, "status": kubevirt.launcher_pod_status(
            running=running)})

    async def _start_components(self, report: Progress) -> None:
        components = Components(plane=self.plane, state_dir=self.state_dir)
        self.components = components
        if self.options.api_proxy:
            self.fault_proxy = FaultProxy(target_port=self.plane.port)
            await self.fault_proxy.start()
            components.client_port = self.fault_proxy.port
        try:
            for obj in install_manifests():
                await self._write(obj)
        except (ComponentError, ControlPlaneError) as exc:
            raise SandboxError(str(exc)) from exc
        report("starting the controller and the node agents")
        for identity in controller_identities(self.options.controller_replicas):
            await components.start_controller(identity)
        await asyncio.gather(*(components.start_agent(g) for g in self.nodes.values()))
        await self._wait_components_ready(components, report)

    async def _wait_components_ready(self, components: Components, report: Progress) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.components_timeout
        waiting = set(self.nodes)
        while True:
            failed = components.controller_failed()
            if failed is not None:
                raise SandboxError(failed)
            for node in sorted(waiting):
                if await self._agent_published(node) and await agent_ready(self.nodes[node]):
                    report(f"node {node}: the agent published its devices")
                    waiting.discard(node)
            if not waiting and await self._controller_leading():
                report("the controller holds its election lease")
                return
            if loop.time() > deadline:
                logs = [f"node {n} agent log:\n{await agent_log(self.nodes[n])}"
                        for n in sorted(waiting)]
                raise SandboxError("the product did not become ready within "
                                   f"{self.options.components_timeout:.0f} s\n" + "\n".join(logs))
            await asyncio.sleep(0.2)

    async def _agent_published(self, node: str) -> bool:
        """A cheap first sign (no guest round trip): the agent's Lease and the devices with a
        serial are there; `agent_ready` then asks the agent whether its first publish is done."""
        if await self.plane.get(LEASES, namespace=NAMESPACE,
                                name=f"kubevirt-usb-agent-{node}") is None:
            return False
        guest = self.nodes[node]
        wanted = {d.serial for d in guest.node.devices if d.serial and guest.is_plugged(d.id)}
        published = {(o.get("status") or {}).get("serial")
                     for o in await self.plane.list(USB_DEVICES)
                     if (o.get("status") or {}).get("node") == node}
        return wanted <= published

    async def _controller_leading(self) -> bool:
        lease = await self.plane.get(LEASES, namespace=NAMESPACE, name="kubevirt-usb-controller")
        return lease is not None and bool((lease.get("spec") or {}).get("holderIdentity"))

    async def stop(self) -> None:
        """Stop every guest and the API emulator; nothing is left running (and on a real API
        server nothing the sandbox created is left)."""
        if self.components is not None:
            await self.components.stop()
        for launcher in self.launchers.values():
            await launcher.bridge.stop()
        if self.fault_proxy is not None:
            await self.fault_proxy.stop()
        guests = [*self.vms.values(), *self.nodes.values()]
        results = await asyncio.gather(*(g.stop() for g in guests), return_exceptions=True)
        for guest, result in zip(guests, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("stopping guest %s failed: %s", guest.name, result)
        if self._started:
            await self.plane.stop()

    # ---- the API mirror ---------------------------------------------------------------------

    async def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.plane.apply(obj)

    async def _new_vmi(self, vm: VMSpec, *, vm_uid: str) -> dict[str, Any]:
        created = await self.plane.create(VMIS, kubevirt.vmi_object(vm, vm_uid=vm_uid))
        return await self._set_vmi_phase(vm, "Scheduled") or created

    async def _set_vmi_phase(self, vm: VMSpec, phase: str) -> dict[str, Any] | None:
        current = await self.plane.get(VMIS, namespace=vm.namespace, name=vm.name)
        if current is None:
            return None
        launcher = self.launchers.get((vm.namespace, vm.name))
        pods = {launcher.pod_uid: launcher.node} if launcher is not None else None
        body = {**current, "status": kubevirt.vmi_status(vm, phase=phase, active_pods=pods)}
        return await self.plane.update_status(VMIS, body)

    async def _set_running(self, vm: VMSpec, *, running: bool) -> None:
        if running:
            await self._set_vmi_phase(vm, "Running")
        current = await self.plane.get(VMS, namespace=vm.namespace, name=vm.name)
        if current is not None:
            await self.plane.update_status(
                VMS, {**current, "status": kubevirt.vm_status(running=running)})

    async def _delete_vmi(self, vm: VMSpec) -> None:
        if await self.plane.get(VMIS, namespace=vm.namespace, name=vm.name) is None:
            return
        if not await self.plane.delete(VMIS, namespace=vm.namespace, name=vm.name):
            raise SandboxError(f"the VMI {vm.namespace}/{vm.name} has finalizers and cannot be "
                               "replaced")

    def _slot_dir(self, namespace: str, name: str, uid: str) -> Path:
        guest = self.vms.get((namespace, name))
        if guest is None or guest.vmi_uid != uid or not guest.running:
            return self.state_dir / "no-such-vmi" / uid
        return guest.usbredir_dir

    # ---- what users do ----------------------------------------------------------------------

    def node(self, name: str) -> NodeGuest:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise SandboxError(f"no node {name!r} in the sandbox (nodes: {known})") from None

    def vm(self, namespace: str, name: str) -> VMGuest:
        try:
            return self.vms[(namespace, name)]
        except KeyError:
            known = ", ".join(f"{ns}/{n}" for ns, n in sorted(self.vms)) or "none"
            raise SandboxError(f"no VM {namespace}/{name} in the sandbox (VMs: {known})") \
                from None

    def device(self, node: str, ref: str) -> DeviceSpec:
        """A node's device by its serial (`AAA2`) or, when it has none, its scenario id."""
        spec: NodeSpec = self.node(node).node
        for device in spec.devices:
            if device.serial == ref:
                return device
        for device in spec.devices:
            if device.id == ref:
                return device
        known = ", ".join(d.serial or d.id for d in spec.devices) or "none"
        raise SandboxError(f"node {node} has no device {ref!r} (devices: {known})")

    async def plug(self, node: str, ref: str, *, port: str | None = None) -> str:
        device = self.device(node, ref)
        guest = self.node(node)
        if guest.is_plugged(device.id) and port is None:
            raise SandboxError(f"{ref} is already plugged into {node} (port "
                               f"{guest.port_of(device.id)})")
        if guest.is_plugged(device.id):
            await guest.move(device.id, port=port or guest.port_of(device.id))
        else:
            await guest.plug(device.id, port=port)
        await guest.wait_for_devices()  # returns once the node's kernel has enumerated it
        return guest.port_of(device.id)

    async def unplug(self, node: str, ref: str) -> None:
        device = self.device(node, ref)
        guest = self.node(node)
        if not guest.is_plugged(device.id):
            raise SandboxError(f"{ref} is not plugged into {node}")
        await guest.unplug(device.id)

    async def exec(self, *, node: str | None = None, vm: VMKey | None = None, command: str,
                   timeout: float = 60.0) -> ExecResult:
        guest = self.node(node) if node is not None else self.vm(*vm) if vm else None
        if guest is None:
            raise SandboxError("say which guest: a node or a VM")
        try:
            return await guest.exec(command, timeout=timeout)
        except GuestError as exc:
            raise SandboxError(str(exc)) from exc

    async def restart_vm(self, namespace: str, name: str, *, node: str | None = None) -> str:
        """Restart the VM guest as KubeVirt restarts a VM: a new VMI (new uid), a new launcher
        Pod and stand-in, new sockets; on `node` when given (the VMI is placed elsewhere)."""
        guest = self.vm(namespace, name)
        if node is not None:
            self.node(node)  # SandboxError naming the nodes when there is no such node
        await self._set_running(guest.vm, running=False)
        await self._stop_launcher((namespace, name))
        await self._delete_vmi(guest.vm)
        await guest.stop()
        if node is not None:
            guest.vm = guest.vm.model_copy(update={"node": node})
        vm_obj = await self.plane.get(VMS, namespace=namespace, name=name)
        if vm_obj is None:
            raise SandboxError(f"the VM {namespace}/{name} is gone from the API")
        vmi = await self._new_vmi(guest.vm, vm_uid=vm_obj["metadata"]["uid"])
        guest.vmi_uid = vmi["metadata"]["uid"]
        await guest.start()
        await self._launch_vmi((namespace, name))
        return guest.vmi_uid

    def launcher(self, namespace: str, name: str) -> Launcher:
        """The VMI's launcher (Pod identity, stand-in pid, root) on the VM's node."""
        self.vm(namespace, name)
        try:
            return self.launchers[(namespace, name)]
        except KeyError:
            raise SandboxError(f"VM {namespace}/{name} has no launcher (it is not running)") \
                from None

    async def kill_launcher(self, namespace: str, name: str) -> None:
        """Kill the launcher stand-in (its streams break); the Pod stays, without a process."""
        launcher = self.launcher(namespace, name)
        await kill_standin(self.node(launcher.node), launcher, remove_root=False)
        launcher.bridge.close_all()

    async def recreate_launcher(self, namespace: str, name: str) -> int:
        """Kill the launcher stand-in and start a new one (new pid, same Pod and VMI, fresh
        slot sockets): open streams break, as when a launcher's process is recreated. Its pid."""
        await self.kill_launcher(namespace, name)
        launcher = self.launcher(namespace, name)
        await start_standin(self.node(launcher.node), launcher, python=sys.executable)
        assert launcher.pid is not None
        return launcher.pid

    async def plant_at_slot(self, namespace: str, name: str, *, slot: int, kind: str,
                            target: str = "/") -> str:
        """Replace slot `slot`'s socket inside the launcher's root by what a tenant controlling
        the launcher's files could put there: a `symlink` to `target` or a `file`. Returns the
        path (in the node guest's chroot). `recreate_launcher` restores the socket."""
        launcher = self.launcher(namespace, name)
        path = f"/host{launcher.slot_path(slot)}"
        if kind == "symlink":
            make = f"ln -s {shlex.quote(target)} {path}"
        elif kind == "file":
            make = f": > {path}"
        else:
            raise SandboxError(f"cannot plant {kind!r} at a slot: say symlink or file")
        result = await self.node(launcher.node).exec(f"rm -f {path} && {make}", timeout=30)
        if not result.ok:
            raise SandboxError(f"planting a {kind} at {path} failed: {result.output.strip()}")
        return launcher.slot_path(slot)

    def status(self) -> dict[str, Any]:
        return {
            "api": self.plane.url if self._started else None,
            "controlPlane": self.plane.kind,
            "kubeconfig": str(self.kubeconfig_path),
            "nodes": {name: {"running": g.running,
                             "devices": {d.serial or d.id: {
                                 "kind": d.kind.value, "port": g.port_of(d.id),
                                 "plugged": g.is_plugged(d.id)} for d in g.node.devices}}
                      for name, g in self.nodes.items()},
            "vms": {f"{ns}/{n}": {"running": g.running, "vmi": g.vmi_uid, "node": g.vm.node,
                                  "launcherPod": getattr(self.launchers.get((ns, n)),
                                                         "pod_name", None),
                                  "clientPassthrough": g.vm.client_passthrough,
                                  "slotsInUse": list(self.virtapi.active_slots(
                                      namespace=ns, name=n))}
                    for (ns, n), g in self.vms.items()},
        }
