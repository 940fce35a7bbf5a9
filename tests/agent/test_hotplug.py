"""Hot-plug event sources: which uevents matter, events pushed by code, and the netlink socket."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kubevirt_usb.agent.hotplug import (
    NetlinkEventSource,
    QueueEventSource,
    UEvent,
    is_usb_event,
    parse_kernel_uevent,
)


@pytest.mark.parametrize(("event", "relevant"), [
    (UEvent("add", "usb", "usb_device", "1-1"), True),
    (UEvent("remove", "usb", "usb_device", "1-1.4"), True),
    (UEvent("bind", "usb", "usb_interface", "1-1:1.0"), True),
    (UEvent("add", "usb", None, "usb1"), False),
    (UEvent("add", "block", "disk", "sda"), False),
    (UEvent("add", "scsi", "scsi_device", "0:0:0:0"), False),
    (UEvent("online", "usb", "usb_device", "1-1"), False),
])
def test_only_usb_device_and_interface_events_matter(event: UEvent, relevant: bool) -> None:
    assert is_usb_event(event) is relevant


async def test_pushed_events_come_out_in_order() -> None:
    source = QueueEventSource()
    source.push(UEvent("add", "usb", "usb_device", "1-1"))
    source.push(UEvent("remove", "usb", "usb_device", "1-1"))
    stream = source.events()
    received = [await anext(stream), await anext(stream)]
    assert [e.action for e in received] == ["add", "remove"]


def test_an_unknown_netlink_source_is_refused() -> None:
    with pytest.raises(ValueError, match="kernel"):
        NetlinkEventSource(source="systemd")
    with pytest.raises(ValueError, match="only be read through libudev"):
        NetlinkEventSource(source="udev", libudev=False)


def test_kernel_messages_are_parsed_and_udev_messages_ignored() -> None:
    message = (b"add@/devices/pci0000:00/0000:00:04.0/usb1/1-1\0ACTION=add\0"
               b"DEVPATH=/devices/pci0000:00/0000:00:04.0/usb1/1-1\0SUBSYSTEM=usb\0"
               b"DEVTYPE=usb_device\0PRODUCT=46f4/1/0\0SEQNUM=1234\0")
    assert parse_kernel_uevent(message) == UEvent("add", "usb", "usb_device", "1-1")
    interface = (b"bind@/devices/x/usb1/1-1/1-1:1.0\0ACTION=bind\0"
                 b"DEVPATH=/devices/x/usb1/1-1/1-1:1.0\0SUBSYSTEM=usb\0DEVTYPE=usb_interface\0")
    assert parse_kernel_uevent(interface) == UEvent("bind", "usb", "usb_interface", "1-1:1.0")
    assert parse_kernel_uevent(b"libudev\0\xfe\xed\xca\xfe...") is None
    assert parse_kernel_uevent(b"add@/devices/x\0SUBSYSTEM=usb\0") is None


@pytest.mark.parametrize("libudev", [True, False])
async def test_the_kernel_netlink_socket_opens_without_a_udev_daemon(libudev: bool) -> None:
    """Opens the real kernel uevent socket (through libudev, or directly) and closes it when the
    consumer stops: opening fails at once (OSError) where netlink is not allowed."""
    stream = NetlinkEventSource(source="kernel", libudev=libudev).events()
    waiting = asyncio.ensure_future(anext(stream))
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    for finished in done:
        assert isinstance(finished.result(), UEvent)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await stream.aclose()  # type: ignore[attr-defined]
