"""Stable device identities and object names across the cluster."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.usb.identity import (
    assign_identities,
    descriptor_identity,
    device_object_name,
    port_identity,
    published_records,
    serial_identity,
)
from kubevirt_usb.usb.model import (
    DeviceIdentity,
    EstablishedIdentity,
    NodeDevice,
    UsbDevice,
)
from kubevirt_usb.usb.sysfs import scan
from kubevirt_usb.usb.usbids import UsbIds

SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def dev(
    node: str,
    port: str,
    serial: str | None,
    *,
    vid: str = "46f4",
    pid: str = "0001",
    manufacturer: str | None = "QEMU",
    product: str | None = "QEMU USB HARDDRIVE",
    devnum: int = 2,
) -> NodeDevice:
    bus = int(port.split("-")[0]) if port.split("-")[0].isdigit() else 1
    usb = UsbDevice(
        port, vid, pid, bus, devnum, serial=serial, manufacturer=manufacturer, product=product
    )
    return NodeDevice(node, usb)


def established(identities: dict[tuple[str, str], DeviceIdentity]) -> list[EstablishedIdentity]:
    return [EstablishedIdentity(i, node, port) for (node, port), i in identities.items()]


def moved(device: NodeDevice, node: str, port: str) -> NodeDevice:
    return NodeDevice(node, dataclasses.replace(device.device, port_path=port, devnum=9))


# --- tiers -------------------------------------------------------------------------------------


def test_unique_serials_identify_devices() -> None:
    ids = assign_identities([dev("node1", "2-1", "AAA1"), dev("node1", "2-2", "AAA2")])
    assert ids == {
        ("node1", "2-1"): DeviceIdentity("serial", "serial:46f4:0001:AAA1"),
        ("node1", "2-2"): DeviceIdentity("serial", "serial:46f4:0001:AAA2"),
    }


def test_serial_is_unique_per_vendor_and_product() -> None:
    ids = assign_identities([dev("node1", "2-1", "1"), dev("node2", "2-1", "1", vid="0403")])
    assert {i.tier for i in ids.values()} == {"serial"}


def test_shared_serial_with_different_strings_uses_the_strings() -> None:
    a = dev("node1", "2-1", "0001", product="Stick A")
    b = dev("node2", "2-1", "0001", product="Stick B")
    ids = assign_identities([a, b])
    assert ids[a.location] == descriptor_identity(
        "46f4", "0001", manufacturer="QEMU", product="Stick A", serial="0001"
    )
    assert ids[a.location].key == "serial+descriptors:46f4:0001:QEMU:Stick%20A:0001"
    assert ids[b.location].tier == "serial+descriptors"


def test_identical_twins_anywhere_in_the_cluster_fall_back_to_ports() -> None:
    a, b = dev("node1", "3-1.4", "AAA1"), dev("node2", "2-1", "AAA1")
    ids = assign_identities([a, b])
    assert ids[a.location] == DeviceIdentity("port", "port:node1:3-1.4:46f4:0001")
    assert ids[b.location] == port_identity("node2", "2-1", "46f4", "0001")


def test_device_without_serial_is_identified_by_its_port() -> None:
    (identity,) = assign_identities([dev("node1", "3-1.4", None, vid="067b", pid="2303")]).values()
    assert identity == DeviceIdentity("port", "port:node1:3-1.4:067b:2303")


def test_key_fields_are_escaped() -> None:
    identity = serial_identity("46f4", "0001", "a:b/c%d e")
    assert identity.key == "serial:46f4:0001:a%3Ab%2Fc%25d%20e"


def test_two_devices_in_one_port_are_refused() -> None:
    with pytest.raises(ValueError, match="two devices at node 'node1' port '2-1'"):
        assign_identities([dev("node1", "2-1", "A"), dev("node1", "2-1", "B")])


# --- stickiness --------------------------------------------------------------------------------


def test_first_device_keeps_its_serial_identity_when_a_twin_appears() -> None:
    first = dev("node1", "2-1", "AAA1")
    before = assign_identities([first])
    twin = dev("node2", "2-1", "AAA1")
    after = assign_identities([first, twin], established=established(before))
    assert after[first.location] == serial_identity("46f4", "0001", "AAA1")
    assert after[twin.location] == port_identity("node2", "2-1", "46f4", "0001")


def test_twin_with_other_strings_gets_the_descriptor_tier() -> None:
    first = dev("node1", "2-1", "AAA1")
    before = assign_identities([first])
    twin = dev("node2", "2-1", "AAA1", product="Other")
    after = assign_identities([first, twin], established=established(before))
    assert after[first.location].tier == "serial"
    assert after[twin.location].tier == "serial+descriptors"


def test_port_identity_is_kept_in_place_after_the_twin_leaves() -> None:
    a, b = dev("node1", "2-1", "AAA1"), dev("node2", "2-1", "AAA1")
    before = assign_identities([a, b])
    after = assign_identities([b], established=established(before))
    assert after[b.location] == before[b.location]
    assert after[b.location].tier == "port"


def test_moved_device_reclaims_its_identity_while_its_twin_stays() -> None:
    first = dev("node1", "2-1", "AAA1")
    before = assign_identities([first])
    twin = dev("node2", "2-1", "AAA1")
    with_twin = assign_identities([first, twin], established=established(before))
    back = moved(first, "node3", "1-4")
    after = assign_identities([back, twin], established=established(with_twin))
    assert after[back.location] == serial_identity("46f4", "0001", "AAA1")
    assert after[twin.location] == with_twin[twin.location]


def test_moved_descriptor_identity_is_not_taken_by_its_serial_twin() -> None:
    a = dev("node1", "2-1", "S", product="A")
    a_ids = assign_identities([a])
    b = dev("node1", "2-2", "S", product="B")
    both = assign_identities([a, b], established=established(a_ids))
    assert both[b.location].tier == "serial+descriptors"
    b_moved = moved(b, "node2", "1-1")
    after = assign_identities([b_moved], established=established(both))
    assert after[b_moved.location] == both[b.location]


def test_a_different_device_in_a_known_port_does_not_inherit_it() -> None:
    a = dev("node1", "2-1", None, vid="067b", pid="2303")
    before = assign_identities([a])
    other = dev("node1", "2-1", None, vid="0403", pid="6001")
    after = assign_identities([other], established=established(before))
    assert after[other.location] == port_identity("node1", "2-1", "0403", "6001")


def test_established_duplicates_are_tolerated() -> None:
    identity = serial_identity("46f4", "0001", "AAA1")
    known = [
        EstablishedIdentity(identity, "node2", "2-1"),
        EstablishedIdentity(identity, "node1", "2-1"),
    ]
    a = dev("node1", "2-1", "AAA1")
    assert assign_identities([a], established=known) == {a.location: identity}


# --- properties --------------------------------------------------------------------------------

NODES = st.sampled_from(["node1", "node2", "worker-0.example.com", "Odd_Node"])
PORTS = st.sampled_from(["1-1", "2-1", "2-2", "3-1.4", "3-1.10", "1-1.2.3"])
SERIALS = st.one_of(st.none(), st.sampled_from(["AAA1", "AAA2", "0001", "x y", "a:b"]), st.text())


@st.composite
def node_devices(draw: st.DrawFn) -> NodeDevice:
    return dev(
        draw(NODES),
        draw(PORTS),
        draw(SERIALS),
        vid=draw(st.sampled_from(["46f4", "0403"])),
        pid=draw(st.sampled_from(["0001", "6001"])),
        manufacturer=draw(st.sampled_from([None, "QEMU", "Acme"])),
        product=draw(st.sampled_from([None, "Stick", "Serial"])),
        devnum=draw(st.integers(1, 127)),
    )


CLUSTERS = st.lists(node_devices(), max_size=12, unique_by=lambda d: d.location)


@given(CLUSTERS, st.data())
def test_identities_do_not_depend_on_input_order(
    devices: list[NodeDevice], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(devices))
    assert assign_identities(devices) == assign_identities(shuffled)


@given(CLUSTERS, CLUSTERS, st.data())
def test_order_does_not_matter_with_established_identities_either(
    earlier: list[NodeDevice], devices: list[NodeDevice], data: st.DataObject
) -> None:
    known = established(assign_identities(earlier))
    expected = assign_identities(devices, established=known)
    shuffled = data.draw(st.permutations(devices))
    shuffled_known = data.draw(st.permutations(known))
    assert assign_identities(shuffled, established=shuffled_known) == expected


@given(CLUSTERS, CLUSTERS)
def test_identities_are_unique_across_the_cluster(
    earlier: list[NodeDevice], devices: list[NodeDevice]
) -> None:
    for known in ([], established(assign_identities(earlier))):
        ids = assign_identities(devices, established=known)
        assert set(ids) == {d.location for d in devices}
        assert len(set(ids.values())) == len(devices)


@given(CLUSTERS, node_devices(), NODES, PORTS)
def test_unique_serial_identity_does_not_depend_on_port_or_node(
    others: list[NodeDevice], device: NodeDevice, node: str, port: str
) -> None:
    d = device.device
    others = [
        o
        for o in others
        if o.location not in {device.location, (node, port)}
        and (o.device.vendor_id, o.device.product_id, o.device.serial)
        != (d.vendor_id, d.product_id, d.serial)
    ]
    elsewhere = moved(device, node, port)
    here = assign_identities([*others, device])[device.location]
    there = assign_identities([*others, elsewhere])[elsewhere.location]
    if d.serial is not None:
        assert here == there == serial_identity(d.vendor_id, d.product_id, d.serial)
    else:
        assert here.tier == there.tier == "port"


@given(CLUSTERS, st.data())
def test_replug_changes_nothing(devices: list[NodeDevice], data: st.DataObject) -> None:
    replugged = [
        NodeDevice(
            d.node, dataclasses.replace(d.device, devnum=data.draw(st.integers(1, 127)), bus=7)
        )
        for d in devices
    ]
    before = assign_identities(devices)
    assert assign_identities(replugged) == before
    assert assign_identities(replugged, established=established(before)) == before


@given(CLUSTERS, node_devices())
def test_a_newcomer_never_changes_anyone_elses_identity(
    devices: list[NodeDevice], newcomer: NodeDevice
) -> None:
    devices = [d for d in devices if d.location != newcomer.location]
    before = assign_identities(devices)
    after = assign_identities([*devices, newcomer], established=established(before))
    assert {loc: after[loc] for loc in before} == before


@given(CLUSTERS, st.data())
def test_a_moved_device_keeps_its_serial_or_descriptor_identity(
    devices: list[NodeDevice], data: st.DataObject
) -> None:
    before = assign_identities(devices)
    movable = [d for d in devices if before[d.location].tier != "port"]
    if not movable:
        return
    device = data.draw(st.sampled_from(movable))
    new_place = ("node9", "9-9")
    rest = [d for d in devices if d is not device]
    after = assign_identities([*rest, moved(device, *new_place)], established=established(before))
    assert after[new_place] == before[device.location]


# --- object names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        (serial_identity("46f4", "0001", "AAA1"), "46f4-0001-aaa1"),
        (serial_identity("0781", "5581", "4C530001230920118053"), "0781-5581-4c530001230920118053"),
        (port_identity("node1", "3-1.4", "067b", "2303"), "node1-067b-2303-3-1.4"),
        (port_identity("worker-0.lab", "1-2", "0403", "6001"), "worker-0.lab-0403-6001-1-2"),
    ],
)
def test_readable_names(identity: DeviceIdentity, name: str) -> None:
    assert device_object_name(identity) == name


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        (serial_identity("46f4", "0001", "aaa1"), "46f4-0001-aaa1-46783596"),
        (serial_identity("0403", "6001", "A50285BI/x"), "0403-6001-a50285bi-x-e1e30326"),
        (
            descriptor_identity("46f4", "0001", manufacturer="QEMU", product="Q", serial="AAA1"),
            "46f4-0001-aaa1-7e5bd144",
        ),
        (port_identity("Node_1", "3-1.4", "067b", "2303"), "node-1-067b-2303-3-1-4-b497bd10"),
        (serial_identity("46f4", "0001", "日本"), "46f4-0001-x-c80de258"),
    ],
)
def test_names_that_lost_information_carry_a_hash(identity: DeviceIdentity, name: str) -> None:
    # Pinned: object names outlive agent versions, so the scheme must not drift.
    assert device_object_name(identity) == name


def test_serials_differing_only_in_case_get_different_names() -> None:
    names = {
        device_object_name(serial_identity("46f4", "0001", s)) for s in ("AAA1", "aaa1", "Aaa1")
    }
    assert len(names) == 3


def test_long_names_are_shortened_with_a_hash() -> None:
    name = device_object_name(port_identity("n" * 80, "3-1.4", "067b", "2303"))
    assert len(name) <= 63
    assert name.startswith("nnnn")
    assert re.search(r"-067b-2303-3-1-4-[0-9a-f]{8}$", name)


ANY_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="Aa0-.:_/ ", max_size=12),
    st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{8}", fullmatch=True),
)
IDS = st.one_of(st.sampled_from(["46f4", "0001", "0403", "6001"]), ANY_TEXT)
IDENTITIES = st.one_of(
    st.builds(serial_identity, IDS, IDS, ANY_TEXT),
    st.builds(
        descriptor_identity,
        IDS,
        IDS,
        manufacturer=st.one_of(st.none(), ANY_TEXT),
        product=st.one_of(st.none(), ANY_TEXT),
        serial=ANY_TEXT,
    ),
    st.builds(
        port_identity,
        st.one_of(NODES, ANY_TEXT),
        st.one_of(PORTS, st.from_regex(r"[0-9]{1,3}(-[0-9]{1,4}){1,2}", fullmatch=True), ANY_TEXT),
        IDS,
        IDS,
    ),
    st.builds(DeviceIdentity, st.sampled_from(["serial", "serial+descriptors", "port"]), ANY_TEXT),
)


@given(IDENTITIES)
def test_names_are_valid_dns_subdomains_of_at_most_63_chars(identity: DeviceIdentity) -> None:
    name = device_object_name(identity)
    assert SUBDOMAIN.fullmatch(name), name
    assert len(name) <= 63


@given(IDENTITIES)
def test_names_depend_only_on_the_identity(identity: DeviceIdentity) -> None:
    copy = DeviceIdentity(identity.tier, identity.key)
    assert device_object_name(copy) == device_object_name(identity)


@given(st.lists(IDENTITIES, unique=True, max_size=30))
def test_distinct_identities_get_distinct_names(identities: list[DeviceIdentity]) -> None:
    names = [device_object_name(i) for i in identities]
    assert len(set(names)) == len(names)


@given(CLUSTERS)
def test_distinct_devices_get_distinct_names(devices: list[NodeDevice]) -> None:
    records = published_records(devices)
    assert len({r.name for r in records}) == len(devices)


def test_published_records_combine_node_device_identity_and_name() -> None:
    a, b = dev("node1", "2-1", "AAA2"), dev("node1", "2-2", None, vid="067b", pid="2303")
    records = published_records([b, a])
    assert [(r.name, r.node, r.identity.tier, r.device) for r in records] == [
        ("46f4-0001-aaa2", "node1", "serial", a.device),
        ("node1-067b-2303-2-2", "node1", "port", b.device),
    ]


def test_identities_of_a_captured_node() -> None:
    fixture = Path(__file__).resolve().parent / "fixtures" / "mixed"
    devices = scan(sysfs_root=fixture, usb_ids=UsbIds(Path("/usr/share/misc/usb.ids"))).devices
    identities = assign_identities([NodeDevice(node="node1", device=d) for d in devices
                                    if not d.is_hub])
    tiers = {port: identity.tier for (_node, port), identity in identities.items()}
    # twins with serials: by serial; twins without: by port; odd strings still get a serial tier
    assert tiers == {"2-1": "serial", "2-2": "serial", "1-3": "port", "1-4": "port",
                     "1-5.1": "serial", "1-5.2": "serial", "1-5.3": "serial"}
    names = sorted(device_object_name(i) for i in identities.values())
    assert len(set(names)) == len(names)
    assert "46f4-0001-aaa1" in names
    assert "node1-0403-6001-1-3" in names
