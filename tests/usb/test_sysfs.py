"""The sysfs scanner over small trees laid out like a node's /sys."""

from __future__ import annotations

import dataclasses
import errno
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb import crds, models
from kubevirt_usb.agent.objects import device_labels, device_status, is_label_value
from kubevirt_usb.apiserver.schema import validate
from kubevirt_usb.sandbox.sysfs_tree import HUB, SERIAL_PORT, USB_IDS_TEXT, Iface, SysfsTree
from kubevirt_usb.usb.identity import MAX_NAME_LENGTH, published_records
from kubevirt_usb.usb.model import NodeDevice, UsbDevice, UsbInterface
from kubevirt_usb.usb.sysfs import (
    MAX_ATTRIBUTE_BYTES,
    MAX_DESCRIPTOR_LENGTH,
    ScanResult,
    SkippedDevice,
    SysfsUnreadable,
    read_device,
    resolve_port,
    scan,
)
from kubevirt_usb.usb.usbids import UsbIds


@pytest.fixture
def tree(tmp_path: Path) -> SysfsTree:
    built = SysfsTree(tmp_path / "sys")
    built.root_hub(1)
    built.root_hub(2)
    return built


@pytest.fixture
def usb_ids(tmp_path: Path) -> UsbIds:
    path = tmp_path / "usb.ids"
    path.write_text(USB_IDS_TEXT)
    return UsbIds(path)


def _scan(tree: SysfsTree, usb_ids: UsbIds) -> ScanResult:
    return scan(sysfs_root=tree.root, usb_ids=usb_ids)


def test_node_with_two_identical_sticks_a_serial_adapter_and_a_hub(
    tree: SysfsTree, usb_ids: UsbIds
) -> None:
    tree.device("2-1", devnum=2, serial="AAA1")
    tree.device("2-2", devnum=3, serial="AAA2")
    tree.device(
        "1-1",
        devnum=2,
        interfaces=SERIAL_PORT,
        idVendor="0403",
        idProduct="6001",
        manufacturer="QEMU",
        product="QEMU USB SERIAL",
        serial="1",
        speed="12",
        version=" 1.10",
        bcdDevice="0400",
    )
    tree.device(
        "1-3", devnum=3, interfaces=HUB, bDeviceClass="09", serial=None, product="QEMU USB Hub"
    )
    tree.device("1-3.1", devnum=4, serial="BBB1")

    result = _scan(tree, usb_ids)

    assert result.skipped == ()
    assert [d.port_path for d in result.devices] == ["1-1", "1-3", "1-3.1", "2-1", "2-2"]
    adapter, hub, behind_hub, stick1, stick2 = result.devices
    assert (stick1.serial, stick1.devnum, stick2.serial, stick2.devnum) == ("AAA1", 2, "AAA2", 3)
    assert stick1.usb_id == "46f4:0001"
    assert stick1.vendor_name == "QEMU"  # from usb.ids
    assert stick1.product_name == "QEMU USB HARDDRIVE"  # usb.ids has none: descriptor string
    assert stick1.manufacturer == "QEMU"
    assert stick1.speed == "5000"
    assert stick1.usb_version == "3.00"
    assert stick1.bus == 2
    assert stick1.removable is True
    assert stick1.interfaces == (UsbInterface(0, 0x08, 0x06, 0x50, "usb-storage", "Mass Storage"),)
    assert stick1.drivers == ("usb-storage",)
    assert stick1.is_hub is False
    assert adapter.vendor_name == "Future Technology Devices International, Ltd"
    assert adapter.product_name == "FT232 Serial (UART) IC"
    assert (adapter.speed, adapter.usb_version, adapter.bcd_device) == ("12", "1.10", "0400")
    assert adapter.drivers == ("ftdi_sio",)
    assert hub.is_hub is True
    assert hub.device_class_name == "Hub"
    assert hub.serial is None
    assert (behind_hub.serial, behind_hub.devnum) == ("BBB1", 4)


