"""The usb.ids database: human names for USB vendor, product and class codes.

`usb.ids` (Debian package `usb.ids`, `/usr/share/misc/usb.ids`) lists vendors with their products
(one tab) and interfaces (two tabs), then a `C` section of device classes with subclasses and
protocols, then other sections (`AT`, `HID`, `R`, `BIAS`, `PHY`, `HUT`, `L`, `HCC`, `VT`) this
module ignores. Lines that fit nowhere are skipped; each line is decoded as UTF-8, or as Latin-1
when it is not (older copies of the file were Latin-1); names are cleaned like descriptor strings
(`model.clean_text`: no control characters), since they are published and shown as they are. A
missing or unreadable file is an empty database: every lookup answers None.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevirt_usb.usb.model import clean_text

DEFAULT_USB_IDS = Path("/usr/share/misc/usb.ids")

_VENDOR = re.compile(r"([0-9A-Fa-f]{4})\s+(\S.*)")
_CLASS = re.compile(r"C\s+([0-9A-Fa-f]{2})\s+(\S.*)")
_PRODUCT = re.compile(r"\t([0-9A-Fa-f]{4})\s+(\S.*)")
_SUBCLASS = re.compile(r"\t([0-9A-Fa-f]{2})\s+(\S.*)")
_PROTOCOL = re.compile(r"\t\t([0-9A-Fa-f]{2})\s+(\S.*)")


@dataclass(frozen=True)
class UsbIdsData:
    """The names usb.ids gives, keyed by numeric ids."""

    vendors: dict[int, str] = field(default_factory=dict)
    products: dict[tuple[int, int], str] = field(default_factory=dict)
    classes: dict[int, str] = field(default_factory=dict)
    subclasses: dict[tuple[int, int], str] = field(default_factory=dict)
    protocols: dict[tuple[int, int, int], str] = field(default_factory=dict)


def _put(table: dict[Any, str], key: Any, raw: str) -> None:
    name = clean_text(raw)
    if name is not None:
        table.setdefault(key, name)


class _Parser:
    """Line-by-line state of a usb.ids parse."""

    def __init__(self) -> None:
        self.data = UsbIdsData()
        self.section = "vendors"
        self.vendor: int | None = None
        self.cls: int | None = None
        self.subclass: int | None = None

    def feed(self, line: str) -> None:
        line = line.rstrip()
        if not line or line.startswith("#"):
            return
        if not line.startswith("\t"):
            self._top(line)
        elif self.section == "vendors":
            self._vendor_child(line)
        elif self.section == "classes":
            self._class_child(line)

    def _top(self, line: str) -> None:
        self.vendor = self.cls = self.subclass = None
        if m := _VENDOR.fullmatch(line):
            self.section, self.vendor = "vendors", int(m[1], 16)
            _put(self.data.vendors, self.vendor, m[2])
        elif m := _CLASS.fullmatch(line):
            self.section, self.cls = "classes", int(m[1], 16)
            _put(self.data.classes, self.cls, m[2])
        else:
            self.section = "other"

    def _vendor_child(self, line: str) -> None:
        if self.vendor is not None and (m := _PRODUCT.fullmatch(line)):
            _put(self.data.products, (self.vendor, int(m[1], 16)), m[2])

    def _class_child(self, line: str) -> None:
        if self.cls is None:
            return
        if m := _SUBCLASS.fullmatch(line):
            self.subclass = int(m[1], 16)
            _put(self.data.subclasses, (self.cls, self.subclass), m[2])
        elif self.subclass is not None and (m := _PROTOCOL.fullmatch(line)):
            key = (self.cls, self.subclass, int(m[1], 16))
            _put(self.data.protocols, key, m[2])


def parse_usb_ids(lines: Iterable[str]) -> UsbIdsData:
    """Parse usb.ids text (an iterable of lines, e.g. `text.split("\\n")`); first entry wins."""
    parser = _Parser()
    for line in lines:
        parser.feed(line)
    return parser.data


def decode_lines(raw: bytes) -> list[str]:
    """Split usb.ids bytes into lines, each decoded as UTF-8 or, failing that, Latin-1."""
    lines = []
    for chunk in raw.split(b"\n"):
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("latin-1"))
    return lines


def _hex(value: str | int, limit: int) -> int | None:
    if isinstance(value, int):
        number = value
    else:
        try:
            number = int(value, 16)
        except ValueError:
            return None
    return number if 0 <= number <= limit else None


class UsbIds:
    """The usb.ids file at `path`, read and parsed on the first lookup."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: UsbIdsData | None = None
        self._error: str | None = None

    @property
    def data(self) -> UsbIdsData:
        """The parsed database (empty when the file cannot be read)."""
        with self._lock:
            if self._data is None:
                try:
                    self._data = parse_usb_ids(decode_lines(self.path.read_bytes()))
                except OSError as exc:
                    self._error = f"cannot read {self.path}: {exc.strerror or exc}"
                    self._data = UsbIdsData()
            return self._data

    @property
    def error(self) -> str | None:
        """Why the database is empty, if the file could not be read."""
        _ = self.data
        return self._error

    def vendor_name(self, vendor_id: str | int) -> str | None:
        """The vendor's name for a vendor id such as "046d"."""
        vid = _hex(vendor_id, 0xFFFF)
        return None if vid is None else self.data.vendors.get(vid)

    def product_name(self, vendor_id: str | int, product_id: str | int) -> str | None:
        """The product's name for a vendor:product pair such as ("046d", "c52b")."""
        vid, pid = _hex(vendor_id, 0xFFFF), _hex(product_id, 0xFFFF)
        if vid is None or pid is None:
            return None
        return self.data.products.get((vid, pid))

    def class_name(self, class_code: int) -> str | None:
        """The name of a USB class code, e.g. 0x08 -> "Mass Storage"."""
        return self.data.classes.get(class_code)

    def subclass_name(self, class_code: int, subclass: int) -> str | None:
        """The name of a subclass within a class, e.g. (0x08, 0x06) -> "SCSI"."""
        return self.data.subclasses.get((class_code, subclass))

    def protocol_name(self, class_code: int, subclass: int, protocol: int) -> str | None:
        """The name of a protocol, e.g. (0x08, 0x06, 0x50) -> "Bulk-Only"."""
        return self.data.protocols.get((class_code, subclass, protocol))


@functools.cache
def usb_ids_at(path: Path = DEFAULT_USB_IDS) -> UsbIds:
    """The shared, lazily parsed database for `path` (one per path per process)."""
    return UsbIds(path)
