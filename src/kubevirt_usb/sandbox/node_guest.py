"""A sandbox node: a QEMU guest with the scenario's emulated USB devices on a qemu-xhci controller.

Its network is QEMU's user mode (`-nic user,model=virtio-net-pci`): inside, the guest is 10.0.2.15
and 10.0.2.2 is the host's loopback. virtio-net, not an emulated e1000: in a TCG guest the guest
kernel's TCP send over e1000 cost 36 CPU-seconds per GiB against 10 over virtio-net (a 32 MiB
request/response push to the host, two runs back to back, 2026-12-07), and every byte the agent
or `usbredirect` streams leaves the node guest that way.

The host's root is shared read-only over 9p and mounted at /host with the guest's own proc, sys,
dev (including /dev/bus/usb), run and tmp inside it, so `chroot /host ...` (see `host_command()`)
runs the project, its venv and `usbredirect` straight from the host's disk: code changes need no
image rebuild.

Devices are plugged and unplugged through QMP like a person would at the machine: `unplug()` pulls
a device, `plug()` puts it back into the same port (or another one), `move()` does both.
"""

from __future__ import annotations

import asyncio
import base64
import compileall
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import kubevirt_usb
from kubevirt_usb.sandbox.guest import (
    BOOT_TIMEOUT,
    QEMU_BINARY,
    Guest,
    GuestError,
    qemu_value,
    wait_until,
)
from kubevirt_usb.sandbox.guest_image import GuestImage
from kubevirt_usb.sandbox.qmp import EventListener
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec

XHCI_BUS = "xhci.0"
HOST_ROOT = "/host"
_DRIVERS = {
    DeviceKind.USB_STORAGE: "usb-storage",
    DeviceKind.USB_SERIAL: "usb-serial",
    DeviceKind.USB_KBD: "usb-kbd",
    DeviceKind.USB_AUDIO: "usb-audio",
    DeviceKind.HUB: "usb-hub",
}
UNPLUG_TIMEOUT = 30.0
GUEST_TMPFS = ("/tmp", "/run")
"""Where the node guest puts its own writable tmpfs over the host's read-only root."""


def paths_to_keep(candidates: Sequence[str], *, hidden: Sequence[str] = GUEST_TMPFS) -> list[str]:
    """Of the host directories the guest must see (the venv, the project), those the guest's
    tmpfs mounts would hide (a clone under /tmp), without ones inside another kept one."""
    inside = [c.rstrip("/") for c in candidates
              if any(c == h or c.startswith(h + "/") for h in hidden)]
    kept: list[str] = []
    for path in sorted(set(inside)):
        if not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


def keep_argument(paths: Sequence[str]) -> list[str]:
    """The kernel argument telling the guest's /init to bind `paths` back from the host."""
    if not paths:
        return []
    encoded = base64.b64encode("\n".join(paths).encode()).decode()
    return [f"kvu.keep={encoded}"]


def project_paths() -> list[str]:
    """The host directories a node guest runs the project from: this Python's prefix (the
    venv) and the directory the `kubevirt_usb` package is imported from."""
    package = Path(kubevirt_usb.__file__).resolve().parent.parent
    return [str(Path(sys.prefix).resolve()), str(Path(sys.prefix)), str(package)]


def compile_project(package: Path | None = None) -> None:
    """Byte-compile the project's modules on the host (writes `__pycache__` beside a source
    checkout; nothing when the package is installed read-only). The node guests see the host's
    disk read-only, so a module without a cached bytecode file is compiled again at every import
    in the guest: measured about 3 s of the guest's one emulated CPU for each engine worker start
    (and in the middle of a stream, when the agent starts its spare worker)."""
    root = package or Path(kubevirt_usb.__file__).resolve().parent
    compileall.compile_dir(root, quiet=2, workers=1)


def backend_id(node: NodeSpec, device_id: str) -> str:
    """The QEMU id of a device's backend (block node or chardev): short and stable."""
    index = [d.id for d in node.devices].index(device_id)
    return f"kvubk{index}"


def disk_image(run_dir: Path, device: DeviceSpec) -> Path:
    """The sparse raw file behind a usb-storage device."""
    return run_dir / f"disk-{device.id}.img"