def test_root_hubs_and_their_interfaces_are_not_devices(tree: SysfsTree, usb_ids: UsbIds) -> None:
    assert _scan(tree, usb_ids) == ScanResult(devices=(), skipped=())


def test_missing_sysfs_usb_directory_means_no_devices(tmp_path: Path, usb_ids: UsbIds) -> None:
    assert scan(sysfs_root=tmp_path / "nothing", usb_ids=usb_ids) == ScanResult((), ())


def test_missing_optional_attributes_are_none(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device(
        "2-1",
        manufacturer=None,
        product=None,
        serial=None,
        speed=None,
        version=None,
        bcdDevice=None,
        removable=None,
        interfaces=(Iface(driver=None),),
    )
    (device,) = _scan(tree, usb_ids).devices
    assert (device.manufacturer, device.product, device.serial) == (None, None, None)
    assert (device.speed, device.usb_version, device.bcd_device) == (None, None, None)
    assert device.removable is None
    assert device.product_name is None  # neither usb.ids nor the device names it
    assert device.vendor_name == "QEMU"
    assert device.drivers == ()


@pytest.mark.parametrize("raw", ["", "   ", "\t \r"])
def test_empty_or_blank_strings_are_none(tree: SysfsTree, usb_ids: UsbIds, raw: str) -> None:
    tree.device("2-1", serial=raw, manufacturer=raw)
    (device,) = _scan(tree, usb_ids).devices
    assert device.serial is None
    assert device.manufacturer is None


def test_odd_bytes_are_decoded_and_control_characters_dropped(
    tree: SysfsTree, usb_ids: UsbIds
) -> None:
    tree.device("2-1", serial=b"AB\xffC\x01D\n", product=b"Caf\xc3\xa9\tStick\x7f\n")
    (device,) = _scan(tree, usb_ids).devices
    assert device.serial == "AB\ufffdCD"
    assert device.product == "Café Stick"


def test_device_gone_after_listing_is_skipped_with_reason(tree: SysfsTree, usb_ids: UsbIds) -> None:
    shutil.rmtree(tree.device("2-1"))
    tree.device("2-2", serial="AAA2")
    result = _scan(tree, usb_ids)
    assert [d.serial for d in result.devices] == ["AAA2"]
    assert result.skipped == (SkippedDevice("2-1", "2-1 is gone"),)


@pytest.mark.parametrize("last_file_read", ["manufacturer", "removable"])
def test_device_vanishing_mid_read_is_skipped_not_half_read(
    tree: SysfsTree, usb_ids: UsbIds, last_file_read: str
) -> None:
    path = tree.device("2-1")
    tree.device("2-2", serial="AAA2")

    def unplug_while_reading(file: Path) -> bytes:
        data = file.read_bytes()
        if file == tree.bus_dir / "2-1" / last_file_read:
            shutil.rmtree(path)
        return data

    result = scan(sysfs_root=tree.root, usb_ids=usb_ids, read_file=unplug_while_reading)
    assert [d.port_path for d in result.devices] == ["2-2"]
    (skipped,) = result.skipped
    assert skipped.port_path == "2-1"
    assert "disappeared while it was read" in skipped.reason


def test_device_replugged_mid_read_is_skipped(tree: SysfsTree, usb_ids: UsbIds) -> None:
    path = tree.device("2-1", devnum=2)

    def replug_while_reading(file: Path) -> bytes:
        data = file.read_bytes()
        if file.name == "serial":
            (path / "devnum").write_text("5\n")
        return data

    result = scan(sysfs_root=tree.root, usb_ids=usb_ids, read_file=replug_while_reading)
    assert result.devices == ()
    assert result.skipped == (
        SkippedDevice("2-1", "device was replugged while it was read (now 2/5)"),
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"idVendor": None}, "2-1 has no idVendor"),
        ({"devnum": None}, "2-1 has no devnum"),
        ({"idVendor": "zz"}, "malformed idVendor 'zz'"),
        ({"idProduct": "12345"}, "malformed idProduct '12345'"),
        ({"busnum": "-1"}, "malformed busnum '-1'"),
    ],
)
def test_device_with_bad_required_attribute_is_skipped(
    tree: SysfsTree, usb_ids: UsbIds, overrides: dict[str, str | None], reason: str
) -> None:
    tree.device("2-1", attrs=overrides)
    tree.device("2-2", serial="AAA2")
    result = _scan(tree, usb_ids)
    assert [d.port_path for d in result.devices] == ["2-2"]
    assert result.skipped == (SkippedDevice("2-1", reason),)


