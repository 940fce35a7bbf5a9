"""Showing the sandbox working: what the node agents published, then one attachment declared
through the API and the VM guest's own kernel seeing the exact stick; and, for comparison and for
tests, the stock tool's path the field notes used (`usbredirect` bridged like `virtctl usbredir`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.apiserver.api import RequestContext
from kubevirt_usb.apiserver.server import ADMIN
from kubevirt_usb.models import API_VERSION, GROUP, VERSION
from kubevirt_usb.sandbox.cluster import Sandbox, SandboxError
from kubevirt_usb.sandbox.guest import BackgroundProcess, GuestError, wait_until
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.scenario import DeviceSpec
from kubevirt_usb.stream.endpoint import load_kubeconfig
from kubevirt_usb.stream.failures import UsbredirError
from kubevirt_usb.stream.usbredir_client import ByteCounters, serve_usbredir_bridge

Echo = Callable[[str], None]
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user networking: the host's loopback
DEMO_SERIAL = "AAA1"


@dataclass
class StockRedirect:
    """A running `usbredirect` in a node guest, bridged to a VMI's usbredir stream."""

    guest: NodeGuest
    process: BackgroundProcess
    bridge: asyncio.Task[ByteCounters]

    async def stop(self) -> None:
        with contextlib.suppress(GuestError):
            await self.guest.signal(self.process, signal_name="TERM")
        with contextlib.suppress(UsbredirError, asyncio.TimeoutError, OSError):
            async with asyncio.timeout(10):  # not wait_for: see kubevirt_usb.tasks
                await self.bridge
        if not self.bridge.done():
            self.bridge.cancel()


async def redirect_with_usbredirect(sandbox: Sandbox, *, node: str, device: DeviceSpec,
                                    namespace: str, vm: str) -> StockRedirect:
    """Redirect `device` with the stock `usbredirect --device VID:PID` (first match: see
    kubevirt-facts.md, it cannot tell identical devices apart) into the VM."""
    guest = sandbox.node(node)
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    bridge = asyncio.create_task(serve_usbredir_bridge(
        load_kubeconfig(sandbox.kubeconfig_path), namespace=namespace, vmi=vm,
        listen_host="127.0.0.1", listen_port=0, on_listening=listening.set_result))
    async with asyncio.timeout(10):  # not wait_for: see kubevirt_usb.tasks
        port = await asyncio.shield(listening)
    port_path = guest.port_of(device.id)
    found = [d for d in await guest.usb_devices()
             if (device.serial and d.serial == device.serial)
             or d.name.partition("-")[2] == port_path]
    if not found:
        bridge.cancel()
        raise SandboxError(f"{device.serial or device.id} is not plugged into {node}")
    command = guest.host_command(["usbredirect", "--device", found[0].vid_pid, "--to",
                                  f"{HOST_FROM_GUEST}:{port}"])
    process = await guest.start_background(command, log_path=f"/tmp/usbredirect-{port}.log")
    return StockRedirect(guest=guest, process=process, bridge=bridge)


def _attachment_info(sandbox: Sandbox) -> Any:
    info = sandbox.api.api.registry.get(GROUP, VERSION, "usbattachments")
    if info is None:
        raise SandboxError("the USBAttachment CRD is not served")
    return info


def _attachment(sandbox: Sandbox, namespace: str, name: str) -> dict[str, Any] | None:
    return sandbox.api.api.store.get(("usb.kubevirt-usb.io", "usbattachments"), namespace, name)


def _published_devices(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.api.api.store.items(("usb.kubevirt-usb.io", "usbdevices"))


async def show_it_working(sandbox: Sandbox, *, echo: Echo) -> None:
    """Print the published devices, attach AAA1 to the first VM with clientPassthrough, and show
    its kernel seeing AAA1 (and not its identical twin AAA2)."""
    for obj in _published_devices(sandbox):
        status = obj.get("status") or {}
        echo(f"USBDevice {obj['metadata']['name']}: node {status.get('node')} "
             f"{status.get('vendorId')}:{status.get('productId')} "
             f"{status.get('productName') or status.get('product') or ''} serial "
             f"{status.get('serial') or '-'} port {status.get('portPath')} identity "
             f"{(status.get('identity') or {}).get('tier')}")
    target = next(((ns, n) for (ns, n), g in sorted(sandbox.vms.items())
                   if g.vm.client_passthrough), None)
    if target is None:
        echo("no VM with clientPassthrough in this scenario: nothing to attach")
        return
    namespace, vm = target
    name = "demo-aaa1"
    echo(f"declaring USBAttachment {namespace}/{name}: serial {DEMO_SERIAL} -> VM {vm} "
         f"(like `kubectl usb attach --serial {DEMO_SERIAL} {vm}`)")
    start = time.monotonic()
    sandbox.api.api.create(_attachment_info(sandbox), namespace=namespace, body={
        "apiVersion": API_VERSION, "kind": "USBAttachment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"vm": vm, "device": {"serial": DEMO_SERIAL}}},
        ctx=RequestContext(user=ADMIN, field_manager="kubevirt-usb-demo"))
    vm_guest = sandbox.vm(namespace, vm)

    async def seen() -> bool:
        return (await vm_guest.probe()).usb_by_serial(DEMO_SERIAL) is not None

    try:
        await wait_until(seen, within=90, what=f"{DEMO_SERIAL} in {namespace}/{vm}")
    except (GuestError, TimeoutError) as exc:
        status = (_attachment(sandbox, namespace, name) or {}).get("status") or {}
        echo(f"the VM did not see {DEMO_SERIAL}: {exc} (attachment phase "
             f"{status.get('phase')}: {status.get('message')})")
        return
    probe = await vm_guest.probe()
    twins = [d.serial for d in probe.usb_devices if d.serial]
    echo(f"{namespace}/{vm}'s kernel sees serial {DEMO_SERIAL} after "
         f"{time.monotonic() - start:.1f} s (USB serials in the VM: {', '.join(twins)})")
    status = (_attachment(sandbox, namespace, name) or {}).get("status") or {}
    echo(f"attachment {namespace}/{name}: phase {status.get('phase')}, device "
         f"{status.get('device')} on {status.get('node')}; detach with "
         f"`kubectl usb detach {name} -n {namespace}`")
