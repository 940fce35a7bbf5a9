"""Parsing API objects into the controller's views."""

from __future__ import annotations

from kubevirt_usb.controller.model import (
    Claim,
    parse_agent_lease,
    parse_attachment,
    parse_device,
    parse_policy,
    parse_vm,
    parse_vmi,
)


def test_a_device_with_its_claim_and_presence() -> None:
    d = parse_device({
        "metadata": {"name": "d1", "resourceVersion": "7", "uid": "u"},
        "spec": {"claimRef": {"namespace": "ns", "attachment": "a", "vm": "v", "uid": "au",
                              "vmiUID": "iu"}},
        "status": {"node": "n1", "vendorId": "46f4", "productId": "0001", "serial": "S",
                   "portPath": "1-1", "present": False, "state": "Absent",
                   "conditions": [{"type": "Reachable", "status": "False"}]}})
    assert d is not None
    assert (d.node, d.serial, d.present, d.published, d.reachable) == ("n1", "S", False, True,
                                                                       "False")
    assert d.claim == Claim(namespace="ns", attachment="a", vm="v", uid="au", vmi_uid="iu")
    assert d.claim.to_dict() == {"namespace": "ns", "attachment": "a", "vm": "v", "uid": "au",
                                 "vmiUID": "iu"}


def test_a_device_without_status_is_not_published_and_half_claims_are_none() -> None:
    d = parse_device({"metadata": {"name": "d1"}, "spec": {"claimRef": {"namespace": "ns"}}})
    assert d is not None
    assert not d.published
    assert d.claim is None
    assert parse_device({"metadata": {}}) is None


def test_an_attachment_with_a_bad_spec_says_why() -> None:
    a = parse_attachment({"metadata": {"name": "a", "namespace": "ns"},
                          "spec": {"vm": "vm1", "device": {"vendorId": "XYZ"}}})
    assert a is not None
    assert a.problem is not None
    assert a.problem.startswith("spec.device.vendorId:")


def test_an_attachment_keeps_what_the_decision_needs() -> None:
    a = parse_attachment({
        "metadata": {"name": "a", "namespace": "ns", "uid": "u", "generation": 3,
                     "resourceVersion": "9", "finalizers": ["f"],
                     "deletionTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"kind": "VirtualMachine", "name": "v", "uid": "vu",
                                          "apiVersion": "kubevirt.io/v1"}]},
        "spec": {"vm": "v", "device": {"serial": "S"}},
        "status": {"phase": "Attached", "device": "d", "observedGeneration": 2,
                   "conditions": [{"type": "Bound", "status": "True", "reason": "Bound",
                                   "message": "m", "lastTransitionTime": "t"}]}})
    assert a is not None
    assert (a.generation, a.deleting, a.finalizers, a.selector.serial) == (3, True, ("f",), "S")
    assert a.owners[0].uid == "vu"
    assert a.owner_refs[0]["apiVersion"] == "kubevirt.io/v1"
    assert (a.status.phase, a.status.device, a.status.observed_generation) == ("Attached", "d", 2)
    assert a.status.conditions[0].last_transition_time == "t"


def test_vm_and_vmi_client_passthrough() -> None:
    vm = parse_vm({"metadata": {"name": "v", "namespace": "ns", "uid": "u"},
                   "spec": {"template": {"spec": {"domain": {"devices": {
                       "clientPassthrough": {}}}}}}})
    assert vm is not None
    assert vm.client_passthrough
    vmi = parse_vmi({"metadata": {"name": "v", "namespace": "ns", "uid": "i"},
                     "spec": {"domain": {"devices": {}}},
                     "status": {"phase": "Running", "nodeName": "n"}})
    assert vmi is not None
    assert vmi.running
    assert not vmi.client_passthrough
    assert vmi.node == "n"


def test_agent_leases_by_prefix_and_holder() -> None:
    lease = {"metadata": {"name": "kubevirt-usb-agent-node1"},
             "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40,
                      "renewTime": "t"}}
    parsed = parse_agent_lease(lease, prefix="kubevirt-usb-agent-")
    assert parsed is not None
    assert (parsed.node, parsed.duration_seconds) == ("node1", 40.0)
    assert parse_agent_lease({"metadata": {"name": "other"}}, prefix="kubevirt-usb-agent-") \
        is None


def test_policies_parse_and_bad_ones_grant_nothing() -> None:
    p = parse_policy({"metadata": {"name": "p"},
                      "spec": {"namespaces": ["a"], "namespaceSelector": {
                          "matchLabels": {"x": "y"},
                          "matchExpressions": [{"key": "k", "operator": "In",
                                                "values": ["1"]}]},
                          "devices": {"vendorId": "046d"}}})
    assert p is not None
    assert p.namespaces == {"a"}
    assert p.devices.vendor_id == "046d"
    assert p.namespace_selector is not None
    assert p.namespace_selector.match_labels == (("x", "y"),)
    assert parse_policy({"metadata": {"name": "bad"}, "spec": {"namespaces": ["NOT OK"]}}) \
        is None


def test_an_attachment_with_malformed_metadata_lists_still_parses() -> None:
    a = parse_attachment({"metadata": {"namespace": "lab", "name": "a1", "ownerReferences": 5,
                                       "finalizers": 7}, "spec": {"vm": "vm1"}})
    assert a is not None
    assert (a.owners, a.finalizers) == ((), ())
