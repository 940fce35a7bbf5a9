"""The publisher's decisions: which writes make the USBDevice objects match a node's devices."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from kubevirt_usb.agent.objects import LABEL_NODE, DeviceObject
from kubevirt_usb.agent.plan import Create, Delete, Plan, SetLabels, SetStatus, Write, plan_writes
from kubevirt_usb.usb.model import UsbDevice

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=10)
_versions = itertools.count(100)


def stick(port: str, *, serial: str | None = "AAA1", devnum: int = 2, vid: str = "46f4",
          product: str = "QEMU USB HARDDRIVE", is_hub: bool = False) -> UsbDevice:
    return UsbDevice(port_path=port, vendor_id=vid, product_id="0001",
                     bus=int(port.split("-")[0]), devnum=devnum, manufacturer="QEMU",
                     product=product, serial=serial, is_hub=is_hub)


def server(objects: Mapping[str, DeviceObject], writes: Iterable[Write]) -> dict[str, DeviceObject]:
    """What an API server holds after these writes (merge semantics, null deletes)."""
    held = dict(objects)
    for write in writes:
        version = str(next(_versions))
        if isinstance(write, Create):
            assert write.name not in held
            held[write.name] = DeviceObject(write.name, version, labels=dict(write.labels))
        elif isinstance(write, Delete):
            assert held[write.name].resource_version == write.resource_version
            del held[write.name]
        else:
            obj = held[write.name]
            if write.resource_version is not None:
                assert obj.resource_version == write.resource_version
            if isinstance(write, SetStatus):
                merged: dict[str, Any] = {**(obj.status or {}), **write.status}
                status = {k: v for k, v in merged.items() if v is not None}
                held[write.name] = dataclasses.replace(obj, status=status,
                                                       resource_version=version)
            elif isinstance(write, SetLabels):
                held[write.name] = dataclasses.replace(
                    obj, labels={**obj.labels, **write.labels}, resource_version=version)
    return held


def plan(node: str, devices: list[UsbDevice], objects: Mapping[str, DeviceObject], *,
         now: dt.datetime = NOW, **kwargs: Any) -> Plan:
    return plan_writes(node=node, devices=devices, objects=objects, now=now, grace=GRACE,
                       **kwargs)


def publish(node: str, devices: list[UsbDevice], objects: Mapping[str, DeviceObject], *,
            now: dt.datetime = NOW) -> dict[str, DeviceObject]:
    return server(objects, plan(node, devices, objects, now=now).writes)


def test_new_devices_are_created_then_given_their_status() -> None:
    result = plan("node1", [stick("2-1", serial="AAA1"), stick("2-2", serial=None)], {})
    assert [type(w).__name__ for w in result.writes] == [
        "Create", "SetStatus", "Create", "SetStatus"]
    names = [w.name for w in result.writes if isinstance(w, Create)]
    assert names == ["46f4-0001-aaa1", "node1-46f4-0001-2-2"]
    first = result.writes[1]
    assert isinstance(first, SetStatus)
    assert first.resource_version is None  # the version the create returns
    assert first.status["identity"] == {"tier": "serial", "key": "serial:46f4:0001:AAA1"}
    assert (first.status["node"], first.status["lastSeen"]) == ("node1", "2024-05-01T12:00:00Z")
    assert result.writes[0] == Create("46f4-0001-aaa1", {
        "app.kubernetes.io/managed-by": "kubevirt-usb-agent", LABEL_NODE: "node1",
        "usb.kubevirt-usb.io/vendor-id": "46f4", "usb.kubevirt-usb.io/product-id": "0001"})


def test_nothing_changed_means_no_write_even_much_later() -> None:
    devices = [stick("2-1"), stick("2-2", serial=None)]
    objects = publish("node1", devices, {})
    later = plan("node1", devices, objects, now=NOW + dt.timedelta(days=3))
    assert later.writes == ()
    assert later.next_due is None


def test_hubs_are_not_published() -> None:
    assert plan("node1", [stick("1-1", serial=None, is_hub=True)], {}).writes == ()


def test_a_change_writes_only_what_changed_and_refreshes_last_seen() -> None:
    objects = publish("node1", [stick("2-1", devnum=2)], {})
    later = NOW + dt.timedelta(hours=1)
    result = plan("node1", [stick("2-1", devnum=9)], objects, now=later)
    (write,) = result.writes
    assert isinstance(write, SetStatus)
    assert dict(write.status) == {"deviceNumber": 9, "lastSeen": "2024-05-01T13:00:00Z"}
    assert write.resource_version == objects["46f4-0001-aaa1"].resource_version
    assert write.reason == "changed"


def test_an_unplugged_device_is_marked_absent_at_once_and_keeps_its_last_seen() -> None:
    objects = publish("node1", [stick("2-1")], {})
    later = NOW + dt.timedelta(minutes=5)
    result = plan("node1", [], objects, now=later)
    (write,) = result.writes
    assert isinstance(write, SetStatus)
    assert dict(write.status) == {"present": False, "state": "Absent",
                                  "absentSince": "2024-05-01T12:05:00Z",
                                  "busNumber": None, "deviceNumber": None}
    assert result.next_due == later + GRACE
    absent = server(objects, result.writes)["46f4-0001-aaa1"]
    assert absent.status is not None
    assert absent.status["lastSeen"] == "2024-05-01T12:00:00Z"


def test_an_absent_device_is_deleted_after_the_grace_period_unless_bound() -> None:
    objects = publish("node1", [], publish("node1", [stick("2-1")], {}))
    within = plan("node1", [], objects, now=NOW + GRACE - dt.timedelta(seconds=1))
    assert within.writes == ()
    assert within.next_due == NOW + GRACE
    after = plan("node1", [], objects, now=NOW + GRACE)
    held = objects["46f4-0001-aaa1"]
    assert after.writes == (Delete("46f4-0001-aaa1", held.resource_version,
                                   "absent past the grace period"),)
    bound = {held.name: dataclasses.replace(held, claimed=True)}
    stays = plan("node1", [], bound, now=NOW + GRACE * 100)
    assert (stays.writes, stays.next_due) == ((), None)


def test_a_replugged_device_comes_back_under_the_same_name() -> None:
    objects = publish("node1", [], publish("node1", [stick("2-2", serial=None)], {}))
    later = NOW + dt.timedelta(minutes=1)
    result = plan("node1", [stick("2-2", serial=None, devnum=5)], objects, now=later)
    (write,) = result.writes
    assert isinstance(write, SetStatus)
    assert write.name == "node1-46f4-0001-2-2"
    assert write.reason == "appeared"
    assert dict(write.status) == {"present": True, "state": "Available", "absentSince": None,
                                  "busNumber": 2, "deviceNumber": 5,
                                  "lastSeen": "2024-05-01T12:01:00Z"}


def test_a_device_with_a_unique_serial_keeps_its_name_on_another_node() -> None:
    on_one = publish("node1", [], publish("node1", [stick("2-1", serial="MOVE1")], {}))
    result = plan("node2", [stick("1-3", serial="MOVE1")], on_one)
    status_write, label_write = result.writes
    assert isinstance(status_write, SetStatus)
    assert isinstance(label_write, SetLabels)
    assert status_write.name == label_write.name == "46f4-0001-move1"
    assert status_write.status["node"] == "node2"
    assert status_write.status["portPath"] == "1-3"
    assert label_write.labels == {LABEL_NODE: "node2"}
    assert label_write.resource_version is None  # after the status write
    moved = server(on_one, result.writes)
    assert plan("node1", [], moved).writes == ()  # node1 no longer owns it


def test_a_twin_on_another_node_does_not_take_the_established_name() -> None:
    cluster = publish("node1", [stick("2-1", serial="TWIN")], {})
    result = plan("node2", [stick("1-1", serial="TWIN")], cluster)
    created = [w.name for w in result.writes if isinstance(w, Create)]
    assert created == ["node2-46f4-0001-1-1"]
    assert plan("node1", [stick("2-1", serial="TWIN")], server(cluster, result.writes)).writes == ()


def test_objects_of_other_nodes_are_never_written() -> None:
    cluster = publish("node1", [stick("2-1"), stick("2-2", serial=None)], {})
    assert plan("node2", [], cluster).writes == ()


def test_an_unfinished_creation_is_finished_or_cleaned_up() -> None:
    labels = {LABEL_NODE: "node1"}
    name = "node1-46f4-0001-2-2"
    bare = {name: DeviceObject(name, "7", labels=labels)}
    finish = plan("node1", [stick("2-2", serial=None)], bare)
    write, labelled = finish.writes
    assert isinstance(write, SetStatus)
    assert (write.resource_version, write.reason) == ("7", "appeared")
    assert isinstance(labelled, SetLabels)  # the labels it was missing
    assert LABEL_NODE not in labelled.labels
    assert plan("node1", [], bare).writes == (Delete(name, "7", "unfinished"),)


def test_a_name_being_created_by_another_node_or_being_deleted_waits() -> None:
    name = "46f4-0001-aaa1"
    theirs = {name: DeviceObject(name, "7", labels={LABEL_NODE: "node2"})}
    result = plan("node1", [stick("2-1")], theirs)
    assert (result.writes, result.waiting) == ((), (name,))
    objects = publish("node1", [stick("2-1")], {})
    deleting = {name: dataclasses.replace(objects[name], deleting=True)}
    result = plan("node1", [stick("2-1", devnum=8)], deleting)
    assert (result.writes, result.waiting) == ((), (name,))


def test_a_device_that_could_not_be_read_is_not_marked_absent() -> None:
    objects = publish("node1", [stick("2-1"), stick("2-2", serial="B")], {})
    result = plan("node1", [stick("2-1")], objects, unsure_ports=["2-2"])
    assert result.writes == ()


@pytest.mark.parametrize("devices", [
    [stick("2-1", serial="X"), stick("2-2", serial="X"), stick("2-3", serial=None)],
    [stick("1-1", serial="S", product="A"), stick("1-2", serial="S", product="B")],
    [],
])
def test_publishing_twice_converges(devices: list[UsbDevice]) -> None:
    objects = publish("node1", devices, {})
    assert len(objects) == len(devices)
    assert plan("node1", devices, objects).writes == ()
