"""The fake sysfs trees laid out as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

from kubevirt_usb.sandbox.sysfs_tree import HUB, Iface, SysfsTree


def test_a_device_behind_a_hub_sits_under_its_parent_with_a_bus_link(tmp_path: Path) -> None:
    tree = SysfsTree(tmp_path)
    tree.root_hub(2)
    tree.device("2-1", interfaces=HUB, bDeviceClass="09")
    stick = tree.device("2-1.3", devnum=5, serial="S1")
    assert stick == tmp_path / "devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1.3"
    link = tmp_path / "bus/usb/devices/2-1.3"
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == stick.resolve()
    assert (link / "serial").read_text() == "S1\n"
    assert (link / "devnum").read_text() == "5\n"


def test_attributes_can_be_left_out_or_raw_bytes(tmp_path: Path) -> None:
    device = SysfsTree(tmp_path).device("1-2", serial=None, product=b"\xff\xfe")
    assert not (device / "serial").exists()
    assert (device / "product").read_bytes().startswith(b"\xff\xfe")


def test_an_interface_names_its_driver_by_a_relative_link(tmp_path: Path) -> None:
    device = SysfsTree(tmp_path).device("1-2", interfaces=(Iface(driver="ftdi_sio"),))
    driver = device / "1-2:1.0" / "driver"
    assert not os.path.isabs(os.readlink(driver))
    assert driver.resolve() == (tmp_path / "bus/usb/drivers/ftdi_sio").resolve()
    assert (device / "1-2:1.0" / "bInterfaceClass").read_text() == "08\n"
