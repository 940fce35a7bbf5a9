"""Builds small sysfs trees the way the kernel lays them out: for the scanner's tests and the agent
benchmark (which must not depend on the test tree).

Devices live under `devices/pci0000:00/0000:00:04.0/usbN/...`; `bus/usb/devices/<name>` are
relative symlinks to them; attribute files end with a newline, as the kernel writes them; an
interface's `driver` is a relative symlink into `bus/usb/drivers/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

Attr = str | bytes | None

CONTROLLER = "pci0000:00/0000:00:04.0"


@dataclass(frozen=True)
class Iface:
    """An interface to create: class, subclass, protocol (hex text) and bound driver."""

    class_code: str = "08"
    subclass: str = "06"
    protocol: str = "50"
    driver: str | None = "usb-storage"


STICK = (Iface(),)
SERIAL_PORT = (Iface("ff", "ff", "ff", "ftdi_sio"),)
HUB = (Iface("09", "00", "00", "hub"),)


def _write_attrs(directory: Path, attrs: dict[str, Attr]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in attrs.items():
        if value is None:
            continue
        data = value if isinstance(value, bytes) else f"{value}\n".encode()
        (directory / name).write_bytes(data)


class SysfsTree:
    """A sysfs root under construction."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bus_dir = root / "bus" / "usb" / "devices"
        self.drivers_dir = root / "bus" / "usb" / "drivers"
        self.bus_dir.mkdir(parents=True, exist_ok=True)

    def _link(self, target: Path) -> None:
        link = self.bus_dir / target.name
        link.symlink_to(os.path.relpath(target, self.bus_dir))

    def _parent(self, port_path: str) -> Path:
        bus, _, chain = port_path.partition("-")
        parent = self.root / "devices" / CONTROLLER / f"usb{bus}"
        ports = chain.split(".")
        for depth in range(1, len(ports)):
            parent = parent / f"{bus}-{'.'.join(ports[:depth])}"
        return parent

    def root_hub(self, bus: int) -> Path:
        """Add root hub `usbN` with its hub interface `N-0:1.0`."""
        path = self.root / "devices" / CONTROLLER / f"usb{bus}"
        _write_attrs(
            path,
            {
                "busnum": str(bus),
                "devnum": "1",
                "idVendor": "1d6b",
                "idProduct": "0003",
                "bDeviceClass": "09",
                "bDeviceSubClass": "00",
                "bDeviceProtocol": "03",
                "product": "xHCI Host Controller",
            },
        )
        self._link(path)
        self._interface(path, f"{bus}-0:1.0", 0, HUB[0])
        return path

    def device(
        self,
        port_path: str,
        *,
        devnum: int | None = 2,
        interfaces: tuple[Iface, ...] = STICK,
        attrs: Mapping[str, Attr] | None = None,
        **overrides: Attr,
    ) -> Path:
        """Add a device (defaults: a QEMU USB stick with serial AAA1).

        Attribute values come from `overrides` and `attrs`; a value of None leaves the file out.
        """
        values: dict[str, Attr] = {
            "busnum": port_path.split("-")[0],
            "devnum": None if devnum is None else str(devnum),
            "devpath": port_path.split("-", 1)[1],
            "idVendor": "46f4",
            "idProduct": "0001",
            "bcdDevice": "0000",
            "bDeviceClass": "00",
            "bDeviceSubClass": "00",
            "bDeviceProtocol": "00",
            "manufacturer": "QEMU",
            "product": "QEMU USB HARDDRIVE",
            "serial": "AAA1",
            "speed": "5000",
            "version": " 3.00",
            "removable": "removable",
            "maxchild": "0",
        }
        values.update(overrides)
        values.update(attrs or {})
        path = self._parent(port_path) / port_path
        _write_attrs(path, values)
        self._link(path)
        for number, iface in enumerate(interfaces):
            self._interface(path, f"{port_path}:1.{number}", number, iface)
        return path

    def _interface(self, device: Path, name: str, number: int, iface: Iface) -> Path:
        path = device / name
        _write_attrs(
            path,
            {
                "bInterfaceNumber": f"{number:02x}",
                "bAlternateSetting": " 0",
                "bInterfaceClass": iface.class_code,
                "bInterfaceSubClass": iface.subclass,
                "bInterfaceProtocol": iface.protocol,
            },
        )
        if iface.driver:
            driver = self.drivers_dir / iface.driver
            driver.mkdir(parents=True, exist_ok=True)
            (path / "driver").symlink_to(os.path.relpath(driver, path))
        self._link(path)
        return path


USB_IDS_TEXT = """\
# a few lines of usb.ids
0403  Future Technology Devices International, Ltd
\t6001  FT232 Serial (UART) IC
1d6b  Linux Foundation
\t0003  3.0 root hub
46f4  QEMU

C 00  (Defined at Interface level)
C 08  Mass Storage
\t06  SCSI
\t\t50  Bulk-Only
C 09  Hub
\t00  Unused
C ff  Vendor Specific Class
\tff  Vendor Specific Subclass
\t\tff  Vendor Specific Protocol
"""
