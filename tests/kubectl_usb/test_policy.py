"""allow: create or extend the USBPolicy for a selector."""

from __future__ import annotations

from typing import Any

from kubevirt_usb.kubectl_usb.policy import (
    Create,
    Extend,
    Unchanged,
    describe_plan,
    plan_allow,
    policy_names,
)
from kubevirt_usb.kubectl_usb.selection import Selector

AAA1 = Selector(serial="AAA1")


def policy(name: str, *, namespaces: list[str], devices: dict[str, str],
           **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": "7"},
            "spec": {"namespaces": namespaces, "devices": devices, **extra}}


def test_names_follow_the_selector() -> None:
    assert policy_names(AAA1)[0] == "allow-serial-aaa1"
    assert policy_names(Selector(vendor_id="46f4", product_id="0001"))[0] == "allow-46f4-0001"
    assert policy_names(Selector(vendor_id="46f4"))[0] == "allow-vendor-46f4"
    assert policy_names(Selector(node="node1", port="2-1"))[0] == "allow-node-node1-port-2-1"
    assert policy_names(Selector(name="46f4-0001-aaa1"))[0] == "allow-device-46f4-0001-aaa1"
    assert policy_names(Selector())[0] == "allow-all-devices"
    assert len(set(policy_names(AAA1))) == len(policy_names(AAA1))


def test_a_new_selector_creates_a_policy() -> None:
    plan = plan_allow([], namespaces=["default"], selector=AAA1)
    assert isinstance(plan, Create)
    assert plan.policy == {
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
        "metadata": {"name": "allow-serial-aaa1",
                     "labels": {"app.kubernetes.io/managed-by": "kubectl-usb"}},
        "spec": {"namespaces": ["default"], "devices": {"serial": "AAA1"}}}
    assert describe_plan(plan, selector=AAA1) == (
        "usbpolicy/allow-serial-aaa1 created: namespace default may attach devices matching "
        "serial AAA1")


def test_the_same_selector_extends_its_policy() -> None:
    existing = policy("allow-serial-aaa1", namespaces=["default"], devices={"serial": "AAA1"})
    plan = plan_allow([existing], namespaces=["lab", "default"], selector=AAA1)
    assert plan == Extend("allow-serial-aaa1", "7", ["default", "lab"])
    assert describe_plan(plan, selector=AAA1) == (
        "usbpolicy/allow-serial-aaa1 extended: namespaces default, lab may attach devices "
        "matching serial AAA1")


def test_nothing_to_add_is_unchanged() -> None:
    existing = policy("admins-own", namespaces=["default", "lab"], devices={"serial": "AAA1"})
    plan = plan_allow([existing], namespaces=["lab"], selector=AAA1)
    assert plan == Unchanged("admins-own", ["default", "lab"])
    assert "already may attach" in describe_plan(plan, selector=AAA1)


def test_a_policy_with_a_namespace_selector_is_not_extended() -> None:
    labelled = policy("allow-serial-aaa1", namespaces=[], devices={"serial": "AAA1"},
                      namespaceSelector={"matchLabels": {"team": "a"}})
    plan = plan_allow([labelled], namespaces=["default"], selector=AAA1)
    assert isinstance(plan, Create)
    assert plan.name != "allow-serial-aaa1"
    assert plan.name.startswith("allow-serial-aaa1-")


def test_a_name_taken_by_another_selector_gets_a_distinct_name() -> None:
    lower = policy("allow-serial-aaa1", namespaces=["x"], devices={"serial": "aaa1"})
    plan = plan_allow([lower], namespaces=["default"], selector=AAA1)
    assert isinstance(plan, Create)
    assert plan.name == policy_names(AAA1)[1]


def test_all_devices() -> None:
    plan = plan_allow([], namespaces=["lab"], selector=Selector())
    assert isinstance(plan, Create)
    assert plan.policy["spec"]["devices"] == {}
    assert describe_plan(plan, selector=Selector()) == (
        "usbpolicy/allow-all-devices created: namespace lab may attach every device")
