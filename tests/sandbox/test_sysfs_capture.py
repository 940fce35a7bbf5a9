"""USB sysfs fixtures captured from a node guest read like the real /sys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from kubevirt_usb.sandbox.guest_image import build_guest_image
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.scenario import default_scenario
from kubevirt_usb.sandbox.sysfs_capture import capture_usb_sysfs, parse_capture, write_capture

DEVICE = "devices/pci0000:00/0000:00:04.0/usb2/2-1"


def b64(text: str) -> str:
    """An attribute's content as the capture script sends it (with sysfs's trailing newline)."""
    return base64.b64encode(text.encode() + b"\n").decode()


def test_capture_output_becomes_a_sysfs_shaped_tree(tmp_path: Path) -> None:
    text = (
        f"L\tbus/usb/devices/2-1\t../../../{DEVICE}\n"
        f"F\t{DEVICE}/idVendor\t{b64('46f4')}\n"
        f"F\t{DEVICE}/product\t{b64('QEMU USB HARDDRIVE')}\n"
        f"L\t{DEVICE}/driver\t../../../../../bus/usb/drivers/usb\n"
        "noise that is not part of the capture\n"
    )
    write_capture(parse_capture(text), tmp_path)
    entry = tmp_path / "bus/usb/devices/2-1"
    assert entry.resolve() == (tmp_path / DEVICE).resolve()
    assert (entry / "idVendor").read_text() == "46f4\n"
    assert (entry / "product").read_text() == "QEMU USB HARDDRIVE\n"
    assert os.path.basename(os.readlink(entry / "driver")) == "usb"
    assert (entry / "driver").resolve().is_dir()


@pytest.mark.parametrize(
    "line",
    [
        "F\t../../etc/passwd\tAA==",
        "F\t/etc/passwd\tAA==",
        "L\tbus/usb/devices/x\t../../../../../../etc",
        "L\tbus/usb/devices/x\t/etc",
    ],
)
def test_nothing_is_written_outside_the_fixture(tmp_path: Path, line: str) -> None:
    dest = tmp_path / "fixture"
    with pytest.raises(ValueError, match=r"unsafe path|outside"):
        write_capture(parse_capture(line + "\n"), dest)
    assert not (tmp_path / "etc").exists()


@pytest.mark.qemu
async def test_capture_from_a_node_guest(tmp_path: Path) -> None:
    image = build_guest_image()
    async with NodeGuest(default_scenario().node("node1"), image=image) as node:
        live = {d.serial: d for d in await node.usb_devices()}
        names = await capture_usb_sysfs(node, tmp_path)
    root = tmp_path / "bus/usb/devices"
    assert sorted(p.name for p in root.iterdir()) == names
    for serial in ("AAA1", "AAA2", "FT0001"):
        device = root / live[serial].name
        assert device.is_symlink()
        assert not os.path.isabs(os.readlink(device))
        assert device.resolve().is_relative_to(tmp_path.resolve() / "devices")
        assert (device / "serial").read_text() == f"{serial}\n"
        assert (device / "idVendor").read_text().strip() == live[serial].vendor_id
        assert int((device / "devnum").read_text()) == live[serial].devnum
        assert (device / "devpath").read_text().strip() == live[serial].devpath
        assert os.path.basename(os.readlink(device / "driver")) == "usb"
    stick_interface = root / f"{live['AAA1'].name}:1.0"
    assert (stick_interface / "bInterfaceClass").read_text() == "08\n"
    assert os.path.basename(os.readlink(stick_interface / "driver")) == "usb-storage"
    adapter_interface = root / f"{live['FT0001'].name}:1.0"
    assert os.path.basename(os.readlink(adapter_interface / "driver")) == "ftdi_sio"
    root_hubs = [n for n in names if n.startswith("usb")]
    assert root_hubs == ["usb1", "usb2"]
    assert (root / "usb2" / "maxchild").read_text().strip() == "8"
