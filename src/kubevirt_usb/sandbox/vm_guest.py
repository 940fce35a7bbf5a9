"""A sandbox VM: a QEMU guest laid out like a KubeVirt VMI with `clientPassthrough`.

It has a qemu-xhci controller and four `usb-redir` devices whose chardevs are unix sockets
`virt-usbredir-0..3` in a per-VMI directory (`<run dir>/kubevirt-private/<vmi uid>/`, KubeVirt's
`/var/run/kubevirt-private/<uid>/`; under a short temporary directory when the run directory is too
deep for unix socket paths), listening with server=on,wait=off: whoever connects a usbredir
stream to a slot plugs a device into the VM. A VM without clientPassthrough has no slots.

`probe()` says what the VM's kernel sees (USB devices, disks); `read_benchmark()` times a read of a
redirected stick inside the guest.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubevirt_usb.sandbox.guest import (
    BOOT_TIMEOUT,
    QEMU_BINARY,
    USB_LISTING_SCRIPT,
    Guest,
    GuestCommandError,
    GuestError,
    UsbDevice,
    check_socket_path,
    parse_usb_listing,
    socket_path_fits,
)
from kubevirt_usb.sandbox.guest_image import GuestImage
from kubevirt_usb.sandbox.scenario import VMSpec

SLOTS = 4


@dataclass(frozen=True)
class BlockDevice:
    """A disk in the VM (/sys/block/sdX) and the USB device it sits on, if any."""

    name: str
    size_bytes: int
    vendor: str
    model: str
    usb_device: str | None  # sysfs name of the USB device, e.g. "2-1"
    usb_serial: str | None


@dataclass(frozen=True)
class VMProbe:
    """What the VM's kernel sees right now."""

    usb_devices: list[UsbDevice]
    block_devices: list[BlockDevice]

    def usb_by_serial(self, serial: str) -> UsbDevice | None:
        """The USB device with this serial, if the VM sees it."""
        return next((d for d in self.usb_devices if d.serial == serial), None)

    def disk_by_serial(self, serial: str) -> BlockDevice | None:
        """The disk on the USB device with this serial, if the VM sees it."""
        return next((b for b in self.block_devices if b.usb_serial == serial), None)


_BLOCK_SCRIPT = r"""
for b in /sys/block/sd*; do
  [ -e "$b/device" ] || continue
  n=${b##*/}
  printf 'B\t%s\tsize\t%s\n' "$n" "$(cat "$b/size")"
  printf 'B\t%s\tvendor\t%s\n' "$n" "$(cat "$b/device/vendor" 2>/dev/null)"
  printf 'B\t%s\tmodel\t%s\n' "$n" "$(cat "$b/device/model" 2>/dev/null)"
  p=$(readlink -f "$b/device")
  while [ -n "$p" ] && [ "$p" != /sys ]; do
    if [ -f "$p/idVendor" ]; then
      printf 'B\t%s\tusb\t%s\n' "$n" "${p##*/}"
      printf 'B\t%s\tserial\t%s\n' "$n" "$(cat "$p/serial" 2>/dev/null)"
      break
    fi
    p=${p%/*}
  done
done
"""
PROBE_SCRIPT = USB_LISTING_SCRIPT + _BLOCK_SCRIPT
"""The guest shell script behind `probe()`: USB lines (see guest.py) and `B` lines for disks."""


def parse_block_listing(text: str) -> list[BlockDevice]:
    """The disks in the output of the probe script, sorted by name."""
    attrs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0] == "B":
            attrs.setdefault(parts[1], {})[parts[2]] = parts[3].strip()
    return [
        BlockDevice(
            name=name,
            size_bytes=int(a.get("size", "0") or 0) * 512,
            vendor=a.get("vendor", ""),
            model=a.get("model", ""),
            usb_device=a.get("usb") or None,
            usb_serial=(a.get("serial") or None) if "usb" in a else None,
        )
        for name, a in sorted(attrs.items())
    ]


def benchmark_script(device: str, mib: int) -> str:
    """A guest script reading `mib` MiB from /dev/`device` (O_DIRECT), timed with /proc/uptime."""
    return (
        "read t0 _ < /proc/uptime\n"
        f"dd if=/dev/{device} of=/dev/null bs=1M count={mib} iflag=direct 2>/tmp/kvu-dd.log"
        " || { cat /tmp/kvu-dd.log; exit 4; }\n"
        "read t1 _ < /proc/uptime\n"
        "cat /tmp/kvu-dd.log\n"
        'echo "UPTIME $t0 $t1"\n'
    )


