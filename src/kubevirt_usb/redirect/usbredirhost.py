"""`libusbredirhost` through ctypes: the usb-host side of a usbredir connection, driven with a
libusb device handle the engine opened itself (Debian `libusbredirhost1` 0.13.0, Fedora/RHEL
`usbredir`; the functions used here exist unchanged since 0.6).

`usbredirhost_open_full` takes ownership of the handle: it sends the usbredir `hello`, claims the
interfaces (detaching kernel drivers), resets the device (as virtually every guest does first) and
announces it once the peer's `hello` arrived; `usbredirhost_close` releases the interfaces, gives
the device back to its kernel drivers and closes the handle. The caller pumps data: read callback
and write callback, `read_guest_data` when the socket is readable, `write_guest_data` while
`has_data_to_write`. All calls are made from one thread, so no locks are passed.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable

LIBRARY = "libusbredirhost.so.1"

LOG_ERROR = 1
LOG_WARNING = 2
LOG_INFO = 3
LOG_DEBUG = 4

READ_IO_ERROR = -1
READ_PARSE_ERROR = -2
READ_DEVICE_REJECTED = -3
READ_DEVICE_LOST = -4

LogFunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
ReadFunc = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
WriteFunc = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
FlushFunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

Reader = Callable[[int, int], int]
"""`read(address, count)`: fill up to `count` bytes at `address`; bytes read, 0 when nothing is
there now, -1 when the connection is gone."""
Writer = Callable[[int, int], int]
"""`write(address, count)`: send up to `count` bytes from `address`; bytes written, 0 when the
socket is full now, -1 when the connection is gone."""
Logger = Callable[[int, str], None]


class UsbRedirHostError(RuntimeError):
    """`usbredirhost_open_full` refused the device (claiming or resetting it failed)."""


class UsbRedirHostLib:
    """The library, loaded from `library`."""

    def __init__(self, *, library: str = LIBRARY) -> None:
        lib = ctypes.CDLL(library, use_errno=True)
        vp, ip = ctypes.c_void_p, ctypes.c_int
        lib.usbredirhost_open_full.restype = vp
        lib.usbredirhost_open_full.argtypes = [
            vp, vp, LogFunc, ReadFunc, WriteFunc, FlushFunc, vp, vp, vp, vp, vp,
            ctypes.c_char_p, ip, ip,
        ]
        lib.usbredirhost_close.restype = None
        lib.usbredirhost_close.argtypes = [vp]
        for name in ("usbredirhost_read_guest_data", "usbredirhost_has_data_to_write",
                     "usbredirhost_write_guest_data"):
            getattr(lib, name).restype = ip
            getattr(lib, name).argtypes = [vp]
        self.lib = lib


class UsbRedirHost:
    """One usbredir host: the device `handle` (owned from now on) on one connection."""

    def __init__(self, lib: UsbRedirHostLib, *, context: int, handle: int, read: Reader,
                 write: Writer, log: Logger, version: str, verbose: int = LOG_INFO) -> None:
        self._lib = lib.lib

        def on_log(_priv: object, level: int, message: bytes | None) -> None:
            with contextlib.suppress(Exception):  # nothing may cross into C
                log(level, (message or b"").decode("utf-8", "replace"))

        def on_read(_priv: object, data: int | None, count: int) -> int:
            try:
                return read(data or 0, count)
            except Exception:
                return -1

        def on_write(_priv: object, data: int | None, count: int) -> int:
            try:
                return write(data or 0, count)
            except Exception:
                return -1

        def on_flush(_priv: object) -> None:
            """Writes are pumped by the caller's loop after every event."""

        self._callbacks = (LogFunc(on_log), ReadFunc(on_read), WriteFunc(on_write),
                           FlushFunc(on_flush))  # keep alive as long as the host
        host = self._lib.usbredirhost_open_full(
            ctypes.c_void_p(context), ctypes.c_void_p(handle), *self._callbacks,
            None, None, None, None, None, version.encode(), verbose, 0)
        if not host:
            raise UsbRedirHostError("usbredirhost_open_full refused the device")
        self._host = ctypes.c_void_p(host)

    def read_guest_data(self) -> int:
        """Parse what the peer sent; 0 or one of the READ_* errors."""
        return int(self._lib.usbredirhost_read_guest_data(self._host))

    def has_data_to_write(self) -> int:
        return int(self._lib.usbredirhost_has_data_to_write(self._host))

    def write_guest_data(self) -> int:
        """Send queued packets; 0, or -1 after a write error."""
        return int(self._lib.usbredirhost_write_guest_data(self._host))

    def close(self) -> None:
        """Release the device to its kernel drivers and close it; idempotent."""
        if self._host:
            self._lib.usbredirhost_close(self._host)
            self._host = ctypes.c_void_p()
