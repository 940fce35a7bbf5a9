"""The attachment state machine, decided over plain data (no API)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb import models
from kubevirt_usb.controller.decide import (
    ApplyStatus,
    Bind,
    PatchMetadata,
    Plan,
    Release,
    Situation,
    decide,
)
from kubevirt_usb.controller.matching import matches
from kubevirt_usb.controller.model import (
    FINALIZER,
    VM,
    VMI,
    Attachment,
    AttachmentStatus,
    Claim,
    Condition,
    Device,
    OwnerRef,
    Policy,
    parse_attachment,
    parse_device,
    parse_policy,
)
from kubevirt_usb.controller.policy import granting

NS = "lab"
VM_UID = "vm-uid"
VMI_UID = "vmi-uid"
NOW = "2026-01-01T00:00:00Z"


def attachment(**changes: Any) -> Attachment:
    base = Attachment(namespace=NS, name="a1", uid="a-uid", resource_version="10",
                      created="2026-01-01T00:00:00Z", vm="vm1",
                      selector=models.DeviceSelector(serial="AAA1"), finalizers=(FINALIZER,),
                      owners=(OwnerRef(kind="VirtualMachine", name="vm1", uid=VM_UID),))
    return replace(base, **changes)


def device(name: str = "stick", **changes: Any) -> Device:
    base = Device(name=name, resource_version="5", uid=f"{name}-uid", node="node1",
                  vendor_id="46f4", product_id="0001", serial="AAA1",
                  product_name="QEMU USB HARDDRIVE", port_path="1-1")
    return replace(base, **changes)


def mine(d: Device, *, vmi_uid: str | None = VMI_UID, vm: str = "vm1",
         uid: str | None = "a-uid") -> Device:
    return replace(d, claim=Claim(namespace=NS, attachment="a1", vm=vm, uid=uid,
                                  vmi_uid=vmi_uid))


def taken(d: Device) -> Device:
    return replace(d, claim=Claim(namespace=NS, attachment="other", vm="vm1", uid="o"))


ALLOW_ALL = Policy(name="all", namespaces=frozenset({NS}))


def situation(a: Attachment | None = None, *, devices: list[Device] | None = None,
              **changes: Any) -> Situation:
    a = attachment() if a is None else a
    devs = [device()] if devices is None else devices
    base = Situation(
        key=(NS, "a1"), attachment=a,
        claims=tuple(d for d in devs if d.claim is not None and d.claim.key == (NS, "a1")),
        devices=devs, policies=(ALLOW_ALL,),
        vm=VM(namespace=NS, name="vm1", uid=VM_UID, client_passthrough=True),
        vmi=VMI(namespace=NS, name="vm1", uid=VMI_UID, phase="Running", node="node1",
                client_passthrough=True), now=NOW)
    return replace(base, **changes)


def status_step(plan: Plan) -> ApplyStatus:
    found = [s for s in plan.steps if isinstance(s, ApplyStatus)]
    assert len(found) == 1, plan.steps
    return found[0]


def phase(plan: Plan) -> Any:
    return status_step(plan).status.get("phase")


def message(plan: Plan) -> str:
    return str(status_step(plan).status["message"])


def kinds(plan: Plan) -> list[str]:
    return [type(s).__name__ for s in plan.steps]


# ---- binding -----------------------------------------------------------------------------------


def test_a_free_matching_device_is_bound_then_status_says_bound() -> None:
    plan = decide(situation())
    assert kinds(plan) == ["Bind", "ApplyStatus"]
    bind = plan.steps[0]
    assert isinstance(bind, Bind)
    assert (bind.device, bind.resource_version) == ("stick", "5")
    assert bind.claim == Claim(namespace=NS, attachment="a1", vm="vm1", uid="a-uid",
                               vmi_uid=VMI_UID)
    st = status_step(plan).status
    assert (st["phase"], st["device"], st["node"], st["vmiUID"]) == (
        "Bound", "stick", "node1", VMI_UID)
    assert [e.reason for e in bind.events] == ["Bound", "Bound"]
    assert {e.about.kind for e in bind.events} == {"USBAttachment", "USBDevice"}


def test_the_finalizer_and_the_vm_owner_come_first() -> None:
    plan = decide(situation(attachment(finalizers=(), owners=())))
    assert kinds(plan) == ["PatchMetadata", "Bind", "ApplyStatus"]
    meta = plan.steps[0]
    assert isinstance(meta, PatchMetadata)
    assert meta.finalizers == (FINALIZER,)
    assert meta.owner_references == ({"apiVersion": "kubevirt.io/v1",
                                      "kind": "VirtualMachine", "name": "vm1",
                                      "uid": VM_UID},)


def test_the_vms_node_wins_then_the_name() -> None:
    devs = [device("z-near", node="node2"), device("c-far"), device("b-near", node="node2"),
            device("a-far")]
    vmi = VMI(namespace=NS, name="vm1", uid=VMI_UID, phase="Running", node="node2",
              client_passthrough=True)
    bind = decide(situation(devices=devs, vmi=vmi)).steps[0]
    assert isinstance(bind, Bind)
    assert bind.device == "b-near"
    bind = decide(situation(devices=devs[1::2])).steps[0]  # c-far, a-far: by name
    assert isinstance(bind, Bind)
    assert bind.device == "a-far"


def test_devices_in_use_absent_unreachable_or_reserved_are_not_taken() -> None:
    devs = [taken(device("a")), device("b", present=False), device("c", node="dead"),
            device("d"), device("e")]
    plan = decide(situation(devices=devs, unreachable_nodes=frozenset({"dead"}),
                            reserved=frozenset({"d"})))
    bind = plan.steps[0]
    assert isinstance(bind, Bind)
    assert bind.device == "e"


def test_nothing_matching_waits_for_a_device() -> None:
    plan = decide(situation(devices=[]))
    assert kinds(plan) == ["ApplyStatus"]
    assert phase(plan) == "WaitingForDevice"
    assert message(plan) == "no USBDevice matches serial AAA1: waiting for one to be plugged in"


def test_all_matching_devices_busy_waits_and_says_why() -> None:
    devs = [taken(device("a")), device("b", present=False), device("c", node="dead")]
    plan = decide(situation(devices=devs, unreachable_nodes=frozenset({"dead"})))
    assert phase(plan) == "WaitingForDevice"
    assert message(plan) == (
        "3 devices match serial AAA1 but none is free (1 in use, 1 unplugged, 1 on nodes "
        "whose agent is unreachable): waiting for one to be released or plugged in")
    assert status_step(plan).events[0].type == "Normal"


def test_an_unchanged_status_is_not_written_and_makes_no_event() -> None:
    first = decide(situation(devices=[taken(device())]))
    st = status_step(first).status
    conds = tuple(Condition(type=c["type"], status=c["status"], reason=c["reason"],
                            message=c["message"], last_transition_time=c["lastTransitionTime"])
                  for c in st["conditions"])
    again = attachment(status=AttachmentStatus(
        phase=st["phase"], message=st["message"], vmi_uid=st["vmiUID"], conditions=conds,
        observed_generation=1))
    assert decide(situation(again, devices=[taken(device())])).steps == ()


# ---- policy ------------------------------------------------------------------------------------


def test_no_policy_refuses_with_the_admin_command() -> None:
    plan = decide(situation(policies=()))
    assert phase(plan) == "NotAllowed"
    assert message(plan) == (
        "no USBPolicy allows namespace lab to use stick (QEMU USB HARDDRIVE, serial AAA1, "
        "node1 port 1-1): a cluster admin can allow it with "
        "`kubectl usb allow --namespace lab --serial AAA1`")
    assert status_step(plan).events[0].type == "Warning"
    allowed = {c["type"]: c for c in status_step(plan).status["conditions"]}["Allowed"]
    assert (allowed["status"], allowed["reason"]) == ("False", "NoPolicy")


def test_a_policy_for_other_devices_or_namespaces_does_not_grant() -> None:
    other_device = Policy(name="p", namespaces=frozenset({NS}),
                          devices=models.DeviceSelector(serial="ZZZ"))
    other_ns = Policy(name="q", namespaces=frozenset({"elsewhere"}))
    assert phase(decide(situation(policies=(other_device, other_ns)))) == "NotAllowed"


def test_a_revoked_policy_releases_the_held_device() -> None:
    plan = decide(situation(devices=[mine(device())], policies=()))
    assert kinds(plan) == ["Release", "ApplyStatus"]
    release = plan.steps[0]
    assert isinstance(release, Release)
    assert release.events[0].type == "Warning"
    assert phase(plan) == "NotAllowed"


# ---- the VM ------------------------------------------------------------------------------------


def test_a_vm_not_ready_binds_nothing() -> None:
    plan = decide(situation(vm=None, vmi=None))
    assert kinds(plan) == ["ApplyStatus"]
    assert phase(plan) == "VMNotReady"
    assert message(plan) == ("VM lab/vm1 does not exist: create it, or set spec.vm to a VM in "
                             "namespace lab")


def test_a_stopped_vm_keeps_its_device_reserved() -> None:
    plan = decide(situation(devices=[mine(device())], vmi=None))
    assert kinds(plan) == ["ApplyStatus"]
    assert phase(plan) == "VMNotReady"
    assert message(plan).endswith("USBDevice stick stays reserved for it")
    assert status_step(plan).status["device"] == "stick"


def test_a_vm_that_lost_client_passthrough_releases() -> None:
    vm = VM(namespace=NS, name="vm1", uid=VM_UID, client_passthrough=False)
    plan = decide(situation(devices=[mine(device())], vm=vm, vmi=None))
    assert kinds(plan) == ["Release", "ApplyStatus"]
    assert phase(plan) == "VMNotReady"


def test_a_new_vm_instance_updates_the_claim_and_rebinds() -> None:
    plan = decide(situation(devices=[mine(device(), vmi_uid="old-instance")]))
    assert kinds(plan) == ["Bind", "ApplyStatus"]
    bind = plan.steps[0]
    assert isinstance(bind, Bind)
    assert bind.claim.vmi_uid == VMI_UID
    assert [e.reason for e in bind.events] == ["Reattaching"]
    assert phase(plan) == "Bound"


# ---- a held device -----------------------------------------------------------------------------


def test_a_held_device_is_kept_and_the_agents_phase_left_alone() -> None:
    a = attachment(status=AttachmentStatus(phase="Attached", device="stick", node="node1",
                                           vmi_uid=VMI_UID))
    plan = decide(situation(a, devices=[mine(device())]))
    assert kinds(plan) == ["ApplyStatus"]
    assert "phase" not in status_step(plan).status


def test_an_unplugged_held_device_waits_keeping_the_claim() -> None:
    plan = decide(situation(devices=[mine(device(present=False))]))
    assert kinds(plan) == ["ApplyStatus"]
    assert phase(plan) == "WaitingForDevice"
    assert message(plan).startswith("USBDevice stick (QEMU USB HARDDRIVE, serial AAA1, node1 "
                                    "port 1-1) is unplugged: waiting for it")


def test_an_unplugged_held_device_moves_to_another_match() -> None:
    plan = decide(situation(devices=[mine(device(present=False)), device("spare")]))
    assert kinds(plan) == ["Release", "Bind", "ApplyStatus"]
    release, bind = plan.steps[0], plan.steps[1]
    assert isinstance(release, Release)
    assert release.device == "stick"
    assert isinstance(bind, Bind)
    assert bind.device == "spare"
    assert phase(plan) == "Bound"


def test_an_unreachable_held_device_moves_or_waits() -> None:
    dead = frozenset({"node1"})
    plan = decide(situation(devices=[mine(device())], unreachable_nodes=dead))
    assert phase(plan) == "WaitingForDevice"
    assert "whose agent stopped renewing its heartbeat" in message(plan)
    plan = decide(situation(devices=[mine(device()), device("spare", node="node2")],
                            unreachable_nodes=dead))
    assert kinds(plan) == ["Release", "Bind", "ApplyStatus"]


def test_claims_of_an_earlier_attachment_or_another_vm_are_released() -> None:
    stale = mine(device("old"), uid="previous-uid")
    moved = mine(device("moved"), vm="vm0")
    plan = decide(situation(devices=[stale, moved, device()]))
    assert kinds(plan) == ["Release", "Release", "Bind", "ApplyStatus"]


def test_two_held_devices_keep_the_usable_one() -> None:
    plan = decide(situation(devices=[mine(device("a", present=False)), mine(device("b"))]))
    release = plan.steps[0]
    assert isinstance(release, Release)
    assert release.device == "a"


# ---- slots -------------------------------------------------------------------------------------


def test_four_slot_holders_make_a_fifth_wait() -> None:
    plan = decide(situation(slot_holders=frozenset({"w", "x", "y", "z"})))
    assert phase(plan) == "NoFreeSlot"
    assert message(plan) == ("VM lab/vm1 already uses all 4 USB redirection slots (w, x, y, z): "
                             "this attachment waits until one of them is deleted")
    assert kinds(decide(situation(slot_holders=frozenset({"x", "y", "z"})))) == [
        "Bind", "ApplyStatus"]


# ---- going away --------------------------------------------------------------------------------


def test_a_deleted_attachment_releases_then_drops_its_finalizer() -> None:
    a = attachment(deleting=True, finalizers=("other/keep", FINALIZER))
    plan = decide(situation(a, devices=[mine(device())]))
    assert kinds(plan) == ["Release", "PatchMetadata"]
    meta = plan.steps[1]
    assert isinstance(meta, PatchMetadata)
    assert meta.finalizers == ("other/keep",)


def test_claims_of_a_vanished_attachment_are_released_after_checking() -> None:
    s = situation(devices=[mine(device())])
    plan = decide(replace(s, attachment=None))
    assert kinds(plan) == ["Release"]
    release = plan.steps[0]
    assert isinstance(release, Release)
    assert release.verify_gone
    assert "its USBAttachment no longer exists" in release.events[0].message


def test_an_invalid_spec_is_pending_with_the_reason() -> None:
    plan = decide(situation(attachment(problem="vm: Field required")))
    assert phase(plan) == "Pending"
    assert message(plan) == "spec is invalid: vm: Field required"


def test_while_the_agent_reports_on_a_held_device_its_phase_stays() -> None:
    reporting = attachment(status=AttachmentStatus(phase="Connecting", message="retrying",
                                                   device="stick", vmi_uid=VMI_UID))
    plan = decide(situation(reporting, devices=[mine(device(present=False))]))
    fields = status_step(plan).status
    assert "phase" not in fields
    assert "message" not in fields
    bound = {c["type"]: c for c in fields["conditions"]}["Bound"]
    assert (bound["status"], bound["reason"]) == ("False", "DeviceUnavailable")
    assert status_step(plan).events[0].reason == "WaitingForDevice"


def test_an_unreachable_agents_stale_phase_is_overwritten() -> None:
    stale = attachment(status=AttachmentStatus(phase="Attached", device="stick",
                                               vmi_uid=VMI_UID))
    plan = decide(situation(stale, devices=[mine(device())],
                            unreachable_nodes=frozenset({"node1"})))
    assert phase(plan) == "WaitingForDevice"


# ---- many attachments, decided one after another until nothing changes -------------------------


def _apply(devices: dict[str, Device], a: Attachment, plan: Plan) -> Attachment:
    for step in plan.steps:
        if isinstance(step, Bind):
            devices[step.device] = replace(devices[step.device], claim=step.claim)
        elif isinstance(step, Release):
            devices[step.device] = replace(devices[step.device], claim=None)
        elif isinstance(step, ApplyStatus):
            f = step.status
            conds = tuple(Condition(type=c["type"], status=c["status"], reason=c["reason"],
                                    message=c["message"],
                                    last_transition_time=c["lastTransitionTime"])
                          for c in f["conditions"])
            a = replace(a, status=AttachmentStatus(
                phase=f.get("phase", a.status.phase), message=f.get("message", a.status.message),
                device=f.get("device"), node=f.get("node"), vmi_uid=f.get("vmiUID"),
                conditions=conds, observed_generation=f["observedGeneration"]))
    return a


@settings(max_examples=60, deadline=None)
@given(serials=st.lists(st.sampled_from(["S0", "S1", "S2"]), min_size=1, max_size=6),
       wants=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([None, "S0", "S1", "S2"])),
                      min_size=1, max_size=12))
def test_decisions_converge_with_one_claim_per_device_and_four_per_vm(
        serials: list[str], wants: list[tuple[int, str | None]]) -> None:
    devices = {f"d{i}": device(f"d{i}", serial=s) for i, s in enumerate(serials)}
    attachments = [Attachment(namespace=NS, name=f"a{i:02d}", uid=f"u{i}", vm=f"vm{vm}",
                              selector=models.DeviceSelector(serial=serial),
                              finalizers=(FINALIZER,), owners=(OwnerRef(
                                  kind="VirtualMachine", name=f"vm{vm}", uid=f"vm{vm}"),))
                   for i, (vm, serial) in enumerate(wants)]
    for _round in range(3):
        changed = False
        for index, a in enumerate(attachments):
            claims = tuple(d for d in devices.values()
                           if d.claim is not None and d.claim.key == a.key)
            holders = frozenset(d.claim.attachment for d in devices.values()
                                if d.claim is not None and d.claim.vm == a.vm) - {a.name}
            s = Situation(key=a.key, attachment=a, claims=claims, devices=list(devices.values()),
                          policies=(ALLOW_ALL,),
                          vm=VM(namespace=NS, name=a.vm, uid=a.vm, client_passthrough=True),
                          vmi=VMI(namespace=NS, name=a.vm, uid=f"i-{a.vm}", phase="Running",
                                  node="node1", client_passthrough=True),
                          slot_holders=holders, now=NOW)
            plan = decide(s)
            changed = changed or bool(plan.steps)
            attachments[index] = _apply(devices, a, plan)
        if not changed:
            break
    assert not changed, "a second pass still wanted to change something"
    claimed = [d.claim.key for d in devices.values() if d.claim is not None]
    assert len(claimed) == len(set(claimed))  # one device per attachment
    for vm in ("vm0", "vm1", "vm2"):
        assert sum(1 for d in devices.values() if d.claim and d.claim.vm == vm) <= 4
    for a in attachments:
        mine_ = [d for d in devices.values() if d.claim is not None and d.claim.key == a.key]
        if a.status.phase == "Bound":
            assert [d.name for d in mine_] == [a.status.device]
        else:
            assert not mine_
            free = [d for d in devices.values() if d.claim is None
                    and (a.selector.serial in (None, d.serial))]
            vm_full = sum(1 for d in devices.values() if d.claim and d.claim.vm == a.vm) >= 4
            assert not free or vm_full, f"{a.name} waits although {free[0].name} is free"


def test_preordered_devices_give_the_first_free_one() -> None:
    devs = [taken(device("z")), device("y", present=False), device("x"), device("a")]
    bind = decide(situation(devices=devs, preordered=True)).steps[0]
    assert isinstance(bind, Bind)
    assert bind.device == "x"


# ---- fuzzed objects ---------------------------------------------------------------------------
# Raw USBDevice, USBAttachment and USBPolicy bodies with anything JSON can hold where the schema
# has strings, lists or maps (huge strings, unicode, wrong types, selectors that match nothing or
# everything) go through the controller's parsers and its decision. Nothing raises; a Bind only
# ever names a present, unclaimed device the selector matches and a policy grants; a spec the
# schema would refuse binds nothing; the status written validates against the CRD's model.

_TEXT = st.one_of(st.sampled_from(["AAA1", "46f4", "0001", "node1", "1-1", "lab", "vm1", "", "*"]),
                  st.text(max_size=12), st.just("x" * 300), st.just("\u202e\x1b[31m"))
_ANY = st.recursive(st.none() | st.booleans() | st.integers() | _TEXT,
                    lambda inner: st.lists(inner, max_size=2)
                    | st.dictionaries(_TEXT, inner, max_size=2), max_leaves=4)
_SELECTOR = st.dictionaries(
    st.sampled_from(["name", "vendorId", "productId", "serial", "product", "node", "port", "x"]),
    st.one_of(_TEXT, _ANY), max_size=4)
_RAW_DEVICES = st.lists(st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": st.sampled_from(["d0", "d1", "d2"]),
                                       "resourceVersion": st.just("1")}),
    "spec": st.one_of(st.just({}), st.fixed_dictionaries({"claimRef": st.one_of(_ANY, st.just(
        {"namespace": NS, "attachment": "other", "vm": "vm2"}))})),
    "status": st.one_of(_ANY, st.fixed_dictionaries({}, optional={
        k: st.one_of(_TEXT, _ANY) for k in ("node", "vendorId", "productId", "serial",
                                            "product", "productName", "portPath", "present",
                                            "state", "conditions")})),
}), max_size=4, unique_by=lambda d: d["metadata"]["name"])
_RAW_ATTACHMENT = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": st.just("a1"), "namespace": st.just(NS)}, optional={
        "ownerReferences": _ANY, "finalizers": _ANY, "generation": _ANY, "uid": _ANY}),
    "spec": st.one_of(_ANY, st.fixed_dictionaries({"vm": st.one_of(st.just("vm1"), _ANY)},
                                                  optional={"device": st.one_of(_SELECTOR, _ANY)})),
    "status": _ANY,
})
_RAW_POLICIES = st.lists(st.fixed_dictionaries({
    "metadata": st.just({"name": "p"}),
    "spec": st.one_of(_ANY, st.fixed_dictionaries({}, optional={
        "namespaces": st.one_of(st.just([NS]), _ANY), "devices": st.one_of(_SELECTOR, _ANY),
        "namespaceSelector": st.one_of(st.just({}), _ANY, st.fixed_dictionaries({
            "matchExpressions": st.lists(st.fixed_dictionaries({
                "key": _TEXT, "operator": st.sampled_from(["In", "NotIn", "Exists", "Bogus"]),
                "values": st.lists(_TEXT, max_size=2)}), max_size=2)}))})),
}), max_size=3)


@settings(max_examples=150)
@given(raw_devices=_RAW_DEVICES, raw_attachment=_RAW_ATTACHMENT, raw_policies=_RAW_POLICIES,
       labels=st.dictionaries(_TEXT, _TEXT, max_size=2))
def test_fuzzed_objects_never_crash_the_decision_and_bind_only_what_is_allowed(
        raw_devices: list[Any], raw_attachment: Any, raw_policies: list[Any],
        labels: dict[str, str]) -> None:
    devices = [d for d in map(parse_device, raw_devices) if d is not None]
    a = parse_attachment(raw_attachment)
    policies = [p for p in map(parse_policy, raw_policies) if p is not None]
    assert a is not None
    s = situation(a, devices=devices, policies=policies, namespace_labels=labels)

    plan = decide(s)

    assert len(plan.binds) <= 1
    for bind in plan.binds:
        assert a.problem is None
        (bound,) = [d for d in devices if d.name == bind.device]
        assert bound.present
        assert bound.claim is None
        assert matches(a.selector, bound)
        assert granting(policies, bound, namespace=NS, labels=labels)
    for step in plan.steps:
        if isinstance(step, ApplyStatus):
            models.USBAttachmentStatus.model_validate(step.status)
