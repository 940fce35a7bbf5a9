"""Showing the sandbox working: what each node's kernel sees, then a device redirected into a VM
through the virt-api emulator, and what the VM's kernel sees.

Until the node agent streams devices itself, this uses the stock tool the field notes used:
`usbredirect` in the node guest, bridged like `virtctl usbredir` to the VMI's usbredir subresource.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kubevirt_usb.sandbox.cluster import Sandbox, SandboxError
from kubevirt_usb.sandbox.guest import BackgroundProcess, GuestError, wait_until
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec
from kubevirt_usb.stream.endpoint import load_kubeconfig
from kubevirt_usb.stream.failures import UsbredirError
from kubevirt_usb.stream.usbredir_client import ByteCounters, serve_usbredir_bridge

Echo = Callable[[str], None]
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user networking: the host's loopback


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
            await asyncio.wait_for(self.bridge, timeout=10)
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
    port = await asyncio.wait_for(asyncio.shield(listening), timeout=10)
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


async def show_it_working(sandbox: Sandbox, *, echo: Echo) -> None:
    for name, guest in sorted(sandbox.nodes.items()):
        for dev in await guest.usb_devices():
            echo(f"node {name} sees {dev.vid_pid} {dev.product or ''} serial="
                 f"{dev.serial or '-'} at port {dev.name}")
    target = next(((ns, n) for (ns, n), g in sorted(sandbox.vms.items())
                   if g.vm.client_passthrough), None)
    if target is None:
        echo("no VM with clientPassthrough in this scenario: nothing to redirect")
        return
    node = sandbox.vm(*target).vm.node
    adapter = next((d for d in sandbox.node(node).node.devices
                    if d.kind is DeviceKind.USB_SERIAL), None)
    if adapter is None:
        echo(f"node {node} has no serial adapter to redirect")
        return
    vm_guest = sandbox.vm(*target)
    echo(f"redirecting {adapter.serial or adapter.id} from {node} into {target[0]}/{target[1]} "
         "with usbredirect through the virt-api emulator")
    try:
        redirect = await redirect_with_usbredirect(sandbox, node=node, device=adapter,
                                                   namespace=target[0], vm=target[1])
    except (SandboxError, GuestError, UsbredirError, TimeoutError) as exc:
        echo(f"could not redirect: {exc}")
        return

    async def seen() -> bool:
        probe = await vm_guest.probe()
        return probe.usb_by_serial(adapter.serial or "") is not None

    try:
        await wait_until(seen, within=30, what=f"{adapter.serial} in the VM")
        echo(f"{target[0]}/{target[1]}'s kernel sees serial {adapter.serial}")
    except (GuestError, TimeoutError) as exc:
        echo(f"the VM did not see the device: {exc}")
    finally:
        await redirect.stop()
