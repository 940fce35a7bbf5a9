"""The inventory's records of USB devices."""

from __future__ import annotations

import pytest

from kubevirt_usb.usb.model import (
    DeviceIdentity,
    NodeDevice,
    UsbDevice,
    UsbInterface,
    clean_text,
    port_sort_key,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, None),
        ("", None),
        ("  \t\n", None),
        ("AAA1\n", "AAA1"),
        ("QEMU USB\tHARDDRIVE", "QEMU USB HARDDRIVE"),
        ("A\x00B\x1bC\x7f", "ABC"),
        ("bad \ufffd byte", "bad \ufffd byte"),
        ("Müller ", "Müller"),
    ],
)
def test_clean_text(raw: str | None, clean: str | None) -> None:
    assert clean_text(raw) == clean


def test_device_strings_are_cleaned_whatever_the_source() -> None:
    device = UsbDevice("2-1", "46f4", "0001", 2, 3, serial="  ", manufacturer=" QEMU\n", product="")
    assert device.serial is None
    assert device.manufacturer == "QEMU"
    assert device.product is None
    assert device == UsbDevice("2-1", "46f4", "0001", 2, 3, manufacturer="QEMU")


@pytest.mark.parametrize(("vid", "pid"), [("46F4", "0001"), ("46f4", "1"), ("xyzw", "0001")])
def test_ids_must_be_four_lowercase_hex_digits(vid: str, pid: str) -> None:
    with pytest.raises(ValueError, match="4 lowercase hex digits"):
        UsbDevice("2-1", vid, pid, 2, 3)


def test_drivers_are_those_of_the_interfaces() -> None:
    device = UsbDevice(
        "2-1",
        "0403",
        "6001",
        1,
        2,
        interfaces=(
            UsbInterface(0, 2, 2, 1, "cdc_acm"),
            UsbInterface(1, 10, 0, 0, "cdc_acm"),
            UsbInterface(2, 255, 0, 0, None),
            UsbInterface(3, 1, 1, 0, "snd-usb-audio"),
        ),
    )
    assert device.drivers == ("cdc_acm", "snd-usb-audio")
    assert device.usb_id == "0403:6001"


def test_node_device_location() -> None:
    device = NodeDevice("node1", UsbDevice("3-1.4", "067b", "2303", 3, 9))
    assert device.location == ("node1", "3-1.4")


def test_identity_tier_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown identity tier"):
        DeviceIdentity("bus", "bus:2:3")  # type: ignore[arg-type]


def test_ports_sort_the_way_people_count() -> None:
    ports = ["2-1.10", "10-1", "2-1", "2-1.9", "1-2"]
    assert sorted(ports, key=port_sort_key) == ["1-2", "2-1", "2-1.9", "2-1.10", "10-1"]
