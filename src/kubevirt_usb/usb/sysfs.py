"""The USB devices a node's sysfs shows: `<root>/bus/usb/devices/*`.

Entries there are symlinks into `<root>/devices/...`; names are devices ("2-1.4"), interfaces
("2-1.4:1.0", folded into their device) and root hubs ("usb2", which nobody attaches and which
are left out). Hubs are reported, with `is_hub=True`.

A device is read completely or not at all: a device whose directory is gone or changes while it is
read (its busnum/devnum differ afterwards), whose required attributes are missing or malformed, or
whose files cannot be read is left out and listed in `ScanResult.skipped` with the reason. Missing
optional attributes are None; text is decoded as UTF-8 with replacement characters, cleaned
(`model.clean_text`) and cut to `MAX_DESCRIPTOR_LENGTH` characters (the most a USB string
descriptor holds). A file larger than a sysfs attribute can be (`MAX_ATTRIBUTE_BYTES`, a page) is
not one: its device is skipped, and no more than that is ever read. Captured fixture trees
(attributes as regular files, `driver` as a symlink or as a file holding the link target) read the
same as a live /sys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kubevirt_usb.usb.model import UsbDevice, UsbInterface, clean_text, port_sort_key
from kubevirt_usb.usb.usbids import UsbIds

FileReader = Callable[[Path], bytes]

_DEVICE = re.compile(r"[0-9]+-[0-9]+(?:\.[0-9]+)*")
_INTERFACE = re.compile(r"([0-9]+-[0-9]+(?:\.[0-9]+)*):[0-9]+\.([0-9]+)")
_ROOT_HUB = re.compile(r"usb[0-9]+")
_ROOT_HUB_INTERFACE = re.compile(r"[0-9]+-0:[0-9]+\.[0-9]+")
_HUB_CLASS = 0x09

MAX_ATTRIBUTE_BYTES = 4096
"""The kernel's sysfs attributes are at most a page."""
MAX_DESCRIPTOR_LENGTH = 126
"""A USB string descriptor holds at most 126 UTF-16 code units (255 bytes)."""
_SHOWN = 40


@dataclass(frozen=True)
class SkippedDevice:
    """A sysfs entry that was not reported as a device, and why."""

    port_path: str
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """The devices found on one node, sorted by port path, and the entries that were skipped."""

    devices: tuple[UsbDevice, ...]
    skipped: tuple[SkippedDevice, ...]


class SysfsUnreadable(Exception):
    """The devices directory exists but cannot be listed (not a directory, no permission): the
    scan cannot tell which devices are there, so it reports nothing rather than none."""


class _Skip(Exception):
    """The device being read cannot be reported; the message says why."""


def read_attribute(path: Path) -> bytes:
    """At most one byte more than an attribute can hold: enough to tell that a file is none."""
    with path.open("rb") as file:
        return file.read(MAX_ATTRIBUTE_BYTES + 1)


def _shown(value: str) -> str:
    """A value quoted in a skip reason, shortened: reasons are log lines."""
    return repr(value if len(value) <= _SHOWN else f"{value[:_SHOWN]}...")


