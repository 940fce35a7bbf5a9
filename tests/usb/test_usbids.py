"""Names from the usb.ids database."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb.usb.usbids import (
    DEFAULT_USB_IDS,
    UsbIds,
    decode_lines,
    parse_usb_ids,
    usb_ids_at,
)

SAMPLE = """\
#
#\tList of USB ID's
#
# Syntax:
# vendor  vendor_name
#\tdevice  device_name\t\t\t\t<-- single tab
#\t\tinterface  interface_name\t\t<-- two tabs

046d  Logitech, Inc.
\tc52b  Unifying Receiver
\t\t00  keyboard interface
067b  Prolific Technology, Inc.
\t2303  PL2303 Serial Port / Mobile Phone Data Cable
\tzzzz  not a product id
0bad
\t0001  product of a vendor line without a name

# List of known device classes, subclasses and protocols
C 08  Mass Storage
\t06  SCSI
\t\t50  Bulk-Only
C ff  Vendor Specific Class
\tff  Vendor Specific Subclass
\t\tff  Vendor Specific Protocol

AT 0100  USB Undefined
HID 21  HID
L 0001  Arabic
\t01  Saudi Arabia
\t\t02  not a protocol
VT 0000  Undefined
"""


def _ids(tmp_path: Path, content: str | bytes) -> UsbIds:
    path = tmp_path / "usb.ids"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return UsbIds(path)


def test_vendor_and_product_names(tmp_path: Path) -> None:
    ids = _ids(tmp_path, SAMPLE)
    assert ids.vendor_name("046d") == "Logitech, Inc."
    assert ids.vendor_name("046D") == "Logitech, Inc."
    assert ids.product_name("046d", "c52b") == "Unifying Receiver"
    assert ids.product_name("067b", "2303") == "PL2303 Serial Port / Mobile Phone Data Cable"
    assert ids.product_name("046d", "0000") is None
    assert ids.vendor_name("ffff") is None


def test_class_subclass_and_protocol_names(tmp_path: Path) -> None:
    ids = _ids(tmp_path, SAMPLE)
    assert ids.class_name(0x08) == "Mass Storage"
    assert ids.subclass_name(0x08, 0x06) == "SCSI"
    assert ids.protocol_name(0x08, 0x06, 0x50) == "Bulk-Only"
    assert ids.protocol_name(0xFF, 0xFF, 0xFF) == "Vendor Specific Protocol"
    assert ids.class_name(0x03) is None


def test_sections_after_classes_do_not_leak_into_them(tmp_path: Path) -> None:
    data = _ids(tmp_path, SAMPLE).data
    assert (0xFF, 0x01) not in data.subclasses  # "\t01  Saudi Arabia" belongs to the L section
    assert (0xFF, 0xFF, 0x02) not in data.protocols
    assert set(data.classes) == {0x08, 0xFF}
    assert set(data.vendors) == {0x046D, 0x067B}


def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    data = _ids(tmp_path, SAMPLE).data
    assert set(data.products) == {(0x046D, 0xC52B), (0x067B, 0x2303)}


def test_lookups_with_bad_ids_answer_none(tmp_path: Path) -> None:
    ids = _ids(tmp_path, SAMPLE)
    assert ids.vendor_name("not hex") is None
    assert ids.vendor_name("10000") is None
    assert ids.product_name("046d", "") is None


def test_latin1_and_utf8_lines_both_decode(tmp_path: Path) -> None:
    raw = b"0001  Fr\xe9d's Electronics\n0002  M\xc3\xbcller GmbH\r\n\t0003  Gr\xfc\xdfe\n"
    ids = _ids(tmp_path, raw)
    assert ids.vendor_name("0001") == "Fréd's Electronics"
    assert ids.vendor_name("0002") == "Müller GmbH"
    assert ids.product_name("0002", "0003") == "Grüße"


def test_first_entry_wins(tmp_path: Path) -> None:
    ids = _ids(tmp_path, "0001  First\n0001  Second\n\t0002  A\n")
    assert ids.vendor_name("0001") == "First"
    assert ids.product_name("0001", "0002") == "A"


def test_decode_lines_splits_on_newlines_only() -> None:
    assert decode_lines(b"a\x0cb\nc") == ["a\x0cb", "c"]


def test_parse_accepts_any_iterable_of_lines() -> None:
    data = parse_usb_ids(iter(["1234  Vendor", "\tabcd  Thing"]))
    assert data.products == {(0x1234, 0xABCD): "Thing"}


def test_missing_file_is_an_empty_database(tmp_path: Path) -> None:
    ids = UsbIds(tmp_path / "absent.ids")
    assert ids.vendor_name("046d") is None
    assert ids.class_name(8) is None
    assert ids.error is not None
    assert "absent.ids" in ids.error


def test_file_is_read_on_first_lookup_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "usb.ids"
    ids = UsbIds(path)
    path.write_text("0001  Before\n")
    assert ids.vendor_name("0001") == "Before"
    path.write_text("0001  After\n")
    assert ids.vendor_name("0001") == "Before"
    assert ids.error is None


def test_one_shared_database_per_path(tmp_path: Path) -> None:
    assert usb_ids_at(tmp_path / "a") is usb_ids_at(tmp_path / "a")
    assert usb_ids_at(tmp_path / "a") is not usb_ids_at(tmp_path / "b")


@pytest.mark.parametrize(
    ("vendor", "product", "vendor_name", "product_name"),
    [
        ("1d6b", "0002", "Linux Foundation", "2.0 root hub"),
        ("0403", "6001", "Future Technology Devices International, Ltd", "FT232 Serial (UART) IC"),
        ("46f4", "0001", "QEMU", None),
    ],
)
def test_installed_debian_usb_ids(
    vendor: str, product: str, vendor_name: str, product_name: str | None
) -> None:
    ids = UsbIds(DEFAULT_USB_IDS)
    assert ids.error is None
    assert ids.vendor_name(vendor) == vendor_name
    assert ids.product_name(vendor, product) == product_name
    assert ids.class_name(0x09) == "Hub"
    assert ids.protocol_name(0x08, 0x06, 0x50) == "Bulk-Only"


@settings(max_examples=100)
@given(st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda prefix, code, name: prefix + code + b"  " + name,
              st.sampled_from([b"", b"\t", b"\t\t", b"C "]),
              st.sampled_from([b"00", b"08", b"46f4", b"ffff", b"zz"]),
              st.one_of(st.binary(max_size=20), st.just(b"Evil\x1b[2J\xe2\x80\xae\rName")))),
    max_size=12).map(b"\n".join))
def test_any_usb_ids_bytes_parse_into_printable_names(raw: bytes) -> None:
    data = parse_usb_ids(decode_lines(raw))
    for table in (data.vendors, data.products, data.classes, data.subclasses, data.protocols):
        for name in table.values():
            assert name == name.strip()
            assert name
            assert not [c for c in name if unicodedata.category(c) == "Cc"]


def test_control_characters_in_usb_ids_names_are_dropped() -> None:
    data = parse_usb_ids(["C 08  Mass\x1b[2J Storage\r", "46f4  QE\x00MU"])
    assert data.classes[0x08] == "Mass[2J Storage"
    assert data.vendors[0x46F4] == "QEMU"
