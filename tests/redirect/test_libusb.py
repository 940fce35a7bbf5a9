"""The ctypes bindings load the distro's libusb-1.0 and work without any USB device."""

from __future__ import annotations

import os

import pytest

from kubevirt_usb.redirect.libusb import LibUsb, LibUsbError, error_name


def test_a_context_without_device_discovery_has_event_descriptors() -> None:
    usb = LibUsb()
    usb.init()
    try:
        assert usb.version().startswith("1.0.")
        assert usb.pollfds()  # its event and timer descriptors
        assert usb.handles_timeouts()  # Linux: a timerfd
        usb.handle_events_now()
    finally:
        usb.exit()


def test_wrapping_something_that_is_not_usbfs_fails() -> None:
    usb = LibUsb()
    usb.init()
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(LibUsbError):
            usb.wrap(fd)
    finally:
        os.close(fd)
        usb.exit()


def test_error_names_are_libusbs() -> None:
    assert error_name(-3) == "LIBUSB_ERROR_ACCESS"
    assert error_name(-1234) == "libusb error -1234"