def parse_benchmark(output: str, *, mib: int) -> float:
    """Seconds the read took, from the benchmark script's output; ValueError if it fell short."""
    if f"{mib}+0 records in" not in output:
        raise ValueError(f"the read did not complete {mib} MiB: {output.strip()[-300:]}")
    for line in output.splitlines():
        if line.startswith("UPTIME "):
            _, start, end = line.split()
            return float(end) - float(start)
    raise ValueError(f"no timing in the benchmark output: {output.strip()[-300:]}")


def redir_args(socket_dir: Path, slots: int) -> list[str]:
    """The xHCI controller and `slots` usb-redir devices on unix sockets, like virt-launcher's."""
    args = ["-device", "qemu-xhci,id=xhci,p2=8,p3=8"]  # enough ports: QEMU adds no hub
    for slot in range(slots):
        path = socket_dir / f"virt-usbredir-{slot}"
        args += [
            "-chardev", f"socket,id=usbredir{slot},path={path},server=on,wait=off",
            "-device", f"usb-redir,chardev=usbredir{slot},id=redir{slot},bus=xhci.0",
        ]  # fmt: skip
    return args


class VMGuest(Guest):
    """A VM of the sandbox (a running VMI); see the module docstring."""

    def __init__(
        self,
        vm: VMSpec,
        *,
        image: GuestImage,
        vmi_uid: str | None = None,
        work_dir: Path | None = None,
        qemu_binary: str = QEMU_BINARY,
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> None:
        super().__init__(
            name=vm.name,
            image=image,
            memory_mib=vm.memory_mib,
            work_dir=work_dir,
            qemu_binary=qemu_binary,
            boot_timeout=boot_timeout,
        )
        self.vm = vm
        self.vmi_uid = vmi_uid or str(uuid.uuid4())
        self.slots = SLOTS if vm.client_passthrough else 0
        self._slots_dir: Path | None = None
        self._short_dir: Path | None = None

    @property
    def usbredir_dir(self) -> Path:
        """The per-VMI directory holding the `virt-usbredir-N` sockets (while the VM runs)."""
        if self._slots_dir is None:
            raise GuestError(f"VM {self.vm.namespace}/{self.vm.name} has not been started")
        return self._slots_dir

    def usbredir_socket(self, slot: int) -> Path:
        """The unix socket of usb-redir slot `slot` (0..3)."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"VM {self.vm.namespace}/{self.vm.name} has no usbredir slot {slot}")
        return self.usbredir_dir / f"virt-usbredir-{slot}"

    def _prepare(self, run_dir: Path) -> tuple[list[str], list[str]]:
        directory = run_dir / "kubevirt-private" / self.vmi_uid
        if not socket_path_fits(directory / f"virt-usbredir-{SLOTS - 1}"):
            # A deep work directory: keep the layout, but under a short temporary directory.
            if self._short_dir is None:
                self._short_dir = Path(tempfile.mkdtemp(prefix="kvu-"))
            directory = self._short_dir / self.vmi_uid
        if self._slots_dir is not None and self._slots_dir != directory:
            shutil.rmtree(self._slots_dir, ignore_errors=True)  # the previous VMI's
        directory.mkdir(parents=True, exist_ok=True)
        for slot in range(self.slots):
            socket = directory / f"virt-usbredir-{slot}"
            check_socket_path(socket)
            socket.unlink(missing_ok=True)
        self._slots_dir = directory
        return redir_args(directory, self.slots), []

    async def stop(self) -> None:
        """Stop QEMU and remove its run directory and sockets."""
        await super().stop()
        self._slots_dir = None
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None

    async def restart(self, *, vmi_uid: str | None = None) -> None:
        """Power off and boot again with fresh sockets (in a new VMI directory if `vmi_uid`)."""
        if vmi_uid is not None:
            self.vmi_uid = vmi_uid
        await super().restart()

    async def probe(self) -> VMProbe:
        """The USB devices (root hubs excluded) and disks the VM's kernel sees now."""
        output = (await self.exec(PROBE_SCRIPT, timeout=60)).check("probing the VM").output
        return VMProbe(
            usb_devices=parse_usb_listing(output), block_devices=parse_block_listing(output)
        )

    async def read_benchmark(self, mib: int, *, serial: str, timeout: float = 600) -> float:
        """Seconds the VM takes to read `mib` MiB from the stick with USB serial `serial`.

        Measured inside the guest (/proc/uptime around `dd ... iflag=direct`).
        """
        disk = (await self.probe()).disk_by_serial(serial)
        if disk is None:
            raise GuestCommandError(f"the VM has no disk on a USB device with serial {serial}")
        result = await self.exec(benchmark_script(disk.name, mib), timeout=timeout)
        result.check(f"reading {mib} MiB from /dev/{disk.name}")
        try:
            return parse_benchmark(result.output, mib=mib)
        except ValueError as exc:
            raise GuestCommandError(str(exc)) from None
