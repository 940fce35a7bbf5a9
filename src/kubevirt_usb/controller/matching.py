"""Which devices a selector names, and which of them an attachment gets.

A selector's fields must all match (an empty selector names every device): `name` the USBDevice's
name, `vendorId`/`productId` its ids, `serial`, `product` the product string the device reports
or the usb.ids name, `node`, `port` the kernel port path. Values are compared exactly, as
`kubectl usb` does. Among free devices the one on the VM's node comes first, then by name, so the
choice is the same every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from kubevirt_usb import models
from kubevirt_usb.controller.model import Device

Predicate = Callable[[Device], bool]

_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("name", ("name",)), ("vendor_id", ("vendor_id",)), ("product_id", ("product_id",)),
    ("serial", ("serial",)), ("product", ("product", "product_name")), ("node", ("node",)),
    ("port", ("port_path",)),
)


@lru_cache(maxsize=4096)
def compile_selector(selector: models.DeviceSelector) -> Predicate:
    """The selector as a fast test of one device (it is asked of every device many times)."""
    checks = tuple((wanted, attrs) for field, attrs in _FIELDS
                   if (wanted := getattr(selector, field)) is not None)
    if not checks:
        return lambda device: True

    def test(device: Device) -> bool:
        for wanted, attrs in checks:
            if not any(getattr(device, attr) == wanted for attr in attrs):
                return False
        return True
    return test


def matches(selector: models.DeviceSelector, device: Device) -> bool:
    """Whether every field the selector gives fits the device."""
    return compile_selector(selector)(device)


def is_empty(selector: models.DeviceSelector) -> bool:
    return not selector.model_dump(exclude_none=True)


def preference(preferred_node: str | None) -> Callable[[Device], tuple[bool, str]]:
    """The sort key of devices, best first: on `preferred_node` (the VM's), then by name."""
    return lambda d: (d.node != preferred_node or preferred_node is None, d.name)


def ranked(devices: Iterable[Device], *, preferred_node: str | None) -> list[Device]:
    """Devices best first: on `preferred_node` (the VM's), then by name."""
    return sorted(devices, key=preference(preferred_node))


def best(devices: Iterable[Device], *, preferred_node: str | None) -> Device | None:
    """The first of `ranked`, without sorting them all."""
    return min(devices, key=preference(preferred_node), default=None)


def selector_words(selector: models.DeviceSelector) -> str:
    """The selector in prose: `serial AAA1 on node1`, `id 0781:5567`, `any device`."""
    return selector.words()