class _DeviceReader:
    """Reads the attributes of one sysfs entry, turning failures into `_Skip`."""

    def __init__(self, entry: Path, read: FileReader) -> None:
        self.entry = entry
        self.read = read

    def raw(self, name: str) -> bytes | None:
        try:
            data = self.read(self.entry / name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _Skip(f"cannot read {self.entry.name}/{name}: {exc.strerror or exc}") from exc
        if len(data) > MAX_ATTRIBUTE_BYTES:
            msg = f"{self.entry.name}/{name} is larger than a sysfs attribute can be"
            raise _Skip(msg)
        return data

    def text(self, name: str) -> str | None:
        data = self.raw(name)
        text = None if data is None else clean_text(data.decode("utf-8", errors="replace"))
        return None if text is None else text[:MAX_DESCRIPTOR_LENGTH].rstrip()

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            what = "is gone" if not os.path.exists(self.entry) else f"has no {name}"
            raise _Skip(f"{self.entry.name} {what}")
        return value

    def number(self, name: str, *, base: int, limit: int) -> int:
        value = self.required(name)
        try:
            number = int(value, base)
        except ValueError:
            number = -1
        if not 0 <= number <= limit:
            raise _Skip(f"malformed {name} {_shown(value)}")
        return number

    def driver(self) -> str | None:
        link = self.entry / "driver"
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError:
            if os.path.isdir(link):
                return None
            target = self.text("driver") or ""
        return clean_text(target.rstrip("/").rsplit("/", 1)[-1])


def _read_interface(entry: Path, read: FileReader, usb_ids: UsbIds) -> UsbInterface:
    attrs = _DeviceReader(entry, read)
    match = _INTERFACE.fullmatch(entry.name)
    number = int(match[2]) if match else 0
    if attrs.text("bInterfaceNumber") is not None:
        number = attrs.number("bInterfaceNumber", base=16, limit=0xFF)
    class_code = attrs.number("bInterfaceClass", base=16, limit=0xFF)
    return UsbInterface(
        number=number,
        class_code=class_code,
        subclass=attrs.number("bInterfaceSubClass", base=16, limit=0xFF),
        protocol=attrs.number("bInterfaceProtocol", base=16, limit=0xFF),
        driver=attrs.driver(),
        class_name=usb_ids.class_name(class_code),
    )


def _removable(value: str | None) -> bool | None:
    return {"removable": True, "fixed": False}.get(value or "")


def _read_device(
    entry: Path, interfaces: Iterable[Path], read: FileReader, usb_ids: UsbIds
) -> UsbDevice:
    attrs = _DeviceReader(entry, read)
    bus = attrs.number("busnum", base=10, limit=0xFFFF)
    devnum = attrs.number("devnum", base=10, limit=0xFFFF)
    try:
        device = _read_descriptors(attrs, bus, devnum, interfaces, usb_ids)
    except _Skip:
        _check_unchanged(attrs, bus=bus, devnum=devnum)  # the better reason, if there is one
        raise
    _check_unchanged(attrs, bus=bus, devnum=devnum)
    return device


def _read_descriptors(
    attrs: _DeviceReader, bus: int, devnum: int, interfaces: Iterable[Path], usb_ids: UsbIds
) -> UsbDevice:
    vid = f"{attrs.number('idVendor', base=16, limit=0xFFFF):04x}"
    pid = f"{attrs.number('idProduct', base=16, limit=0xFFFF):04x}"
    device_class = attrs.number("bDeviceClass", base=16, limit=0xFF)
    manufacturer, product = attrs.text("manufacturer"), attrs.text("product")
    ifaces = tuple(
        sorted(
            (_read_interface(path, attrs.read, usb_ids) for path in interfaces),
            key=lambda i: i.number,
        )
    )
    return UsbDevice(
        port_path=attrs.entry.name,
        vendor_id=vid,
        product_id=pid,
        bus=bus,
        devnum=devnum,
        vendor_name=usb_ids.vendor_name(vid) or manufacturer,
        product_name=usb_ids.product_name(vid, pid) or product,
        manufacturer=manufacturer,
        product=product,
        serial=attrs.text("serial"),
        speed=attrs.text("speed"),
        bcd_device=attrs.text("bcdDevice"),
        usb_version=attrs.text("version"),
        device_class=device_class,
        device_subclass=attrs.number("bDeviceSubClass", base=16, limit=0xFF),
        device_protocol=attrs.number("bDeviceProtocol", base=16, limit=0xFF),
        device_class_name=usb_ids.class_name(device_class),
        interfaces=ifaces,
        is_hub=device_class == _HUB_CLASS or any(i.class_code == _HUB_CLASS for i in ifaces),
        removable=_removable(attrs.text("removable")),
    )


def _check_unchanged(attrs: _DeviceReader, *, bus: int, devnum: int) -> None:
    """Re-read the address: a device that went away or was replugged meanwhile is half-read."""
    try:
        again = (
            attrs.number("busnum", base=10, limit=0xFFFF),
            attrs.number("devnum", base=10, limit=0xFFFF),
        )
    except _Skip as exc:
        raise _Skip(f"device disappeared while it was read ({exc})") from exc
    if again != (bus, devnum):
        raise _Skip(f"device was replugged while it was read (now {again[0]}/{again[1]})")


def _group_entries(names: Iterable[str]) -> tuple[dict[str, list[str]], list[SkippedDevice]]:
    """Device names with their interface names; names that are neither are reported."""
    devices: dict[str, list[str]] = {}
    interfaces: list[tuple[str, str]] = []
    unknown: list[SkippedDevice] = []
    for name in names:
        if _DEVICE.fullmatch(name):
            devices.setdefault(name, [])
        elif match := _INTERFACE.fullmatch(name):
            interfaces.append((match[1], name))
        elif not (_ROOT_HUB.fullmatch(name) or _ROOT_HUB_INTERFACE.fullmatch(name)):
            unknown.append(SkippedDevice(name, "not a USB device or interface name"))
    for device, interface in interfaces:
        if device in devices:
            devices[device].append(interface)
    return devices, unknown


def _list(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SysfsUnreadable(f"cannot list {directory}: {exc.strerror or exc}") from exc


def scan(
    *, sysfs_root: Path, usb_ids: UsbIds, read_file: FileReader = read_attribute
) -> ScanResult:
    """Read every USB device under `<sysfs_root>/bus/usb/devices` (a missing directory: none;
    one that cannot be listed: SysfsUnreadable).

    `read_file` reads one attribute file; it exists so tests can change the tree mid-scan.
    """
    base = sysfs_root / "bus" / "usb" / "devices"
    grouped, skipped = _group_entries(_list(base))
    devices: list[UsbDevice] = []
    for name, interface_names in grouped.items():
        try:
            interfaces = [base / i for i in interface_names]
            devices.append(_read_device(base / name, interfaces, read_file, usb_ids))
        except _Skip as exc:
            skipped.append(SkippedDevice(name, str(exc)))
    devices.sort(key=lambda d: port_sort_key(d.port_path))
    skipped.sort(key=lambda s: (port_sort_key(s.port_path), s.port_path))
    return ScanResult(devices=tuple(devices), skipped=tuple(skipped))


def read_device(
    *, sysfs_root: Path, port_path: str, usb_ids: UsbIds, read_file: FileReader = read_attribute
) -> UsbDevice | None:
    """The device now at `port_path`, fully read, or None if there is none (or it is unreadable).

    Use it to check that the device at a port is still the one expected before opening it.
    """
    if not _DEVICE.fullmatch(port_path):
        return None
    base = sysfs_root / "bus" / "usb" / "devices"
    try:
        interfaces = [
            base / name
            for name in _list(base)
            if (m := _INTERFACE.fullmatch(name)) and m[1] == port_path
        ]
        return _read_device(base / port_path, interfaces, read_file, usb_ids)
    except (_Skip, SysfsUnreadable):
        return None


def resolve_port(*, sysfs_root: Path, port_path: str) -> tuple[int, int] | None:
    """The current (busnum, devnum) of the device at `port_path`, or None if nothing is there."""
    if not _DEVICE.fullmatch(port_path):
        return None
    attrs = _DeviceReader(sysfs_root / "bus" / "usb" / "devices" / port_path, read_attribute)
    try:
        return (
            attrs.number("busnum", base=10, limit=0xFFFF),
            attrs.number("devnum", base=10, limit=0xFFFF),
        )
    except _Skip:
        return None
