"""Is the device in the bound port the bound one? Identical twins differ by serial or by port."""

from __future__ import annotations

from kubevirt_usb.redirect.checks import Absent, BoundDevice, Mismatch, Ready, check_port
from kubevirt_usb.usb.identity import port_identity, serial_identity
from kubevirt_usb.usb.model import UsbDevice


def stick(serial: str | None, *, port: str = "2-1", devnum: int = 2) -> UsbDevice:
    return UsbDevice(port_path=port, vendor_id="46f4", product_id="0001", bus=2, devnum=devnum,
                     serial=serial, manufacturer="QEMU", product="QEMU USB HARDDRIVE")


def bound_by_serial(serial: str, *, port: str = "2-1") -> BoundDevice:
    return BoundDevice(name=f"46f4-0001-{serial.lower()}", node="node1", port_path=port,
                       identity=serial_identity("46f4", "0001", serial), vendor_id="46f4",
                       product_id="0001", serial=serial)


def test_the_bound_stick_in_its_port_is_ready_at_its_current_address() -> None:
    assert check_port(bound_by_serial("AAA1"), stick("AAA1", devnum=7)) == Ready(bus=2, devnum=7)


def test_its_identical_twin_in_that_port_is_not_taken_for_it() -> None:
    result = check_port(bound_by_serial("AAA1"), stick("AAA2"))
    assert result == Mismatch("46f4:0001 serial AAA2")


def test_an_empty_port_is_absent() -> None:
    assert check_port(bound_by_serial("AAA1"), None) == Absent()


def test_a_device_known_by_its_port_is_any_device_of_that_kind_in_that_port() -> None:
    bound = BoundDevice(name="node1-46f4-0001-2-1", node="node1", port_path="2-1",
                        identity=port_identity("node1", "2-1", "46f4", "0001"),
                        vendor_id="46f4", product_id="0001")
    assert check_port(bound, stick(None, devnum=9)) == Ready(bus=2, devnum=9)
    other = UsbDevice(port_path="2-1", vendor_id="067b", product_id="2303", bus=2, devnum=9)
    assert check_port(bound, other) == Mismatch("067b:2303 without a serial")


def test_the_description_names_ids_and_serial() -> None:
    assert bound_by_serial("AAA1").describe() == \
        "USB device 46f4-0001-aaa1 (46f4:0001 serial AAA1)"
