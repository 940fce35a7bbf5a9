"""What the UI's forms ask for, turned into API objects (or a message saying what to fix)."""

from __future__ import annotations

import pytest

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web import forms
from kubevirt_usb.web.forms import FormError


def test_parse_form_reads_urlencoded_bodies() -> None:
    assert forms.parse_form(b"vm=vm1&selector=serial%3DAAA1%2C+node%3Dnode1&empty=") == \
        {"vm": "vm1", "selector": "serial=AAA1, node=node1", "empty": ""}
    with pytest.raises(FormError, match="too large"):
        forms.parse_form(b"x=" + b"a" * forms.MAX_FORM_BYTES)
    with pytest.raises(FormError, match="UTF-8"):
        forms.parse_form(b"x=\xff")
    with pytest.raises(FormError, match="more than 64 fields"):
        forms.parse_form(b"&".join(b"f%d=1" % i for i in range(65)))


def test_typed_selectors() -> None:
    assert forms.parse_selector("serial=AAA1, node=node1") == {"serial": "AAA1", "node": "node1"}
    assert forms.parse_selector("46F4:0001") == {"vendorId": "46f4", "productId": "0001"}
    assert forms.parse_selector("vendor=46F4,product=0001,port=2-1.4,productName=QEMU stick") \
        == {"vendorId": "46f4", "productId": "0001", "port": "2-1.4", "product": "QEMU stick"}
    assert forms.parse_selector("name=46f4-0001-aaa1") == {"name": "46f4-0001-aaa1"}


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("AAA1", "cannot read 'AAA1'"),
    ("colour=red", "cannot read 'colour=red'"),
    ("vendor=xyz", "vendorId"),
    ("port=front", "port"),
    ("node=Node_1", "node"),
    ("serial=A\x00B", r"control character '\\x00'.*pick the device from the list"),
    ("serial=AAA1\x1b[31m", r"control character '\\x1b'"),
])
def test_bad_selectors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FormError, match=message):
        forms.parse_selector(text)


def test_attach_by_picked_device_or_typed_selector() -> None:
    picked = forms.attach_request({"vm": "vm1", "device": "46f4-0001-aaa1"}, namespace="default")
    assert picked == {
        "apiVersion": API_VERSION, "kind": "USBAttachment",
        "metadata": {"generateName": "vm1-", "namespace": "default",
                     "labels": {"kubevirt-usb.io/vm": "vm1"}},
        "spec": {"vm": "vm1", "device": {"name": "46f4-0001-aaa1"}}}
    typed = forms.attach_request({"vm": "vm1", "selector": "serial=AAA1"}, namespace="ns")
    assert typed["spec"]["device"] == {"serial": "AAA1"}


@pytest.mark.parametrize(("form", "message"), [
    ({"device": "d"}, "say which VM"),
    ({"vm": "VM 1", "device": "d"}, "not a valid name"),
    ({"vm": "vm1"}, "pick a device or type a selector"),
    ({"vm": "vm1", "device": "d", "selector": "serial=A"}, "not both"),
    ({"vm": "vm1", "device": "<b>"}, "not a valid name"),
])
def test_attach_forms_that_cannot_be(form: dict[str, str], message: str) -> None:
    with pytest.raises(FormError, match=message):
        forms.attach_request(form, namespace="default")


def test_new_policy_for_a_namespace() -> None:
    every = forms.new_policy({"namespace": "team-a"})
    assert every == {"apiVersion": API_VERSION, "kind": "USBPolicy",
                     "metadata": {"generateName": "grant-team-a-"},
                     "spec": {"namespaces": ["team-a"], "devices": {}}}
    named = forms.new_policy({"namespace": "team-a", "selector": "vendor=0403",
                              "name": "serial-adapters"})
    assert named["metadata"] == {"name": "serial-adapters"}
    assert named["spec"]["devices"] == {"vendorId": "0403"}
    with pytest.raises(FormError, match="namespace"):
        forms.new_policy({"namespace": "a.b"})


def test_grant_and_revoke_patches_apply_only_to_the_version_read() -> None:
    policy = {"metadata": {"name": "p", "resourceVersion": "41"},
              "spec": {"namespaces": ["b", "a"]}}
    assert forms.granted_patch(policy, "c") == {"metadata": {"resourceVersion": "41"},
                                                "spec": {"namespaces": ["a", "b", "c"]}}
    assert forms.granted_patch(policy, "a") is None
    assert forms.revoked_patch(policy, "a") == {"metadata": {"resourceVersion": "41"},
                                                "spec": {"namespaces": ["b"]}}
    assert forms.revoked_patch(policy, "z") is None
