"""Copy the USB part of a running node guest's sysfs into small text fixtures.

The fixture is a directory that reads like `/sys` (point a scanner's sysfs root at it):

```
<dest>/bus/usb/devices/2-1 -> ../../../devices/pci0000:00/0000:00:04.0/usb2/2-1   (relative symlink)
<dest>/devices/pci0000:00/0000:00:04.0/usb2/2-1/idVendor      "46f4\\n", exactly as sysfs gave it
<dest>/devices/pci0000:00/0000:00:04.0/usb2/2-1/driver -> ../../../../../bus/usb/drivers/usb
<dest>/bus/usb/drivers/usb/                                   (empty; makes `driver` resolve)
```

- Every entry of /sys/bus/usb/devices is captured (root hubs `usbN`, devices like `2-1` or
  `1-4.2`, interfaces like `2-1:1.0`), as a symlink with the kernel's own relative target.
- Each entry's real directory, at its real path under `devices/`, holds the regular attribute
  files of `ATTRIBUTES` that exist there, byte for byte (trailing newline included). Attributes a
  device does not have (e.g. `serial`) are absent, as in sysfs. Nothing else is copied.
- `driver` is a symlink with the kernel's relative target (its last component is the driver name,
  e.g. `usb`, `usb-storage`, `hub`, `ftdi_sio`); absent when no driver is bound.

So code that reads `<root>/bus/usb/devices/*/<attribute>`, follows the symlinks with
`Path.resolve()`/`os.path.realpath`, and takes `os.readlink(<dir>/driver)`'s basename reads a
fixture and a live `/sys` alike.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kubevirt_usb.sandbox.guest import Guest, GuestError

ATTRIBUTES: tuple[str, ...] = (
    # devices
    "idVendor", "idProduct", "bcdDevice", "manufacturer", "product", "serial", "speed",
    "busnum", "devnum", "devpath", "bDeviceClass", "bDeviceSubClass", "bDeviceProtocol",
    "bNumInterfaces", "bNumConfigurations", "bConfigurationValue", "bmAttributes",
    "bMaxPacketSize0", "maxchild", "removable", "version", "configuration", "authorized",
    "dev", "uevent",
    # interfaces
    "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "bInterfaceNumber",
    "bAlternateSetting", "bNumEndpoints", "interface", "modalias",
)  # fmt: skip

_SCRIPT = """
cd /sys/bus/usb/devices || exit 1
for e in *; do
  printf 'L\\t%s\\t%s\\n' "bus/usb/devices/$e" "$(readlink "$e")"
  d=$(readlink -f "$e")
  r=${{d#/sys/}}
  for a in {attributes}; do
    [ -f "$d/$a" ] || continue
    v=$(base64 -w0 < "$d/$a" 2>/dev/null) || continue
    printf 'F\\t%s\\t%s\\n' "$r/$a" "$v"
  done
  [ -L "$d/driver" ] && printf 'L\\t%s\\t%s\\n' "$r/driver" "$(readlink "$d/driver")"
done
true
""".format(attributes=" ".join(ATTRIBUTES))


@dataclass(frozen=True)
class CapturedFile:
    """An attribute file: path relative to the sysfs root, and its bytes."""

    path: str
    content: bytes


@dataclass(frozen=True)
class CapturedLink:
    """A symlink: path relative to the sysfs root, and its (relative) target."""

    path: str
    target: str


def parse_capture(text: str) -> list[CapturedFile | CapturedLink]:
    """The files and links in the capture script's output; ValueError on anything unsafe."""
    items: list[CapturedFile | CapturedLink] = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        path, _, value = rest.partition("\t")
        if kind not in {"F", "L"}:
            continue
        _check_relative(path)
        if kind == "F":
            try:
                items.append(CapturedFile(path=path, content=base64.b64decode(value)))
            except binascii.Error as exc:
                raise ValueError(f"bad content for {path}: {exc}") from None
        else:
            items.append(CapturedLink(path=path, target=value))
    return items


def _check_relative(path: str) -> None:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"unsafe path in capture: {path!r}")


def write_capture(items: list[CapturedFile | CapturedLink], dest: Path) -> None:
    """Lay the captured files and links out under `dest`, a stand-in for /sys."""
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    for item in items:
        target = dest / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(item, CapturedFile):
            target.write_bytes(item.content)
            continue
        resolved = os.path.normpath(os.path.join(os.path.realpath(target.parent), item.target))
        if os.path.isabs(item.target) or not resolved.startswith(root + os.sep):
            raise ValueError(f"link {item.path} points outside the capture: {item.target}")
        if target.is_symlink():
            target.unlink()
        target.symlink_to(item.target)
        if item.path.endswith("/driver"):
            Path(resolved).mkdir(parents=True, exist_ok=True)  # bus/usb/drivers/<name>


async def capture_usb_sysfs(node_guest: Guest, dest: Path) -> list[str]:
    """Copy the running guest's USB sysfs into `dest` (see the module docstring).

    Returns the names of the captured /sys/bus/usb/devices entries.
    """
    result = await node_guest.exec(_SCRIPT, timeout=120)
    if result.exit_code != 0:
        raise GuestError(f"capturing USB sysfs failed ({result.exit_code}): {result.output[-500:]}")
    items = parse_capture(result.output)
    await asyncio.to_thread(write_capture, items, dest)
    prefix = "bus/usb/devices/"
    return sorted(
        i.path.removeprefix(prefix)
        for i in items
        if isinstance(i, CapturedLink) and i.path.startswith(prefix)
    )