def echo_fifo(run_dir: Path, device: DeviceSpec) -> Path:
    """The FIFO behind a usb-serial device with `echo`: QEMU's pipe chardev opens it read-write
    and reads back what it writes, so the adapter's far end echoes (a loopback plug)."""
    return run_dir / f"echo-{device.id}"


def device_properties(node: NodeSpec, device: DeviceSpec, port: str) -> dict[str, str | bool]:
    """The QEMU device's properties, as for `device_add` (and `-device`)."""
    props: dict[str, str | bool] = {"driver": _DRIVERS[device.kind], "bus": XHCI_BUS, "port": port}
    if device.kind is DeviceKind.USB_STORAGE:
        props["drive"] = backend_id(node, device.id)
    if device.kind is DeviceKind.USB_SERIAL:
        props["chardev"] = backend_id(node, device.id)
        props["always-plugged"] = True  # a null chardev never "opens"; attach anyway
    if device.kind is DeviceKind.USB_AUDIO:
        props["audiodev"] = backend_id(node, device.id)
    if device.serial is not None:
        props["serial"] = device.serial
    props["id"] = device.id
    return props


def device_option(props: Mapping[str, str | bool]) -> str:
    """`device_properties()` as a `-device` option value."""
    parts = [str(props["driver"])]
    for key, value in props.items():
        if key == "driver":
            continue
        text = ("on" if value else "off") if isinstance(value, bool) else qemu_value(value)
        parts.append(f"{key}={text}")
    return ",".join(parts)


def backend_args(node: NodeSpec, device: DeviceSpec, run_dir: Path) -> list[str]:
    """The `-blockdev`/`-chardev`/`-audiodev` options a device needs (they outlive unplugs)."""
    ident = backend_id(node, device.id)
    if device.kind is DeviceKind.USB_STORAGE:
        image = qemu_value(str(disk_image(run_dir, device)))
        return [
            "-blockdev", f"driver=file,filename={image},node-name={ident}f",
            "-blockdev", f"driver=raw,file={ident}f,node-name={ident}",
        ]  # fmt: skip
    if device.kind is DeviceKind.USB_SERIAL and device.echo:
        return ["-chardev", f"pipe,id={ident},path={qemu_value(str(echo_fifo(run_dir, device)))}"]
    if device.kind is DeviceKind.USB_SERIAL:
        return ["-chardev", f"null,id={ident}"]
    if device.kind is DeviceKind.USB_AUDIO:
        return ["-audiodev", f"none,id={ident}"]
    return []


def node_qemu_args(node: NodeSpec, run_dir: Path, *, share_host_root: bool = True) -> list[str]:
    """The node guest's QEMU options after the common ones: network, host share, USB."""
    args = ["-nic", "user,model=virtio-net-pci"]
    if share_host_root:
        args += [
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        ]
    args += ["-device", f"qemu-xhci,id={XHCI_BUS.split('.')[0]},p2=8,p3=8"]
    ports = node.port_paths()
    for device in node.devices:
        args += backend_args(node, device, run_dir)
    plugged = initially_plugged(node)
    for device in sorted(node.devices, key=lambda d: ports[d.id].count(".")):
        if device.id in plugged:
            args += ["-device", device_option(device_properties(node, device, ports[device.id]))]
    return args


def initially_plugged(node: NodeSpec) -> set[str]:
    """Ids of the devices plugged in at boot: `plugged` ones not behind an unplugged hub."""
    ports = node.port_paths()
    out = {d.id for d in node.devices if d.plugged}
    for device in node.devices:
        if device.kind is DeviceKind.HUB and device.id not in out:
            out -= set(devices_behind(node, ports, device.id))
    return out


def devices_behind(node: NodeSpec, ports: Mapping[str, str], hub_id: str) -> list[str]:
    """Ids of the devices whose port path lies behind the hub `hub_id`."""
    prefix = ports[hub_id] + "."
    return [d.id for d in node.devices if ports[d.id].startswith(prefix)]


