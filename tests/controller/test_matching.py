"""Which devices a selector names, and which one comes first."""

from __future__ import annotations

import pytest

from kubevirt_usb import models
from kubevirt_usb.controller.matching import is_empty, matches, ranked, selector_words
from kubevirt_usb.controller.model import Device

STICK = Device(name="stick", node="node1", vendor_id="46f4", product_id="0001", serial="AAA1",
               product="QEMU HARDDRIVE", product_name="QEMU USB HARDDRIVE", port_path="2-1")


@pytest.mark.parametrize("fields", [
    {}, {"name": "stick"}, {"vendorId": "46f4", "productId": "0001"}, {"serial": "AAA1"},
    {"product": "QEMU HARDDRIVE"}, {"product": "QEMU USB HARDDRIVE"}, {"node": "node1"},
    {"port": "2-1"}, {"serial": "AAA1", "node": "node1", "port": "2-1"}])
def test_every_given_field_must_match(fields: dict[str, str]) -> None:
    assert matches(models.DeviceSelector.model_validate(fields), STICK)


@pytest.mark.parametrize("fields", [
    {"name": "other"}, {"vendorId": "0000"}, {"serial": "aaa1"}, {"product": "qemu"},
    {"node": "node2"}, {"port": "2-2"}, {"serial": "AAA1", "node": "node2"}])
def test_one_wrong_field_is_enough_to_miss(fields: dict[str, str]) -> None:
    assert not matches(models.DeviceSelector.model_validate(fields), STICK)


def test_the_vms_node_first_then_by_name() -> None:
    devices = [Device(name="c", node="n1"), Device(name="b", node="n2"),
               Device(name="a", node="n1"), Device(name="d", node="n2")]
    assert [d.name for d in ranked(devices, preferred_node="n2")] == ["b", "d", "a", "c"]
    assert [d.name for d in ranked(devices, preferred_node=None)] == ["a", "b", "c", "d"]


def test_selectors_in_words() -> None:
    words = selector_words(models.DeviceSelector.model_validate(
        {"vendorId": "0781", "serial": "S1", "node": "n1"}))
    assert words == "id 0781:* serial S1 on n1"
    assert selector_words(models.DeviceSelector()) == "any device"
    assert is_empty(models.DeviceSelector())
    assert not is_empty(
        models.DeviceSelector(serial="x"))
