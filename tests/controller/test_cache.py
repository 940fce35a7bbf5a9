"""The controller's picture of the cluster: indexes, situations, and what each change wakes."""

from __future__ import annotations

from typing import Any

from kubevirt_usb.controller.cache import ClusterView, attachment_key, device_key

NS = "lab"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def att(name: str, *, vm: str = "vm1", created: str = "2026-01-01T00:00:00Z",
        **device: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "uid": f"{name}-uid",
                         "creationTimestamp": created},
            "spec": {"vm": vm, "device": device}}


def dev(name: str, *, serial: str = "S", node: str = "n1", claim: str | None = None,
        vm: str = "vm1", present: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if claim:
        spec["claimRef"] = {"namespace": NS, "attachment": claim, "vm": vm}
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": spec,
            "status": {"node": node, "serial": serial, "vendorId": "46f4", "productId": "0001",
                       "present": present}}


def view() -> ClusterView:
    return ClusterView(lease_prefix="agent-", clock=Clock())


def test_all_keys_oldest_attachment_first_then_orphans_then_devices() -> None:
    v = view()
    v.attachment_changed(None, att("young", created="2026-02-01T00:00:00Z"))
    v.attachment_changed(None, att("old", created="2026-01-01T00:00:00Z"))
    v.device_changed(None, dev("d1", claim="ghost"))
    assert v.all_keys() == [attachment_key(NS, "old"), attachment_key(NS, "young"),
                            attachment_key(NS, "ghost"), device_key("d1")]


def test_a_device_freed_wakes_its_holder_its_vm_and_waiting_matches() -> None:
    v = view()
    v.attachment_changed(None, att("holder", serial="S"))
    v.attachment_changed(None, att("waiter", serial="S", created="2026-03-01T00:00:00Z"))
    v.attachment_changed(None, att("slot", serial="OTHER", created="2026-02-01T00:00:00Z"))
    v.attachment_changed(None, att("unrelated", vm="vm9", serial="NOPE"))
    held = dev("d1", claim="holder")
    assert v.device_changed(None, held) == [device_key("d1"), attachment_key(NS, "holder")]
    assert v.slot_holders(NS, "vm1") == {"holder"}
    keys = v.device_changed(held, dev("d1"))
    assert keys[:2] == [device_key("d1"), attachment_key(NS, "holder")]
    # the VM's slot is free: its waiting attachments, oldest first; then matches of the device
    assert keys[2:] == [attachment_key(NS, "holder"), attachment_key(NS, "slot"),
                        attachment_key(NS, "waiter"), attachment_key(NS, "holder"),
                        attachment_key(NS, "waiter")]
    assert v.slot_holders(NS, "vm1") == set()


def test_situations_narrow_devices_and_count_reservations() -> None:
    v = view()
    v.attachment_changed(None, att("a", serial="S2"))
    for name, serial in (("d1", "S1"), ("d2", "S2"), ("d3", "S2")):
        v.device_changed(None, dev(name, serial=serial))
    v.device_changed(None, dev("d4", serial="S9", claim="b"))
    s = v.situation((NS, "a"), reserved_devices={"d3": (NS, "c")},
                    reserved_slots={(NS, "vm1"): {"c", "a"}}, now="T")
    assert [d.name for d in s.devices] == ["d2", "d3"]
    assert s.reserved == {"d3"}
    assert s.slot_holders == {"b", "c"}


def test_vm_vmi_policy_and_namespace_changes_wake_the_right_attachments() -> None:
    v = view()
    v.attachment_changed(None, att("a", vm="vm1"))
    v.attachment_changed(None, att("b", vm="vm2"))
    vm = {"metadata": {"name": "vm1", "namespace": NS, "uid": "u"}, "spec": {}}
    assert v.vm_changed(None, vm) == [attachment_key(NS, "a")]
    assert v.vmi_changed(None, vm) == [attachment_key(NS, "a")]
    assert sorted(v.policy_changed(None, {"metadata": {"name": "p"}, "spec": {}})) == [
        attachment_key(NS, "a"), attachment_key(NS, "b")]
    ns = {"metadata": {"name": NS, "labels": {"x": "1"}}}
    assert len(v.namespace_changed(None, ns)) == 2
    assert v.namespace_changed(ns, ns) == []


def test_an_expired_heartbeat_wakes_the_nodes_devices_and_their_holders() -> None:
    clock = Clock()
    v = ClusterView(lease_prefix="agent-", clock=clock)
    v.attachment_changed(None, att("a", serial="S"))
    v.device_changed(None, dev("d1", claim="a"))
    lease = {"metadata": {"name": "agent-n1"},
             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 10, "renewTime": "r"}}
    assert v.lease_changed(None, lease) == []
    assert v.next_expiry() == 110.0
    clock.now = 111.0
    keys = v.refresh_reachability()
    assert v.unreachable == {"n1"}
    assert keys[:2] == [device_key("d1"), attachment_key(NS, "a")]
    assert v.next_expiry() is None


def test_broad_selectors_get_every_device_best_first_for_the_vms_node() -> None:
    v = view()
    for i in range(20):
        v.device_changed(None, dev(f"d{i:02d}", serial=f"S{i}", node=f"n{i % 2}"))
    vmi = {"metadata": {"name": "vm1", "namespace": NS, "uid": "i"},
           "status": {"phase": "Running", "nodeName": "n1"}}
    v.vmi_changed(None, vmi)
    v.attachment_changed(None, att("a", vendorId="46f4"))
    s = v.situation((NS, "a"), reserved_devices={}, reserved_slots={}, now="T")
    names = [d.name for d in s.devices]
    assert s.preordered
    assert names[:3] == ["d01", "d03", "d05"]
    assert names[10:12] == ["d00", "d02"]
    v.device_changed(None, dev("d99", serial="S99", node="n1"))  # a new device joins the order
    s = v.situation((NS, "a"), reserved_devices={}, reserved_slots={}, now="T")
    assert [d.name for d in s.devices][10] == "d99"
