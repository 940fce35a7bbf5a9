"""What the agent reads from USBDevice objects and the status it publishes for a device."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubevirt_usb import models
from kubevirt_usb.agent.objects import (
    LABEL_NODE,
    absent_status,
    changed_fields,
    device_labels,
    device_status,
    parse_object,
    parse_timestamp,
)
from kubevirt_usb.clock import rfc3339
from kubevirt_usb.usb.model import DeviceIdentity, UsbDevice, UsbInterface

STICK = UsbDevice(
    port_path="2-1.4", vendor_id="46f4", product_id="0001", bus=2, devnum=7,
    vendor_name="QEMU", product_name=None, manufacturer="QEMU", product="QEMU USB HARDDRIVE",
    serial="AAA1", speed="480", usb_version="2.00", bcd_device="0000",
    device_class_name="(Defined at Interface level)",
    interfaces=(UsbInterface(0, 8, 6, 0x50, "usb-storage", "Mass Storage"),
                UsbInterface(1, 0xFF, 0, 0, None)))
IDENTITY = DeviceIdentity("serial", "serial:46f4:0001:AAA1")


def test_the_status_of_a_plugged_device_validates_against_the_model() -> None:
    status = device_status(STICK, node="node1", identity=IDENTITY, last_seen="2024-05-01T12:00:00Z")
    parsed = models.USBDeviceStatus.model_validate(status)
    assert parsed.identity.tier == "serial"
    assert (parsed.bus_number, parsed.device_number, parsed.port_path) == (2, 7, "2-1.4")
    assert parsed.device_class is not None
    assert parsed.device_class.class_code == "00"
    assert [(i.number, i.class_code, i.driver) for i in parsed.interfaces] == [
        (0, "08", "usb-storage"), (1, "ff", None)]
    assert parsed.drivers == ["usb-storage"]
    assert (parsed.present, parsed.state, parsed.absent_since) == (True, "Available", None)


def test_missing_values_are_null_at_the_top_and_left_out_inside() -> None:
    status = device_status(STICK, node="node1", identity=IDENTITY, last_seen="t")
    assert status["productName"] is None
    assert "productName" in status
    assert "driver" not in status["interfaces"][1]


def test_absent_status_clears_the_address_and_records_when() -> None:
    assert absent_status(absent_since="2024-05-01T12:00:00Z") == {
        "present": False, "state": "Absent", "absentSince": "2024-05-01T12:00:00Z",
        "busNumber": None, "deviceNumber": None}


def test_changed_fields_treats_missing_as_null() -> None:
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": 3}
    assert changed_fields(None, {"a": 1}) == {"a": 1}


def test_labels_leave_out_a_node_name_too_long_for_a_label() -> None:
    assert device_labels(STICK, node="node1")[LABEL_NODE] == "node1"
    long_node = "n" * 70 + ".example.com"
    assert LABEL_NODE not in device_labels(STICK, node=long_node)


def test_timestamps_round_trip_in_utc() -> None:
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert rfc3339(moment) == "2024-05-01T12:00:00Z"  # as the agent writes them
    assert parse_timestamp("2024-05-01T12:00:00Z") == moment
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(None) is None


def _object(status: dict[str, Any] | None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "dev", "resourceVersion": "12", "uid": "u1",
                                        **meta}, "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


def test_an_object_says_who_published_it_and_where_the_device_was() -> None:
    status = device_status(STICK, node="node1", identity=IDENTITY, last_seen="t")
    obj = parse_object(_object(status, labels={LABEL_NODE: "node1"}))
    assert obj is not None
    assert (obj.name, obj.resource_version, obj.node, obj.label_node) == (
        "dev", "12", "node1", "node1")
    assert obj.present
    assert not obj.claimed
    established = obj.established()
    assert established is not None
    assert (established.identity, established.node, established.port_path) == (
        IDENTITY, "node1", "2-1.4")
    device = obj.node_device()
    assert device is not None
    assert (device.node, device.device.serial, device.device.product) == (
        "node1", "AAA1", "QEMU USB HARDDRIVE")


def test_absent_bound_and_terminating_objects_say_so() -> None:
    status = {**device_status(STICK, node="n", identity=IDENTITY, last_seen="t"),
              **absent_status(absent_since="2024-05-01T12:00:00Z")}
    raw = _object(status, deletionTimestamp="2024-05-01T13:00:00Z")
    raw["spec"] = {"claimRef": {"namespace": "ns", "attachment": "a", "vm": "vm"}}
    obj = parse_object(raw)
    assert obj is not None
    assert not obj.present
    assert obj.claimed
    assert obj.deleting
    assert obj.absent_since == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_malformed_objects_give_nothing_to_build_on() -> None:
    assert parse_object({"metadata": {}}) is None
    obj = parse_object(_object({"node": "n", "identity": {"tier": "bogus", "key": "k"},
                                "portPath": "1-1", "vendorId": "XYZ"}))
    assert obj is not None
    assert obj.identity is None
    assert obj.established() is None
    assert obj.node_device() is None
    bare = parse_object(_object(None))
    assert bare is not None
    assert (bare.status, bare.node, bare.identity) == (None, None, None)


def test_a_slim_object_keeps_what_identities_need() -> None:
    status = device_status(STICK, node="node2", identity=IDENTITY, last_seen="t")
    full = parse_object(_object(status, labels={LABEL_NODE: "node2", "other": "x"}))
    assert full is not None
    slim = full.slim()
    assert slim.status is not None
    assert set(slim.status) == {"node", "identity", "portPath", "vendorId", "productId",
                                "manufacturer", "product", "serial", "present", "state",
                                "absentSince"}
    assert slim.labels == {LABEL_NODE: "node2"}
    assert (slim.established(), slim.node_device()) == (full.established(), full.node_device())
    assert slim.belongs_to("node2")
    assert not slim.belongs_to("node1")
