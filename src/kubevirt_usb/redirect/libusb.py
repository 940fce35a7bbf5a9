"""The few libusb-1.0 calls the engine needs, through ctypes (no compiled extension, so the distro's
library is used as it is: Debian bookworm 1.0.26, RHEL 8 1.0.23, UBI 9 1.0.24, and newer).

The engine never enumerates: the context is created with device discovery off (no udev needed in
a container) and the device is opened from a usbfs file descriptor the engine opened itself
(`libusb_wrap_sys_device`, libusb >= 1.0.23). So the device is exactly the one at that
`/dev/bus/usb/BBB/DDD`, whatever other device has the same vendor:product.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

LIBRARY = "libusb-1.0.so.0"

OPTION_LOG_LEVEL = 0
OPTION_NO_DEVICE_DISCOVERY = 2
LOG_LEVEL_NONE = 0
LOG_LEVEL_ERROR = 1

ERROR_NAMES = {
    -1: "LIBUSB_ERROR_IO", -2: "LIBUSB_ERROR_INVALID_PARAM", -3: "LIBUSB_ERROR_ACCESS",
    -4: "LIBUSB_ERROR_NO_DEVICE", -5: "LIBUSB_ERROR_NOT_FOUND", -6: "LIBUSB_ERROR_BUSY",
    -7: "LIBUSB_ERROR_TIMEOUT", -8: "LIBUSB_ERROR_OVERFLOW", -9: "LIBUSB_ERROR_PIPE",
    -10: "LIBUSB_ERROR_INTERRUPTED", -11: "LIBUSB_ERROR_NO_MEM", -12: "LIBUSB_ERROR_NOT_SUPPORTED",
    -99: "LIBUSB_ERROR_OTHER",
}


class DeviceDescriptor(ctypes.Structure):
    """`struct libusb_device_descriptor`."""

    _fields_ = [
        ("bLength", ctypes.c_uint8), ("bDescriptorType", ctypes.c_uint8),
        ("bcdUSB", ctypes.c_uint16), ("bDeviceClass", ctypes.c_uint8),
        ("bDeviceSubClass", ctypes.c_uint8), ("bDeviceProtocol", ctypes.c_uint8),
        ("bMaxPacketSize0", ctypes.c_uint8), ("idVendor", ctypes.c_uint16),
        ("idProduct", ctypes.c_uint16), ("bcdDevice", ctypes.c_uint16),
        ("iManufacturer", ctypes.c_uint8), ("iProduct", ctypes.c_uint8),
        ("iSerialNumber", ctypes.c_uint8), ("bNumConfigurations", ctypes.c_uint8),
    ]


class PollFd(ctypes.Structure):
    """`struct libusb_pollfd`."""

    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short)]


class TimeVal(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Version(ctypes.Structure):
    """`struct libusb_version`."""

    _fields_ = [("major", ctypes.c_uint16), ("minor", ctypes.c_uint16),
                ("micro", ctypes.c_uint16), ("nano", ctypes.c_uint16),
                ("rc", ctypes.c_char_p), ("describe", ctypes.c_char_p)]


PollFdAdded = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_short, ctypes.c_void_p)
PollFdRemoved = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)


class LibUsbError(OSError):
    """A libusb call failed; `code` is libusb's negative error code."""

    def __init__(self, call: str, code: int) -> None:
        super().__init__(f"{call}: {error_name(code)}")
        self.code = code


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"libusb error {code}")


@dataclass(frozen=True)
class Descriptor:
    vendor_id: int
    product_id: int
    device_class: int