def test_unreadable_attribute_skips_the_device(tree: SysfsTree, usb_ids: UsbIds) -> None:
    path = tree.device("2-1", serial=None)
    (path / "serial").mkdir()
    (skipped,) = _scan(tree, usb_ids).skipped
    assert skipped.port_path == "2-1"
    assert skipped.reason.startswith("cannot read 2-1/serial:")


def test_interface_without_class_skips_its_device(tree: SysfsTree, usb_ids: UsbIds) -> None:
    path = tree.device("2-1")
    (path / "2-1:1.0" / "bInterfaceClass").unlink()
    result = _scan(tree, usb_ids)
    assert result.devices == ()
    assert result.skipped == (SkippedDevice("2-1", "2-1:1.0 has no bInterfaceClass"),)


def test_unknown_entry_names_are_reported(tree: SysfsTree, usb_ids: UsbIds) -> None:
    (tree.bus_dir / "gadget").mkdir()
    assert _scan(tree, usb_ids).skipped == (
        SkippedDevice("gadget", "not a USB device or interface name"),
    )


def test_captured_tree_with_driver_as_a_file_reads_like_live_sysfs(
    tree: SysfsTree, usb_ids: UsbIds
) -> None:
    path = tree.device("2-1")
    driver = path / "2-1:1.0" / "driver"
    driver.unlink()
    driver.write_text("../../../../../../../bus/usb/drivers/usb-storage\n")
    (device,) = _scan(tree, usb_ids).devices
    assert device.drivers == ("usb-storage",)


