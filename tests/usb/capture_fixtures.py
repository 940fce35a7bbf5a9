"""Capture the sysfs fixtures in tests/usb/fixtures/ from real QEMU node guests (not a test).

    .venv/bin/python -m tests.usb.capture_fixtures

Each fixture is what `kubevirt_usb.sandbox.sysfs_capture` copies from a node guest booted with the
scenario below: identical sticks told apart by serial, identical serial adapters without serial
numbers on different ports, a hub with a keyboard, a composite
audio device (control and streaming interfaces) and a stick behind it, and a stick whose serial
holds markup, quotes and a non-ASCII character.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from kubevirt_usb.sandbox.guest_image import build_guest_image
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec
from kubevirt_usb.sandbox.sysfs_capture import capture_usb_sysfs

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ODD_SERIAL = 'odd<b>&"\u00e9 x'

MIXED = NodeSpec(name="node1", devices=[
    DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial="AAA1", port="1"),
    DeviceSpec(id="stick2", kind=DeviceKind.USB_STORAGE, serial="AAA2", port="2"),
    # serial="": an empty iSerialNumber string, so the kernel shows no serial at all (QEMU
    # would otherwise make one up from the port path)
    DeviceSpec(id="serial1", kind=DeviceKind.USB_SERIAL, port="3", serial=""),
    DeviceSpec(id="serial2", kind=DeviceKind.USB_SERIAL, port="4", serial=""),
    DeviceSpec(id="hub1", kind=DeviceKind.HUB, port="5"),
    DeviceSpec(id="kbd1", kind=DeviceKind.USB_KBD, hub="hub1", port="2"),
    DeviceSpec(id="audio1", kind=DeviceKind.USB_AUDIO, hub="hub1", port="3"),
    DeviceSpec(id="stick3", kind=DeviceKind.USB_STORAGE, hub="hub1", port="1",
               serial=ODD_SERIAL),
])


async def capture(node: NodeSpec, name: str) -> list[str]:
    image = await asyncio.to_thread(build_guest_image)
    async with NodeGuest(node, image=image, share_host_root=False) as guest:
        dest = FIXTURES / name
        shutil.rmtree(dest, ignore_errors=True)
        return await capture_usb_sysfs(guest, dest)


def main() -> None:
    entries = asyncio.run(capture(MIXED, "mixed"))
    print(f"captured {len(entries)} entries into {FIXTURES / 'mixed'}")


if __name__ == "__main__":
    main()
