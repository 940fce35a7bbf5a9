"""The cluster in a box for synchronous callers: tests and benchmarks drive a `Sandbox` running on
its own thread and event loop, in the words of a story ("plug AAA2 into node1 ... vm1 sees AAA2").
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from kubevirt_usb.sandbox.cluster import Sandbox, SandboxOptions
from kubevirt_usb.sandbox.controlplane import guest_server_url
from kubevirt_usb.sandbox.guest import BOOT_TIMEOUT, ExecResult
from kubevirt_usb.sandbox.launcher import Launcher
from kubevirt_usb.sandbox.scenario import Scenario, default_scenario
from kubevirt_usb.sandbox.vm_guest import BlockDevice, VMProbe

T = TypeVar("T")

def _vm_key(vm: str) -> tuple[str, str]:
    namespace, _, name = vm.rpartition("/")
    return namespace or "default", name

def poll_until(condition: Callable[[], bool], *, within: float, what: str,
               interval: float = 0.25) -> float:
    """Seconds until `condition` held (asked every `interval`); AssertionError naming `what`
    after `within` seconds, as a failed test or benchmark step should read."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


class SandboxHarness:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    def __init__(self, *, state_dir: Path, scenario: Scenario | None = None,
                 progress: Callable[[str], None] | None = None,
                 components: bool = True, apiserver_kubeconfig: Path | None = None,
                 controller_replicas: int = 1, api_proxy: bool = False,
                 boot_timeout: float | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="kubevirt-usb-sandbox")
        options = SandboxOptions(scenario=scenario or default_scenario(), state_dir=state_dir,
                                 components=components,
                                 apiserver_kubeconfig=apiserver_kubeconfig,
                                 controller_replicas=controller_replicas, api_proxy=api_proxy)
        if boot_timeout is not None:
            options.boot_timeout = boot_timeout
        if progress is not None:
            options.progress = progress
        self.sandbox = Sandbox(options)

    def __enter__(self) -> SandboxHarness:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float = 300.0) -> T:
        """Run a coroutine on the sandbox's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T], *, timeout: float = 30.0) -> T:
        """Run a plain function on the sandbox's loop (the API store is not thread-safe)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped(), timeout=timeout)

    def start(self) -> SandboxHarness:
        self._thread.start()
        try:
            # boots (up to BOOT_TIMEOUT each, in parallel) then the components
            self.run(self.sandbox.start(), timeout=BOOT_TIMEOUT + 900)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self.run(self.sandbox.stop(), timeout=120)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(30)

    # ---- the API ---------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.sandbox.kubeconfig_path

    @property
    def on_real_apiserver(self) -> bool:
        return self.sandbox.on_real_apiserver

    def http(self, *, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API server, emulator or real (cluster-admin unless another
        token is given)."""
        plane = self.sandbox.plane
        return httpx.Client(base_url=plane.url, verify=plane.ssl_context(), timeout=30,
                            headers={"Authorization": f"Bearer {token or plane.admin_token}"})

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace) an object as the cluster admin; on a real API server it is
        removed again when the sandbox stops."""
        return self.run(self.sandbox.plane.apply(obj))

    def user_token(self, name: str) -> str:
        """A bearer token for a user who is authenticated and has no other rights."""
        return self.run(self.sandbox.plane.user_token(name=name))

    def kubectl(self, *args: str, check: bool = True, input: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env,
                              input=input, timeout=120, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr or done.stdout}")
        return done

    def write_kubeconfig(self, path: Path, *, token: str | None = None,
                         for_guest: bool = False) -> Path:
        """A kubeconfig for another user (`token`) and/or for programs inside the node guests
        (`for_guest`: the API at 10.0.2.2, the host as QEMU's user networking shows it)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        if for_guest:
            plane = self.sandbox.plane
            for cluster in config["clusters"]:
                cluster["cluster"]["server"] = guest_server_url(plane.url, port=plane.port)
        if token is not None:
            for user in config["users"]:
                user["user"] = {"token": token}
        path.write_text(yaml.safe_dump(config))
        return path

    # ---- the story's verbs ------------------------------------------------------------------

    def plug(self, device: str, *, into: str, port: str | None = None) -> str:
        return self.run(self.sandbox.plug(into, device, port=port))

    def unplug(self, device: str, *, node: str) -> None:
        self.run(self.sandbox.unplug(node, device))

    def on_node(self, node: str, command: str, *, timeout: float = 60.0) -> ExecResult:
        return self.run(self.sandbox.exec(node=node, command=command, timeout=timeout))

    def in_vm(self, vm: str, command: str, *, timeout: float = 60.0) -> ExecResult:
        namespace, _, name = vm.rpartition("/")
        return self.run(self.sandbox.exec(vm=(namespace or "default", name), command=command,
                                          timeout=timeout))

    def probe(self, vm: str) -> VMProbe:
        namespace, _, name = vm.rpartition("/")
        return self.run(self.sandbox.vm(namespace or "default", name).probe())

    def vm_sees(self, vm: str, serial: str) -> bool:
        return self.probe(vm).usb_by_serial(serial) is not None

    def wait_until(self, condition: Callable[[], bool], *, within: float, what: str,
                   interval: float = 0.25) -> float:
        """Wait for `condition`; returns the seconds it took; AssertionError naming `what`."""
        return poll_until(condition, within=within, what=what, interval=interval)

    def wait_vm_sees(self, vm: str, serial: str, *, within: float = 30.0) -> float:
        return self.wait_until(lambda: self.vm_sees(vm, serial), within=within,
                               what=f"{vm}'s kernel to show serial {serial}")

    def wait_vm_loses(self, vm: str, serial: str, *, within: float = 30.0) -> float:
        return self.wait_until(lambda: not self.vm_sees(vm, serial), within=within,
                               what=f"{vm}'s kernel to lose serial {serial}")

    def wait_vm_disk(self, vm: str, serial: str, *, within: float = 60.0) -> BlockDevice:
        """The VM's disk on the stick with this serial, once its kernel has made one."""
        found: list[BlockDevice] = []

        def there() -> bool:
            disk = self.probe(vm).disk_by_serial(serial)
            found[:] = [disk] if disk is not None else []
            return disk is not None

        self.wait_until(there, within=within, what=f"{vm}'s disk on {serial}")
        return found[0]

    def read_in_vm(self, vm: str, serial: str, *, mib: int, within: float = 60.0) -> None:
        """Read `mib` MiB from the VM's disk on that stick, bypassing the page cache."""
        disk = self.wait_vm_disk(vm, serial, within=within)
        self.in_vm(vm, f"dd if=/dev/{disk.name} of=/dev/null bs=1M count={mib} iflag=direct",
                   timeout=within + 60).check()

    def restart_vm(self, vm: str, *, node: str | None = None) -> str:
        """Restart the VM (new VMI uid, new launcher); on `node` when given. The new VMI uid."""
        namespace, name = _vm_key(vm)
        return self.run(self.sandbox.restart_vm(namespace, name, node=node), timeout=300)

    def vm_node(self, vm: str) -> str:
        """The node the VM's VMI runs on."""
        return self.sandbox.vm(*_vm_key(vm)).vm.node

    def launcher(self, vm: str) -> Launcher:
        """The VMI's launcher: Pod name and uid, the stand-in's pid and root in the node guest."""
        return self.sandbox.launcher(*_vm_key(vm))

    def kill_launcher(self, vm: str) -> None:
        """Kill the VMI's launcher process (the Pod stays Running without it)."""
        self.run(self.sandbox.kill_launcher(*_vm_key(vm)))

    def recreate_launcher(self, vm: str) -> int:
        """Kill the launcher process and start a new one with fresh slot sockets; its pid."""
        return self.run(self.sandbox.recreate_launcher(*_vm_key(vm)))

    def plant_at_slot(self, vm: str, *, slot: int, kind: str, target: str = "/") -> str:
        """Replace a slot socket in the launcher's root by a `symlink` (to `target`) or a
        `file`, as a tenant controlling the launcher's files could; the path in the node."""
        return self.run(self.sandbox.plant_at_slot(*_vm_key(vm), slot=slot, kind=kind,
                                                   target=target))

    def node_has(self, node: str, serial: str) -> bool:
        devices = self.run(self.sandbox.node(node).usb_devices())
        return any(d.serial == serial for d in devices)

    def background(self, awaitable: Awaitable[T]) -> Future[T]:
        """Start something on the sandbox's loop without waiting for it."""

        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