def test_driver_link_may_dangle(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device("2-1")
    shutil.rmtree(tree.drivers_dir)
    (device,) = _scan(tree, usb_ids).devices
    assert device.drivers == ("usb-storage",)


def test_interfaces_are_ordered_by_number(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device(
        "2-1",
        interfaces=(
            Iface("02", "02", "01", "cdc_acm"),
            Iface("0a", "00", "00", "cdc_acm"),
            Iface("ff", "00", "00", None),
        ),
    )
    (device,) = _scan(tree, usb_ids).devices
    assert [i.number for i in device.interfaces] == [0, 1, 2]
    assert [i.class_code for i in device.interfaces] == [0x02, 0x0A, 0xFF]
    assert device.drivers == ("cdc_acm",)


def test_ports_sort_numerically(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device("1-1", interfaces=HUB, bDeviceClass="09")
    for port in (10, 9, 2):
        tree.device(f"1-1.{port}", devnum=port, serial=f"S{port}")
    ports = [d.port_path for d in _scan(tree, usb_ids).devices]
    assert ports == ["1-1", "1-1.2", "1-1.9", "1-1.10"]


def test_resolve_port_gives_current_bus_and_devnum(tree: SysfsTree) -> None:
    tree.device("2-1", devnum=7)
    assert resolve_port(sysfs_root=tree.root, port_path="2-1") == (2, 7)


def test_resolve_port_follows_a_replug(tree: SysfsTree) -> None:
    path = tree.device("2-1", devnum=7)
    (path / "devnum").write_text("8\n")
    assert resolve_port(sysfs_root=tree.root, port_path="2-1") == (2, 8)


@pytest.mark.parametrize("port_path", ["2-4", "usb2", "../../..", "2-1/../2-1", ""])
def test_resolve_port_without_a_device_is_none(tree: SysfsTree, port_path: str) -> None:
    tree.device("2-1")
    assert resolve_port(sysfs_root=tree.root, port_path=port_path) is None


def test_resolve_port_with_broken_devnum_is_none(tree: SysfsTree) -> None:
    path = tree.device("2-1", devnum=7)
    (path / "devnum").write_text("x\n")
    assert resolve_port(sysfs_root=tree.root, port_path="2-1") is None


def test_read_device_reads_one_port(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device("2-1", serial="AAA1")
    tree.device("2-2", serial="AAA2", devnum=3)
    device = read_device(sysfs_root=tree.root, port_path="2-2", usb_ids=usb_ids)
    assert device is not None
    assert (device.serial, device.devnum, device.drivers) == ("AAA2", 3, ("usb-storage",))
    assert read_device(sysfs_root=tree.root, port_path="2-9", usb_ids=usb_ids) is None


# ---- real sysfs, captured from a QEMU node guest (tests/usb/capture_fixtures.py) --------------

MIXED = Path(__file__).resolve().parent / "fixtures" / "mixed"


def test_a_captured_node_reads_every_device_once_with_its_facts() -> None:
    result = scan(sysfs_root=MIXED, usb_ids=UsbIds(Path("/usr/share/misc/usb.ids")))
    assert result.skipped == ()
    found = {d.port_path: d for d in result.devices}
    assert sorted(found) == ["1-3", "1-4", "1-5", "1-5.1", "1-5.2", "1-5.3", "2-1", "2-2"]
    assert [found["2-1"].serial, found["2-2"].serial] == ["AAA1", "AAA2"]
    assert {found[p].usb_id for p in ("2-1", "2-2", "1-5.1")} == {"46f4:0001"}
    assert [found["2-1"].speed, found["1-5.1"].speed] == ["5000", "12"]
    assert found["1-3"].serial is None
    assert found["1-4"].serial is None
    assert found["1-3"].drivers == ("ftdi_sio",)
    assert found["1-5"].is_hub
    assert not found["1-5.2"].is_hub
    assert found["1-5.2"].drivers == ("usbhid",)
    assert found["1-5.1"].serial == 'odd<b>&"\u00c3\u00a9 x'  # QEMU's bytes of é, as a kernel shows
    assert found["2-1"].product == "QEMU USB HARDDRIVE"
    assert found["1-3"].product_name == "FT232 Serial (UART) IC"  # usb.ids, over the descriptor
    composite = found["1-5.3"]  # QEMU's usb-audio: class at interface level, two interfaces
    assert composite.device_class == 0
    assert [(i.number, i.class_code, i.subclass) for i in composite.interfaces] == [
        (0, 1, 1), (1, 1, 2)]
    assert composite.drivers == ()  # no driver bound to either interface



def test_a_file_larger_than_a_sysfs_attribute_skips_its_device(
    tree: SysfsTree, usb_ids: UsbIds
) -> None:
    tree.device("2-1", serial=b"A" * (MAX_ATTRIBUTE_BYTES + 1))
    tree.device("2-2", serial="AAA2")
    result = _scan(tree, usb_ids)
    assert [d.port_path for d in result.devices] == ["2-2"]
    assert result.skipped == (
        SkippedDevice("2-1", "2-1/serial is larger than a sysfs attribute can be"),)


def test_descriptor_strings_are_cut_to_what_a_usb_string_descriptor_holds(
    tree: SysfsTree, usb_ids: UsbIds
) -> None:
    longest = "\U0001f600" * 1000  # each character percent-encodes to 12
    tree.device("2-1", serial=longest, manufacturer=longest, product=longest)
    (device,) = _scan(tree, usb_ids).devices
    assert device.serial == device.product == "\U0001f600" * MAX_DESCRIPTOR_LENGTH
    _assert_publishable((device, dataclasses.replace(device, port_path="2-2")))


def test_skip_reasons_quote_a_shortened_value(tree: SysfsTree, usb_ids: UsbIds) -> None:
    tree.device("2-1", idVendor="\u202e" * 1000)
    (skipped,) = _scan(tree, usb_ids).skipped
    assert skipped.reason == "malformed idVendor " + repr("\u202e" * 40 + "...")


# ---- fuzzed trees ---------------------------------------------------------------------------
# Trees drawn by hypothesis: attribute files missing, valid, binary, huge, with control characters
# or invalid UTF-8, or a directory where a file should be; a device may be unplugged (its files
# vanish: ENOENT or ENODEV) or replugged (a new devnum) part-way through the scan, through the
# scanner's `read_file` seam. Whatever the tree, the scan never raises, never reports an unplugged
# or replugged device, and everything it reports is publishable: a valid USBDevice name and a
# status that the CRD schema accepts.

_FUZZ_NODE = "node1"
_FUZZ_PORTS = ("1-1", "1-2", "2-1", "2-1.4", "2-1.4.1", "3-10.2")
_DIRECTORY = b"<directory>"
_NUMBER_ATTRS = ("busnum", "devnum", "idVendor", "idProduct", "bDeviceClass", "bDeviceSubClass",
                 "bDeviceProtocol")
_TEXT_ATTRS = ("manufacturer", "product", "serial", "speed", "version", "bcdDevice", "removable")
_IFACE_ATTRS = ("bInterfaceNumber", "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol")

_hostile_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=["Cs"]), max_size=40
).map(lambda s: s.encode("utf-8"))
_huge = st.tuples(st.sampled_from(["A", "é", "\u202e", "\U0001f600", "\x1b[31m", "%"]),
                  st.integers(min_value=100, max_value=6000)).map(
    lambda t: (t[0] * t[1]).encode("utf-8"))
_file_value = st.one_of(
    st.none(),                       # missing
    st.binary(max_size=40),          # binary, invalid UTF-8
    _hostile_text,                   # control characters, bidi overrides, any script
    _huge,                           # far beyond a page
    st.just(_DIRECTORY),             # a directory where a file should be
)


def _number_value(name: str) -> st.SearchStrategy[bytes | None]:
    valid = st.integers(0, 0xFF if name.startswith("b") else 0xFFFF).map(
        lambda n: (f"{n}" if name in ("busnum", "devnum") else f"{n:04x}").encode() + b"\n")
    return st.one_of(valid, valid, valid, _file_value)


_text_value = st.one_of(st.just(b"AAA1\n"), _file_value)


@st.composite
def _fuzz_devices(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    ports = draw(st.lists(st.sampled_from(_FUZZ_PORTS), max_size=4, unique=True))
    devices: dict[str, dict[str, Any]] = {}
    for port in ports:
        attrs = {name: draw(_number_value(name)) for name in _NUMBER_ATTRS}
        attrs |= {name: draw(_text_value) for name in _TEXT_ATTRS}
        interfaces = draw(st.lists(
            st.fixed_dictionaries({name: _number_value("b") for name in _IFACE_ATTRS}),
            max_size=2))
        devices[port] = {"attrs": attrs, "interfaces": interfaces}
    return devices


def _write_fuzzed(directory: Path, attrs: dict[str, bytes | None]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in attrs.items():
        if value == _DIRECTORY:
            (directory / name).mkdir()
        elif value is not None:
            (directory / name).write_bytes(value)


def _build_fuzzed(root: Path, devices: dict[str, dict[str, Any]]) -> SysfsTree:
    tree = SysfsTree(root)
    tree.root_hub(1)
    for port, device in devices.items():
        path = tree.device(port, interfaces=(), attrs={})
        for name in [*_NUMBER_ATTRS, *_TEXT_ATTRS]:
            (path / name).unlink(missing_ok=True)
        _write_fuzzed(path, device["attrs"])
        for number, iface in enumerate(device["interfaces"]):
            iface_path = path / f"{port}:1.{number}"
            _write_fuzzed(iface_path, iface)
            (tree.bus_dir / iface_path.name).symlink_to(iface_path)
    return tree


class _UnplugDuringScan:
    """A `read_file` that unplugs (its files vanish) or replugs (a new devnum) one device after
    a number of reads; `touched` says whether the scan read that device since."""

    def __init__(self, *, bus_dir: Path, port: str, after_reads: int, how: str) -> None:
        self.bus_dir, self.port, self.after_reads, self.how = bus_dir, port, after_reads, how
        self.reads = 0
        self.first_devnum: bytes | None = None
        self.touched = False

    def _of_device(self, path: Path) -> bool:
        name = path.relative_to(self.bus_dir).parts[0]
        return name == self.port or name.startswith(f"{self.port}:")

    def __call__(self, path: Path) -> bytes:
        self.reads += 1
        data = path.read_bytes()
        if not self._of_device(path):
            return data
        if self.reads <= self.after_reads:
            if path.name == "devnum" and self.first_devnum is None:
                self.first_devnum = data
            return data
        if self.how == "replug":
            if path.name == "devnum" and self.first_devnum is not None:
                self.touched = True
                return b"%d\n" % (int(data) + 1) if data.strip().isdigit() else b"1\n"
            return data
        self.touched = True
        if self.how == "gone":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        raise OSError(errno.ENODEV, "No such device", str(path))


_DEVICE_CRD = crds.usb_device_crd()
_DEVICE_SCHEMA = _DEVICE_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _assert_publishable(devices: tuple[UsbDevice, ...]) -> None:
    node_devices = [NodeDevice(_FUZZ_NODE, d) for d in devices]
    for record in published_records(node_devices):
        assert models.is_dns_subdomain(record.name)
        assert len(record.name) <= MAX_NAME_LENGTH
        status = device_status(record.device, node=_FUZZ_NODE, identity=record.identity,
                               last_seen="2026-01-01T00:00:00Z")
        body = {"apiVersion": models.API_VERSION, "kind": "USBDevice",
                "metadata": {"name": record.name},
                "status": {k: v for k, v in status.items() if v is not None}}
        assert validate(body, schema=_DEVICE_SCHEMA, kind="USBDevice", group=models.GROUP) == []
        models.USBDeviceStatus.model_validate(body["status"])
        labels = device_labels(record.device, node=_FUZZ_NODE)
        assert all(is_label_value(value) for value in labels.values())
        for text in _strings({**status, "identity": None}):
            assert not any(unicodedata.category(ch) == "Cc" for ch in text), text
            assert len(text) <= MAX_DESCRIPTOR_LENGTH


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=30)
@given(devices=_fuzz_devices(), unplug=st.tuples(
    st.sampled_from(_FUZZ_PORTS), st.integers(0, 60), st.sampled_from(["gone", "nodev", "replug"])))
def test_fuzzed_trees_scan_without_errors_and_publish_only_whole_valid_devices(
    devices: dict[str, dict[str, Any]], unplug: tuple[str, int, str]
) -> None:
    port, after_reads, how = unplug
    with tempfile.TemporaryDirectory(prefix="sysfs-fuzz-") as scratch:
        tree = _build_fuzzed(Path(scratch) / "sys", devices)
        usb_ids_path = Path(scratch) / "usb.ids"
        usb_ids_path.write_text(USB_IDS_TEXT)
        read = _UnplugDuringScan(bus_dir=tree.bus_dir, port=port, after_reads=after_reads, how=how)

        result = scan(sysfs_root=tree.root, usb_ids=UsbIds(usb_ids_path), read_file=read)

    reported = [d.port_path for d in result.devices]
    skipped = [s.port_path for s in result.skipped]
    assert sorted(reported + skipped) == sorted(devices)
    if read.touched:
        assert port not in reported
    _assert_publishable(result.devices)
    for entry in result.skipped:
        assert len(entry.reason) < 500  # a value is quoted by its first 40 characters


def test_a_devices_directory_that_cannot_be_listed_is_an_error_not_no_devices(
        tree: SysfsTree, usb_ids: UsbIds) -> None:
    shutil.rmtree(tree.bus_dir)
    tree.bus_dir.write_text("")
    with pytest.raises(SysfsUnreadable, match=r"cannot list .*/bus/usb/devices: Not a directory"):
        _scan(tree, usb_ids)
    assert read_device(sysfs_root=tree.root, port_path="2-1", usb_ids=usb_ids) is None
