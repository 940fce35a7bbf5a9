"""Is the device in the port now the one that is bound? Decided from what sysfs shows right before
the device is opened, with the same identity rules the inventory published it with.

A bound device is known by its identity (`serial:46f4:0001:AAA1`, ...) and where it was last seen
(node and port path). The device at that port now must produce the same identity for the same
tier: for `serial`, the same vendor:product and serial; for `serial+descriptors`, also the same
strings; for `port`, the same vendor:product in that very port. Identical twins differ by serial
or by port, so a twin is never taken for the bound device.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevirt_usb.usb.identity import candidate_identities
from kubevirt_usb.usb.model import DeviceIdentity, NodeDevice, UsbDevice


@dataclass(frozen=True, kw_only=True)
class BoundDevice:
    """A USBDevice as the agent streams it: its object name, identity and last known place."""

    name: str
    node: str
    port_path: str
    identity: DeviceIdentity
    vendor_id: str
    product_id: str
    serial: str | None = None

    def describe(self) -> str:
        serial = f" serial {self.serial}" if self.serial else ""
        return f"USB device {self.name} ({self.vendor_id}:{self.product_id}{serial})"


@dataclass(frozen=True)
class Ready:
    """The bound device is in the port, at this bus and device number."""

    bus: int
    devnum: int


@dataclass(frozen=True)
class Absent:
    """Nothing is plugged into the port."""


@dataclass(frozen=True)
class Mismatch:
    """Another device is in the port; `found` says what it is."""

    found: str


PortCheck = Ready | Absent | Mismatch


def describe_found(device: UsbDevice) -> str:
    serial = f" serial {device.serial}" if device.serial else " without a serial"
    return f"{device.vendor_id}:{device.product_id}{serial}"


def check_port(bound: BoundDevice, found: UsbDevice | None) -> PortCheck:
    """Whether `found` (the device sysfs shows at the bound port now, or None) is `bound`."""
    if found is None:
        return Absent()
    candidates = candidate_identities(NodeDevice(node=bound.node, device=found))
    if candidates.get(bound.identity.tier) != bound.identity:
        return Mismatch(describe_found(found))
    return Ready(bus=found.bus, devnum=found.devnum)
