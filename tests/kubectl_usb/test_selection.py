"""Which device the user means: flags, matching, one device or why not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, name
from kubevirt_usb.kubectl_usb.selection import (
    Claim,
    Selector,
    SelectorError,
    attachment_name,
    claim_of,
    describe_device,
    held_elsewhere,
    matches,
    resolve,
    select,
    selected_device_name,
    selector_from_flags,
    sort_devices,
)
from tests.kubectl_usb.cluster import attachment_obj, device_obj, field_notes_devices, stick

CLAIM = {"namespace": "default", "attachment": "vm1-46f4-0001-aaa1", "vm": "vm1"}


def names(devices: Sequence[Obj]) -> list[str]:
    return [name(d) for d in devices]


def test_flags_are_normalized() -> None:
    selector = selector_from_flags(vendor="46F4", product="0x0001", serial="AAA1")
    assert selector == Selector(vendor_id="46f4", product_id="0001", serial="AAA1")
    assert selector_from_flags(usb_id="067B:2303") == Selector(vendor_id="067b",
                                                               product_id="2303")


@pytest.mark.parametrize(("flags", "says"), [
    ({"vendor": "46f"}, "--vendor '46f': expected 4 hex digits"),
    ({"usb_id": "067b"}, "--id '067b': expected VENDOR:PRODUCT, 4 hex digits each"),
    ({"usb_id": ":"}, "--id ':': expected VENDOR:PRODUCT, 4 hex digits each"),
    ({"usb_id": "067b:2303:1"}, "--id '067b:2303:1': expected VENDOR:PRODUCT"),
    ({"usb_id": "067b:2303", "vendor": "067b"}, "--id already names vendor and product"),
    ({"port": "3.1"}, "--port '3.1': expected a port path such as 3-1.4"),
    ({"device": "Not_A_Name"}, "'Not_A_Name' is not a USBDevice name: give a NAME from "
                               "`kubectl usb list`"),
    ({"serial": ""}, "an empty selector value matches nothing"),
])
def test_bad_flags_say_what_is_expected(flags: dict[str, str], says: str) -> None:
    with pytest.raises(SelectorError, match=says.replace("(", r"\(").replace("[", r"\[")):
        selector_from_flags(**flags)


def test_every_given_field_must_match() -> None:
    aaa1 = device_obj(*stick("AAA1", port="2-1"))
    assert matches(aaa1, Selector())
    assert matches(aaa1, Selector(vendor_id="46f4", product_id="0001", serial="AAA1",
                                  node="node1", port="2-1", name="46f4-0001-aaa1"))
    assert matches(aaa1, Selector(product="QEMU USB HARDDRIVE"))
    assert not matches(aaa1, Selector(serial="AAA2"))
    assert not matches(aaa1, Selector(serial="AAA1", node="node2"))
    assert not matches(aaa1, Selector(serial="aaa1"))  # serials are exact


def test_a_device_without_status_matches_only_by_name() -> None:
    bare = {"metadata": {"name": "new"}, "spec": {}}
    assert matches(bare, Selector(name="new"))
    assert not matches(bare, Selector(serial="AAA1"))


def test_devices_sort_by_node_then_port_as_people_count() -> None:
    devices = [device_obj(*stick("B", port="2-10")), device_obj(*stick("A", port="2-9")),
               device_obj(*stick("C", port="1-1", node="node2"))]
    assert names(sort_devices(devices)) == ["46f4-0001-a", "46f4-0001-b", "46f4-0001-c"]


def test_identical_sticks_are_told_apart_by_serial() -> None:
    devices = field_notes_devices()
    assert names(select(devices, Selector(vendor_id="46f4"))) == ["46f4-0001-aaa1",
                                                                  "46f4-0001-aaa2"]
    assert name(resolve(devices, Selector(serial="AAA2"))) == "46f4-0001-aaa2"
    assert name(resolve(devices, Selector(port="2-1"))) == "46f4-0001-aaa1"


def test_an_ambiguous_selector_lists_the_candidates() -> None:
    with pytest.raises(CLIError) as caught:
        resolve(field_notes_devices(), Selector(vendor_id="46f4", product_id="0001"))
    assert caught.value.code is ExitCode.AMBIGUOUS
    assert caught.value.message == (
        "2 devices match --vendor 46f4 --product 0001: 46f4-0001-aaa1 (QEMU USB HARDDRIVE, "
        "serial AAA1, node1 port 2-1); 46f4-0001-aaa2 (QEMU USB HARDDRIVE, serial AAA2, node1 "
        "port 2-2); name one of them, or add --serial, --node or --port")


def test_no_match_points_to_list() -> None:
    with pytest.raises(CLIError) as caught:
        resolve(field_notes_devices(), Selector(serial="ZZZ9"))
    assert caught.value.code is ExitCode.NOT_FOUND
    assert caught.value.message == ("no USB device matches --serial ZZZ9: see "
                                    "`kubectl usb list`")
    with pytest.raises(CLIError, match="no USB device named 'nope'"):
        resolve(field_notes_devices(), Selector(name="nope"))


def test_selectors_in_flags_and_words() -> None:
    selector = Selector(name="x", vendor_id="46f4", serial="A B", node="node1", port="2-1",
                        product="Stick")
    assert selector.flags() == ("x --vendor 46f4 --serial 'A B' --product-name Stick "
                                "--node node1 --port 2-1")
    assert selector.words() == "device x id 46f4:* product 'Stick' serial A B on node1 port 2-1"
    assert Selector().flags() == "(any device)"
    assert Selector().words() == "any device"


def test_selectors_round_trip_through_the_spec() -> None:
    selector = Selector(vendor_id="46f4", product_id="0001", serial="AAA1")
    assert selector.to_spec() == {"vendorId": "46f4", "productId": "0001", "serial": "AAA1"}
    assert Selector.from_spec(selector.to_spec()) == selector
    assert Selector.from_spec(None) == Selector()


def test_the_holder_is_read_from_the_claim() -> None:
    devices = field_notes_devices(claim_aaa1=CLAIM)
    claim = claim_of(devices[0])
    assert claim == Claim("default", "vm1-46f4-0001-aaa1", "vm1")
    assert claim_of(devices[1]) is None
    error = held_elsewhere(devices[0], claim)
    assert error.code is ExitCode.REFUSED
    assert error.message == (
        "46f4-0001-aaa1 (QEMU USB HARDDRIVE, serial AAA1, node1 port 2-1) is in use by VM "
        "default/vm1 (attachment default/vm1-46f4-0001-aaa1); detach it there first: "
        "kubectl usb detach -n default vm1-46f4-0001-aaa1")


def test_describe_a_device_with_little_status() -> None:
    assert describe_device({"metadata": {"name": "d"}, "status": {
        "vendorId": "1234", "productId": "abcd"}}) == "d (1234:abcd)"


def test_attachment_names_join_vm_and_device() -> None:
    assert attachment_name("vm1", device="46f4-0001-aaa1") == "vm1-46f4-0001-aaa1"
    by_selector = attachment_name("vm1", selector=Selector(serial="AAA9"))
    assert by_selector.startswith("vm1-aaa9-")
    assert by_selector != attachment_name("vm1", selector=Selector(serial="aaa9"))


def test_the_device_of_an_attachment() -> None:
    waiting = attachment_obj("a", vm="vm1", device={"name": "46f4-0001-aaa1"})
    assert selected_device_name(waiting) == "46f4-0001-aaa1"
    bound = attachment_obj("a", vm="vm1", device={"serial": "AAA1"},
                           status={"device": "46f4-0001-aaa1"})
    assert selected_device_name(bound) == "46f4-0001-aaa1"
    assert selected_device_name(attachment_obj("a", vm="vm1", device={"serial": "X"})) is None
