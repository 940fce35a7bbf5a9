"""What the inventory knows about USB devices: one device on one node, and its stable identity.

Descriptor strings (manufacturer, product, serial) are None when the device has none: a missing
sysfs file, an empty string and an all-whitespace string all mean "none". Control characters are
removed and surrounding whitespace is stripped, whatever the source, so two records of the same
device compare equal.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, get_args

IdentityTier = Literal["serial", "serial+descriptors", "port"]
IDENTITY_TIERS: tuple[IdentityTier, ...] = get_args(IdentityTier)

_USB_ID = re.compile(r"[0-9a-f]{4}")
_SMALL_NUMBER = re.compile(r"[0-9]{1,9}")
_WHITESPACE_CONTROLS = "\t\n\r\x0b\x0c"


def clean_text(raw: str | None) -> str | None:
    """A descriptor string as people should see it: no control characters, no outer
    whitespace, and None when nothing is left."""
    if raw is None:
        return None
    kept = (
        " " if ch in _WHITESPACE_CONTROLS else ch
        for ch in raw
        if ch in _WHITESPACE_CONTROLS or unicodedata.category(ch) != "Cc"
    )
    text = "".join(kept).strip()
    return text or None


def port_sort_key(port_path: str) -> tuple[tuple[int, int | str], ...]:
    """Order port paths the way people count ports: "2-1.9" before "2-1.10"."""
    return tuple(
        (0, int(part)) if _SMALL_NUMBER.fullmatch(part) else (1, part)
        for part in re.split(r"[-.]", port_path)
    )


@dataclass(frozen=True)
class UsbInterface:
    """One interface of a device's active configuration."""

    number: int
    class_code: int
    subclass: int
    protocol: int
    driver: str | None = None
    class_name: str | None = None


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as its node's sysfs shows it now.

    `port_path` is the kernel's name for the physical port chain ("2-1.4": bus 2, root port 1,
    hub port 4). `bus` and `devnum` change on every replug: they say where to open the device
    right now and are never part of its identity. `vendor_name`/`product_name` come from usb.ids,
    falling back to the device's own manufacturer/product strings. `speed` is in Mbps as sysfs
    writes it ("1.5", "12", "480", "5000", ...). `removable` is None when the kernel does not know.
    """

    port_path: str
    vendor_id: str
    product_id: str
    bus: int
    devnum: int
    vendor_name: str | None = None
    product_name: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    speed: str | None = None
    bcd_device: str | None = None
    usb_version: str | None = None
    device_class: int = 0
    device_subclass: int = 0
    device_protocol: int = 0
    device_class_name: str | None = None
    interfaces: tuple[UsbInterface, ...] = ()
    is_hub: bool = False
    removable: bool | None = None

    def __post_init__(self) -> None:
        for name in ("vendor_id", "product_id"):
            if not _USB_ID.fullmatch(getattr(self, name)):
                msg = f"{name} must be 4 lowercase hex digits, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("vendor_name", "product_name", "manufacturer", "product", "serial"):
            object.__setattr__(self, name, clean_text(getattr(self, name)))

    @property
    def drivers(self) -> tuple[str, ...]:
        """The kernel drivers bound to the device's interfaces, sorted, without repeats."""
        return tuple(sorted({i.driver for i in self.interfaces if i.driver}))

    @property
    def usb_id(self) -> str:
        """The ids as lsusb writes them: "vendor:product"."""
        return f"{self.vendor_id}:{self.product_id}"


@dataclass(frozen=True)
class NodeDevice:
    """A device together with the node it is plugged into."""

    node: str
    device: UsbDevice

    @property
    def location(self) -> tuple[str, str]:
        """(node, port path): where the device is plugged in, unique across the cluster."""
        return (self.node, self.device.port_path)


@dataclass(frozen=True)
class DeviceIdentity:
    """The stable identity of a device and the tier it was derived from (see identity.py)."""

    tier: IdentityTier
    key: str

    def __post_init__(self) -> None:
        if self.tier not in IDENTITY_TIERS:
            msg = f"unknown identity tier {self.tier!r}"
            raise ValueError(msg)


@dataclass(frozen=True)
class EstablishedIdentity:
    """An identity already published as a USBDevice, and where its device was last seen."""

    identity: DeviceIdentity
    node: str
    port_path: str


@dataclass(frozen=True)
class PublishedDevice:
    """What a USBDevice object says: the device, its node, its identity and its object name."""

    name: str
    node: str
    identity: DeviceIdentity
    device: UsbDevice
