"""The usbredirhost bindings load the distro's libusbredirhost."""

from __future__ import annotations

from kubevirt_usb.redirect.usbredirhost import UsbRedirHostLib


def test_the_library_and_its_functions_are_there() -> None:
    lib = UsbRedirHostLib().lib
    for name in ("usbredirhost_open_full", "usbredirhost_close", "usbredirhost_read_guest_data",
                 "usbredirhost_write_guest_data", "usbredirhost_has_data_to_write"):
        assert callable(getattr(lib, name))