def _bind(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


class LibUsb:
    """libusb-1.0 loaded from `library`; one context, created by `init()`."""

    def __init__(self, *, library: str = LIBRARY) -> None:
        lib = ctypes.CDLL(library, use_errno=True)
        vp, ip = ctypes.c_void_p, ctypes.c_int
        _bind(lib, "libusb_init", ip, ctypes.POINTER(vp))
        _bind(lib, "libusb_exit", None, vp)
        _bind(lib, "libusb_wrap_sys_device", ip, vp, ctypes.c_ssize_t, ctypes.POINTER(vp))
        _bind(lib, "libusb_close", None, vp)
        _bind(lib, "libusb_get_device", vp, vp)
        _bind(lib, "libusb_get_device_descriptor", ip, vp, ctypes.POINTER(DeviceDescriptor))
        _bind(lib, "libusb_get_pollfds", ctypes.POINTER(ctypes.POINTER(PollFd)), vp)
        _bind(lib, "libusb_free_pollfds", None, ctypes.POINTER(ctypes.POINTER(PollFd)))
        _bind(lib, "libusb_pollfds_handle_timeouts", ip, vp)
        _bind(lib, "libusb_get_next_timeout", ip, vp, ctypes.POINTER(TimeVal))
        _bind(lib, "libusb_handle_events_timeout_completed", ip, vp, ctypes.POINTER(TimeVal),
              ctypes.POINTER(ip))
        _bind(lib, "libusb_set_pollfd_notifiers", None, vp, PollFdAdded, PollFdRemoved, vp)
        _bind(lib, "libusb_get_version", ctypes.POINTER(Version))
        lib.libusb_set_option.restype = ip  # variadic: argtypes stay unset
        self.lib = lib
        self.ctx = ctypes.c_void_p()
        self._notifiers: tuple[object, object] | None = None

    def version(self) -> str:
        v = self.lib.libusb_get_version().contents
        return f"{v.major}.{v.minor}.{v.micro}.{v.nano}"

    def init(self) -> None:
        """Create the context with device discovery off (set before init, as libusb requires)."""
        self.lib.libusb_set_option(None, ctypes.c_int(OPTION_NO_DEVICE_DISCOVERY))
        rc = self.lib.libusb_init(ctypes.byref(self.ctx))
        if rc != 0:
            raise LibUsbError("libusb_init", rc)

    def set_log_level(self, level: int) -> None:
        self.lib.libusb_set_option(self.ctx, ctypes.c_int(OPTION_LOG_LEVEL), ctypes.c_int(level))

    def exit(self) -> None:
        if self.ctx:
            self.lib.libusb_exit(self.ctx)
            self.ctx = ctypes.c_void_p()

    def wrap(self, fd: int) -> int:
        """A device handle for an open usbfs file descriptor (the fd stays ours to close)."""
        handle = ctypes.c_void_p()
        rc = self.lib.libusb_wrap_sys_device(self.ctx, fd, ctypes.byref(handle))
        if rc != 0 or not handle.value:
            raise LibUsbError("libusb_wrap_sys_device", rc or -99)
        return handle.value

    def close(self, handle: int) -> None:
        self.lib.libusb_close(ctypes.c_void_p(handle))

    def descriptor(self, handle: int) -> Descriptor:
        desc = DeviceDescriptor()
        device = self.lib.libusb_get_device(ctypes.c_void_p(handle))
        rc = self.lib.libusb_get_device_descriptor(device, ctypes.byref(desc))
        if rc != 0:
            raise LibUsbError("libusb_get_device_descriptor", rc)
        return Descriptor(vendor_id=desc.idVendor, product_id=desc.idProduct,
                          device_class=desc.bDeviceClass)

    def pollfds(self) -> list[tuple[int, int]]:
        """(fd, poll events) libusb wants watched now."""
        array = self.lib.libusb_get_pollfds(self.ctx)
        out: list[tuple[int, int]] = []
        if not array:
            return out
        try:
            index = 0
            while array[index]:
                entry = array[index].contents
                out.append((entry.fd, entry.events & 0xFFFF))
                index += 1
        finally:
            self.lib.libusb_free_pollfds(array)
        return out

    def handles_timeouts(self) -> bool:
        """True when libusb's own fds cover its timeouts (Linux: a timerfd)."""
        return bool(self.lib.libusb_pollfds_handle_timeouts(self.ctx))

    def next_timeout(self) -> float | None:
        """Seconds until libusb needs to handle a timeout, None if none is pending."""
        tv = TimeVal()
        rc = self.lib.libusb_get_next_timeout(self.ctx, ctypes.byref(tv))
        if rc <= 0:
            return None
        return float(tv.tv_sec) + float(tv.tv_usec) / 1e6

    def handle_events_now(self) -> None:
        """Handle whatever events are ready, without waiting."""
        zero = TimeVal(0, 0)
        rc = self.lib.libusb_handle_events_timeout_completed(self.ctx, ctypes.byref(zero), None)
        if rc not in (0, -10):  # LIBUSB_ERROR_INTERRUPTED is harmless
            raise LibUsbError("libusb_handle_events_timeout_completed", rc)

    def on_pollfds_changed(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever libusb adds or removes a file descriptor to watch."""

        def added(_fd: int, _events: int, _data: object) -> None:
            callback()

        def removed(_fd: int, _data: object) -> None:
            callback()

        notifiers = (PollFdAdded(added), PollFdRemoved(removed))
        self._notifiers = notifiers  # keep the C callbacks alive
        self.lib.libusb_set_pollfd_notifiers(self.ctx, notifiers[0], notifiers[1], None)