class NodeGuest(Guest):
    """A node of the sandbox with the scenario's USB devices; see the module docstring."""

    def __init__(
        self,
        node: NodeSpec,
        *,
        image: GuestImage,
        work_dir: Path | None = None,
        share_host_root: bool = True,
        host_paths: Sequence[str] | None = None,
        qemu_binary: str = QEMU_BINARY,
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> None:
        super().__init__(
            name=node.name,
            image=image,
            memory_mib=node.memory_mib,
            work_dir=work_dir,
            qemu_binary=qemu_binary,
            boot_timeout=boot_timeout,
        )
        self.node = node
        self._share = share_host_root
        self._host_paths = list(host_paths) if host_paths is not None else project_paths()
        self._ports = node.port_paths()
        self._plugged = initially_plugged(node)

    def _prepare(self, run_dir: Path) -> tuple[list[str], list[str]]:
        for device in self.node.devices:
            if device.kind is DeviceKind.USB_STORAGE:
                image = disk_image(run_dir, device)
                if not image.exists():
                    with image.open("wb") as handle:
                        handle.truncate(device.disk_size)  # sparse
            if device.echo and not echo_fifo(run_dir, device).exists():
                os.mkfifo(echo_fifo(run_dir, device))
        self._ports = self.node.port_paths()
        self._plugged = initially_plugged(self.node)
        kernel_args = ["kvu.net"]
        if self._share:
            kernel_args += ["kvu.host9p", *keep_argument(paths_to_keep(self._host_paths))]
        return node_qemu_args(self.node, run_dir, share_host_root=self._share), kernel_args

    async def _until_ready(self) -> None:
        await self.wait_for_devices()

    # ---- the devices ------------------------------------------------------------------------

    async def wait_for_devices(self, *, within: float = 60.0) -> None:
        """Wait until the guest's kernel shows every plugged device (by its port path)."""
        expected = {self._ports[d] for d in self._plugged}

        async def all_there() -> bool:
            return expected <= {d.devpath for d in await self.usb_devices()}

        await wait_until(all_there, within=within, interval=0.1, what="the USB devices")

    def port_of(self, device_id: str) -> str:
        """The device's QEMU port path (also its sysfs devpath in the guest), e.g. "2" or "4.2"."""
        self.node.device(device_id)
        return self._ports[device_id]

    def is_plugged(self, device_id: str) -> bool:
        """True while the device is plugged in."""
        self.node.device(device_id)
        return device_id in self._plugged

    async def unplug(self, device_id: str) -> None:
        """Pull the device out (devices behind a hub go with it); returns once QEMU removed it."""
        self.node.device(device_id)
        if device_id not in self._plugged:
            raise GuestError(f"{device_id} is not plugged in")
        with self.qmp.listen() as events:
            await self.qmp.execute("device_del", {"id": device_id})
            try:
                await _wait_deleted(events, device_id)
            except TimeoutError:
                raise GuestError(f"QEMU did not remove {device_id}") from None
        gone = {device_id}
        if self.node.device(device_id).kind is DeviceKind.HUB:
            gone.update(devices_behind(self.node, self._ports, device_id))
        self._plugged -= gone

    async def plug(self, device_id: str, *, port: str | int | None = None) -> None:
        """Plug the device in: into the port it was last in, or into `port` (e.g. 3 or "4.2")."""
        device = self.node.device(device_id)
        if device_id in self._plugged:
            raise GuestError(f"{device_id} is already plugged in")
        where = str(port) if port is not None else self._ports[device_id]
        await self.qmp.execute("device_add", device_properties(self.node, device, where))
        self._ports[device_id] = where
        self._plugged.add(device_id)

    async def move(self, device_id: str, *, port: str | int) -> None:
        """Unplug the device (if plugged) and plug it into another port."""
        if self.is_plugged(device_id):
            await self.unplug(device_id)
        await self.plug(device_id, port=port)

    # ---- running host programs --------------------------------------------------------------

    def host_command(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        """A guest shell command that runs `argv` from the host's disk (chroot /host)."""
        if not self._share:
            raise GuestError(f"node {self.name} does not share the host's root")
        assignments = [f"{k}={v}" for k, v in (env or {}).items()]
        words = ["chroot", HOST_ROOT, "/usr/bin/env", *assignments, *argv]
        return shlex.join(words)

    def python_command(self, args: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        """A guest shell command running this very Python (the project's venv) with `args`."""
        return self.host_command([sys.executable, *args], env=env)


async def _wait_deleted(events: EventListener, device_id: str) -> None:
    async with asyncio.timeout(UNPLUG_TIMEOUT):
        await events.wait("DEVICE_DELETED", match=lambda e: e.data.get("device") == device_id)
