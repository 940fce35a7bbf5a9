"""USBPolicy: which namespaces may claim which devices, and the command that grants it."""

from __future__ import annotations

from kubevirt_usb import models
from kubevirt_usb.controller.model import Device, LabelRequirement, NamespaceSelector, Policy
from kubevirt_usb.controller.policy import (
    grant_command,
    granting,
    grants_namespace,
    selector_matches,
)

STICK = Device(name="stick", node="node1", vendor_id="46f4", product_id="0001", serial="AAA1")


def test_label_selectors_follow_kubernetes() -> None:
    labels = {"team": "a", "tier": "gold"}
    assert selector_matches(NamespaceSelector(), labels)
    assert selector_matches(NamespaceSelector(match_labels=(("team", "a"),)), labels)
    assert not selector_matches(NamespaceSelector(match_labels=(("team", "b"),)), labels)
    cases = [("In", {"gold"}, True), ("In", {"silver"}, False), ("NotIn", {"gold"}, False),
             ("NotIn", {"silver"}, True), ("Exists", set(), True), ("DoesNotExist", set(), False)]
    for op, values, expected in cases:
        sel = NamespaceSelector(expressions=(LabelRequirement("tier", op, frozenset(values)),))
        assert selector_matches(sel, labels) is expected, op
    missing = NamespaceSelector(expressions=(LabelRequirement("nope", "NotIn",
                                                              frozenset({"x"})),))
    assert selector_matches(missing, labels)


def test_a_policy_grants_listed_or_selected_namespaces_only() -> None:
    listed = Policy(name="p", namespaces=frozenset({"a"}))
    selected = Policy(name="q", namespace_selector=NamespaceSelector(
        match_labels=(("team", "x"),)))
    nobody = Policy(name="r")
    assert grants_namespace(listed, "a", {})
    assert not grants_namespace(listed, "b", {})
    assert grants_namespace(selected, "b", {"team": "x"})
    assert not grants_namespace(selected, "b", {})
    assert not grants_namespace(nobody, "a", {})


def test_granting_names_every_policy_that_fits_the_device() -> None:
    policies = [Policy(name="z-all", namespaces=frozenset({"a"})),
                Policy(name="serial", namespaces=frozenset({"a"}),
                       devices=models.DeviceSelector(serial="AAA1")),
                Policy(name="other", namespaces=frozenset({"a"}),
                       devices=models.DeviceSelector(serial="BBB"))]
    assert granting(policies, STICK, namespace="a", labels={}) == ["serial", "z-all"]
    assert granting(policies, STICK, namespace="b", labels={}) == []


def test_the_grant_command_repeats_the_selector_as_flags() -> None:
    def cmd(selector: dict[str, str], candidates: list[Device] = []) -> str:  # noqa: B006
        return grant_command("ns", models.DeviceSelector.model_validate(selector), candidates)

    assert cmd({"serial": "AAA1"}) == "kubectl usb allow --namespace ns --serial AAA1"
    assert cmd({"vendorId": "0781", "productId": "5567"}) == \
        "kubectl usb allow --namespace ns --vendor 0781 --product 5567"
    assert cmd({"name": "d1", "node": "n1"}) == "kubectl usb allow --namespace ns d1 --node n1"
    assert cmd({"product": "My Stick"}) == \
        "kubectl usb allow --namespace ns --product-name 'My Stick'"
    assert cmd({}, [STICK]) == "kubectl usb allow --namespace ns --serial AAA1"
    assert cmd({}, [Device(name="noserial")]) == "kubectl usb allow --namespace ns noserial"
