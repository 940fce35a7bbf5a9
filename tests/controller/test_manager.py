"""The controller against a real API (the emulator, or a real kube-apiserver named by
KUBEVIRT_USB_TEST_KUBECONFIG): binding, policy, VM checks, slots, deletion, rebinding, Events and
restarts, as users and admins see them."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubevirt_usb.clock import micro_time, utc_now
from kubevirt_usb.controller.model import FINALIZER
from kubevirt_usb.kube.errors import KubeError, Unavailable
from kubevirt_usb.kube.objects import Obj
from kubevirt_usb.kube.resources import (
    Lease,
    USBAttachment,
    USBPolicy,
    VirtualMachine,
    VirtualMachineInstance,
)
from kubevirt_usb.kube.retry import Backoff
from kubevirt_usb.models import API_VERSION
from tests.controller.cluster import Kit, wait_for


def status(obj: Obj | None) -> dict[str, object]:
    return dict((obj or {}).get("status") or {})


def conditions(obj: Obj) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in status(obj).get("conditions") or []}  # type: ignore[attr-defined]


async def claim_of(kit: Kit, base: str) -> dict[str, str] | None:
    ref = ((await kit.get_device(base)).get("spec") or {}).get("claimRef")
    return dict(ref) if ref else None


async def bound_setup(kit: Kit, *, serial: str = "AAA1") -> None:
    await kit.vm("vm1")
    await kit.device("stick", serial=serial)
    await kit.allow(serial=serial)
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial=serial)
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))


# ---- binding ---------------------------------------------------------------------------------


async def test_an_attachment_binds_the_matching_device(kit: Kit) -> None:
    await bound_setup(kit)
    attachment = await kit.attachment("a1")
    assert attachment is not None
    st = status(attachment)
    vmi = await kit.client.get(VirtualMachineInstance, "vm1", namespace=kit.namespace)
    assert st["node"] == "node1"
    assert st["vmiUID"] == vmi["metadata"]["uid"]
    assert st["observedGeneration"] == attachment["metadata"]["generation"]
    assert {k: v["status"] for k, v in conditions(attachment).items()} == {
        "Bound": "True", "Allowed": "True", "VMReady": "True"}
    claim = await claim_of(kit, "stick")
    assert claim == {"namespace": kit.namespace, "attachment": "a1", "vm": "vm1",
                     "uid": attachment["metadata"]["uid"], "vmiUID": vmi["metadata"]["uid"]}
    assert FINALIZER in attachment["metadata"]["finalizers"]
    vm = await kit.client.get(VirtualMachine, "vm1", namespace=kit.namespace)
    assert [(o["kind"], o["uid"]) for o in attachment["metadata"]["ownerReferences"]] == [
        ("VirtualMachine", vm["metadata"]["uid"])]


async def test_binds_are_audited_by_events_on_both_sides(kit: Kit) -> None:
    await bound_setup(kit)
    on_attachment = await kit.wait_event(name="a1", reason="Bound")
    on_device = await kit.wait_event(name=kit.name("stick"), reason="Bound", namespace="default")
    assert f"to VM {kit.namespace}/vm1" in on_attachment["message"]
    assert "serial AAA1" in on_attachment["message"]
    assert on_device["message"] == (f"Bound to VM {kit.namespace}/vm1 (USBAttachment "
                                    f"{kit.namespace}/a1)")
    assert on_device["reportingComponent"] == "kubevirt-usb-controller"


async def test_prefers_a_device_on_the_vms_node_then_the_first_by_name(kit: Kit) -> None:
    await kit.vm("vm1", node="node2")
    await kit.device("a-far", serial="S1", node="node1")
    await kit.device("c-near", serial="S3", node="node2")
    await kit.device("b-near", serial="S2", node="node2")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", vendorId="46f4", productId="0001")
    await kit.wait_phase("a1", "Bound", device=kit.name("b-near"))


async def test_a_selector_matching_nothing_waits_and_binds_when_a_device_appears(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="LATE")
    waiting = await kit.wait_phase("a1", "WaitingForDevice")
    assert status(waiting)["message"] == ("no USBDevice matches serial LATE: waiting for one to "
                                          "be plugged in")
    await kit.device("late", serial="LATE")
    await kit.wait_phase("a1", "Bound", device=kit.name("late"))


# ---- policy ----------------------------------------------------------------------------------


async def test_no_policy_no_claim_and_the_message_names_the_admin_command(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="AAA1")
    refused = await kit.wait_phase("a1", "NotAllowed")
    assert f"`kubectl usb allow --namespace {kit.namespace} --serial AAA1`" in str(
        status(refused)["message"])
    assert conditions(refused)["Allowed"]["status"] == "False"
    assert await claim_of(kit, "stick") is None
    event = await kit.wait_event(name="a1", reason="NotAllowed")
    assert event["type"] == "Warning"
    await kit.allow(serial="AAA1")
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))


async def test_a_policy_for_another_namespace_grants_nothing_here(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.allow(namespaces=["someone-else"])
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="AAA1")
    await kit.wait_phase("a1", "NotAllowed")


async def test_a_namespace_selector_grants_by_label(kit: Kit) -> None:
    from lightkube.resources.core_v1 import Namespace

    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.client.create(USBPolicy, {
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
        "metadata": {"name": kit.name("labs")},
        "spec": {"namespaceSelector": {"matchLabels": {f"lab-{kit.tag}": "yes"}},
                 "devices": {"serial": "AAA1"}}})
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="AAA1")
    await kit.wait_phase("a1", "NotAllowed")
    await kit.client.patch(Namespace, kit.namespace,
                           {"metadata": {"labels": {f"lab-{kit.tag}": "yes"}}})
    await kit.wait_phase("a1", "Bound")


async def test_revoking_the_policy_unbinds(kit: Kit) -> None:
    await bound_setup(kit)
    await kit.client.delete(USBPolicy, kit.name("policy"))
    await kit.wait_phase("a1", "NotAllowed")
    await kit.wait_claim("stick", None)
    await kit.wait_event(name="a1", reason="Unbound")


async def test_granting_again_binds_from_the_policy_watch_not_from_a_retry(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.allow(serial="AAA1")
    controller = await kit.start_controller()
    controller.queue.backoff = Backoff(base=3600.0, cap=3600.0)  # a retry would never come
    await kit.attach("a1", vm="vm1", serial="AAA1")
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))
    await kit.client.delete(USBPolicy, kit.name("policy"))
    await kit.wait_phase("a1", "NotAllowed")
    await kit.wait_claim("stick", None)
    await kit.allow(serial="AAA1")  # the admin grants it again
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))
    assert (await claim_of(kit, "stick") or {}).get("attachment") == "a1"


# ---- the VM ----------------------------------------------------------------------------------


async def test_a_missing_vm_waits_with_a_message(kit: Kit) -> None:
    await kit.device("stick", serial="AAA1")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="nope", serial="AAA1")
    refused = await kit.wait_phase("a1", "VMNotReady")
    assert status(refused)["message"] == (
        f"VM {kit.namespace}/nope does not exist: create it, or set spec.vm to a VM in "
        f"namespace {kit.namespace}")
    await kit.vm("nope")
    await kit.wait_phase("a1", "Bound")


async def test_a_vm_without_client_passthrough_gets_the_exact_fix(kit: Kit) -> None:
    await kit.vm("vm2", passthrough=False)
    await kit.device("stick", serial="AAA1")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm2", serial="AAA1")
    refused = await kit.wait_phase("a1", "VMNotReady")
    assert status(refused)["message"] == (
        f"VM {kit.namespace}/vm2 has no spec.template.spec.domain.devices.clientPassthrough: "
        f"add it with `kubectl usb prepare-vm vm2 -n {kit.namespace}` (or patch the VM) and "
        "restart the VM")
    assert conditions(refused)["VMReady"]["reason"] == "NoClientPassthrough"
    assert await claim_of(kit, "stick") is None


async def test_a_stopped_vm_waits_and_binds_when_it_runs(kit: Kit) -> None:
    await kit.vm("vm1", running=False)
    await kit.device("stick", serial="AAA1")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="AAA1")
    refused = await kit.wait_phase("a1", "VMNotReady")
    assert "is not running" in str(status(refused)["message"])
    await kit.start_vmi("vm1")
    await kit.wait_phase("a1", "Bound")


# ---- slots -----------------------------------------------------------------------------------


async def test_a_fifth_attachment_waits_for_a_free_slot(kit: Kit) -> None:
    await kit.vm("vm1")
    for i in range(5):
        await kit.device(f"d{i}", serial=f"S{i}")
    await kit.allow()
    await kit.start_controller()
    for i in range(5):
        await kit.attach(f"a{i}", vm="vm1", serial=f"S{i}")
    for i in range(4):
        await kit.wait_phase(f"a{i}", "Bound")
    waiting = await kit.wait_phase("a4", "NoFreeSlot")
    assert "already uses all 4 USB redirection slots (a0, a1, a2, a3)" in str(
        status(waiting)["message"])
    await kit.client.delete(USBAttachment, "a2", namespace=kit.namespace)
    await kit.wait_phase("a4", "Bound", device=kit.name("d4"))


# ---- racing ----------------------------------------------------------------------------------


async def phases(kit: Kit, names: list[str]) -> dict[str, str]:
    listed = await kit.client.list(USBAttachment, namespace=kit.namespace)
    return {a["metadata"]["name"]: str(status(a).get("phase", "")) for a in listed.items
            if a["metadata"]["name"] in names}


async def test_fifty_attachments_race_for_one_device_and_exactly_one_wins(kit: Kit) -> None:
    for vm in range(5):
        await kit.vm(f"vm{vm}")
    await kit.device("only", serial="ONLY")
    await kit.allow(serial="ONLY")
    # Two controllers at once (as if the election failed): the claim's precondition alone
    # must let exactly one attachment win.
    await kit.start_controller(identity="one")
    await kit.start_controller(identity="two")
    names = [f"race-{i:02d}" for i in range(50)]
    await asyncio.gather(*(kit.attach(n, vm=f"vm{i % 5}", serial="ONLY")
                           for i, n in enumerate(names)))

    async def settled() -> dict[str, str] | None:
        seen = await phases(kit, names)
        done = len(seen) == 50 and all(p in ("Bound", "WaitingForDevice") for p in seen.values())
        return seen if done else None

    seen = await wait_for(settled, what="all 50 attachments decided", timeout=60)
    winners = [n for n, p in seen.items() if p == "Bound"]
    assert len(winners) == 1
    claim = await claim_of(kit, "only")
    assert claim is not None
    assert claim["attachment"] == winners[0]

    await kit.client.delete(USBAttachment, winners[0], namespace=kit.namespace)
    await kit.wait_gone(winners[0])
    rest = [n for n in names if n != winners[0]]

    async def next_winner() -> list[str] | None:
        seen = await phases(kit, rest)
        bound = [n for n, p in seen.items() if p == "Bound"]
        return bound or None

    second = await wait_for(next_winner, what="another attachment bound", timeout=60)
    assert len(second) == 1
    claim = await claim_of(kit, "only")
    assert claim is not None
    assert claim["attachment"] == second[0]
    assert sorted(p for n, p in (await phases(kit, rest)).items() if n != second[0]) == \
        ["WaitingForDevice"] * 48


# ---- deleting --------------------------------------------------------------------------------


async def test_deleting_an_attachment_unbinds_its_device_first(kit: Kit) -> None:
    await bound_setup(kit)
    await kit.client.delete(USBAttachment, "a1", namespace=kit.namespace)
    await kit.wait_gone("a1")
    assert await claim_of(kit, "stick") is None
    event = await kit.wait_event(name="a1", reason="Unbound")
    assert "the USBAttachment is being deleted" in event["message"]
    await kit.wait_event(name=kit.name("stick"), reason="Unbound", namespace="default")


async def test_deleting_the_vm_deletes_its_attachments_and_frees_the_devices(kit: Kit) -> None:
    await bound_setup(kit)
    await kit.client.delete(VirtualMachine, "vm1", namespace=kit.namespace)
    await kit.wait_gone("a1")
    await kit.wait_claim("stick", None)


# ---- rebinding -------------------------------------------------------------------------------


async def test_an_unplugged_device_waits_then_comes_back(kit: Kit) -> None:
    await bound_setup(kit)
    await kit.set_present("stick", False)
    waiting = await kit.wait_phase("a1", "WaitingForDevice")
    assert "is unplugged: waiting for it, or another device matching serial AAA1" in str(
        status(waiting)["message"])
    assert (await claim_of(kit, "stick")) is not None  # kept for it
    await kit.set_present("stick", True)
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))


async def test_an_unplugged_device_is_replaced_by_another_match(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.device("a-first", serial="S1")
    await kit.device("b-second", serial="S2")
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", vendorId="46f4")
    await kit.wait_phase("a1", "Bound", device=kit.name("a-first"))
    await kit.set_present("a-first", False)
    await kit.wait_phase("a1", "Bound", device=kit.name("b-second"))
    await kit.wait_claim("a-first", None)


async def test_a_restarted_vm_gets_its_device_again(kit: Kit) -> None:
    await bound_setup(kit)
    await kit.stop_vmi("vm1")
    stopped = await kit.wait_phase("a1", "VMNotReady")
    assert "stays reserved for it" in str(status(stopped)["message"])
    assert (await claim_of(kit, "stick")) is not None
    vmi = await kit.start_vmi("vm1")
    new_uid = vmi["metadata"]["uid"]

    async def reattached() -> Obj | None:
        obj = await kit.attachment("a1")
        st = status(obj)
        return obj if st.get("phase") == "Bound" and st.get("vmiUID") == new_uid else None

    await wait_for(reattached, what="attachment bound to the new VMI")
    claim = await claim_of(kit, "stick")
    assert claim is not None
    assert claim["vmiUID"] == new_uid
    await kit.wait_event(name="a1", reason="Reattaching")


async def test_an_unreachable_node_marks_its_devices_and_the_claim_moves(kit: Kit) -> None:
    await kit.vm("vm1", node="node2")
    await kit.device("far", serial="S1", node="node1")
    await kit.device("near", serial="S2", node="node2")
    await kit.heartbeat("node1", duration=60)
    await kit.heartbeat("node2", duration=60)
    await kit.allow()
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", vendorId="46f4")
    await kit.wait_phase("a1", "Bound", device=kit.name("near"))
    await kit.heartbeat("node2", duration=1)  # the agent's last renewal, then silence
    await kit.wait_phase("a1", "Bound", device=kit.name("far"), timeout=30)
    near = await kit.wait_claim("near", None)

    async def marked() -> Obj | None:
        obj = await kit.get_device("near")
        found = [c for c in status(obj).get("conditions") or []  # type: ignore[attr-defined]
                 if c["type"] == "Reachable" and c["status"] == "False"]
        return obj if found else None

    await wait_for(marked, what="device near marked unreachable")
    assert near["spec"].get("claimRef") is None
    await kit.wait_event(name=kit.name("near"), reason="NodeUnreachable", namespace="default")


# ---- restarts --------------------------------------------------------------------------------


async def test_a_claim_naming_no_attachment_is_released(kit: Kit) -> None:
    claim = {"namespace": kit.namespace, "attachment": "ghost", "vm": "vm1", "uid": "gone"}
    await kit.device("stick", serial="AAA1", claim=claim)
    await kit.start_controller()
    await kit.wait_claim("stick", None)
    event = await kit.wait_event(name=kit.name("stick"), reason="Unbound", namespace="default")
    assert "its USBAttachment no longer exists" in event["message"]


async def test_a_bind_interrupted_before_its_status_is_finished_on_restart(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.allow()
    created = await kit.attach("a1", vm="vm1", serial="AAA1")
    # The first controller set the claim and died before writing anything else.
    claim = {"namespace": kit.namespace, "attachment": "a1", "vm": "vm1",
             "uid": created["metadata"]["uid"]}
    await kit.device("stick", serial="AAA1", claim=claim)
    await kit.device("other", serial="AAA1", port="1-2")
    await kit.start_controller()
    await kit.wait_phase("a1", "Bound", device=kit.name("stick"))
    assert await claim_of(kit, "other") is None


@pytest.mark.parametrize("spec", [{"vm": "vm1", "device": {"vendorId": "12345"}},
                                  {"vm": "other/vm1"}])
async def test_the_schema_refuses_bad_input(kit: Kit, spec: dict[str, object]) -> None:
    from kubevirt_usb.kube.errors import Invalid

    with pytest.raises(Invalid) as refused:
        await kit.client.create(USBAttachment, {
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"name": "bad", "namespace": kit.namespace}, "spec": spec})
    assert "spec." in refused.value.message


async def test_steady_state_costs_no_writes(kit: Kit) -> None:
    await bound_setup(kit)
    controller = await kit.start_controller(identity="second-look")
    await wait_for(lambda: _idle(controller), what="the second controller idle")
    assert controller.executor.writes == 0


async def _idle(controller: object) -> bool:
    from kubevirt_usb.controller.manager import Controller

    assert isinstance(controller, Controller)
    await asyncio.sleep(0)
    return controller.queue.idle and controller.reconciles >= 2



# ---- two replicas ----------------------------------------------------------------------------


async def test_two_replicas_only_the_leader_acts_and_the_other_takes_over(kit: Kit) -> None:
    from kubevirt_usb.controller.manager import Controller, run_elected

    await kit.vm("vm1")
    await kit.device("d1", serial="S1")
    await kit.device("d2", serial="S2")
    await kit.allow()
    active: set[str] = set()
    most = 0

    def tracker(name: str) -> Callable[[Controller | None], None]:
        def on_term(controller: Controller | None) -> None:
            nonlocal most
            if controller is None:
                active.discard(name)
            else:
                active.add(name)
            most = max(most, len(active))
        return on_term

    tasks = {}
    for name in ("r1", "r2"):
        client = kit.cluster.client(field_manager="kubevirt-usb-controller")
        kit.clients.append(client)
        tasks[name] = asyncio.ensure_future(run_elected(
            client, kit.options(identity=name, release_on_exit=False), on_term=tracker(name)))
    kit.controllers.extend(tasks.values())

    async def leader() -> str | None:
        return next(iter(active)) if len(active) == 1 else None

    first = await wait_for(leader, what="a leader")
    await kit.attach("a1", vm="vm1", serial="S1")
    await kit.wait_phase("a1", "Bound")
    event = await kit.wait_event(name="a1", reason="Bound")
    assert event["reportingInstance"] == first

    tasks[first].cancel()  # the leader dies without releasing its Lease
    other = "r2" if first == "r1" else "r1"

    async def taken_over() -> bool:
        return active == {other}

    await wait_for(taken_over, what="the other replica leads", timeout=30)
    await kit.attach("a2", vm="vm1", serial="S2")
    await kit.wait_phase("a2", "Bound")
    event = await kit.wait_event(name="a2", reason="Bound")
    assert event["reportingInstance"] == other
    assert most == 1


async def test_the_controller_of_a_term_that_ended_is_freed_when_the_next_begins(
        kit: Kit) -> None:
    # Each term of leadership runs a fresh controller; the last one (informers, caches, tasks)
    # is garbage in reference cycles. With a term per API outage, waiting for a full
    # collection let the leader's memory grow (docs/benchmarks.md, "Memory over the run").
    from kubevirt_usb.controller.manager import Controller, run_elected

    await kit.vm("vm1")
    terms: list[weakref.ref[Controller]] = []

    def on_term(controller: Controller | None) -> None:
        if controller is not None:
            terms.append(weakref.ref(controller))

    options = kit.options(identity="r1", release_on_exit=False)
    client = kit.cluster.client(field_manager="kubevirt-usb-controller")
    kit.clients.append(client)
    gc.disable()  # only what the controller itself does frees the last term
    try:
        task = asyncio.ensure_future(run_elected(client, options, on_term=on_term))
        kit.controllers.append(task)

        async def leading() -> bool:
            controller = terms[-1]() if terms else None
            return controller is not None and controller.synced.is_set()

        await wait_for(leading, what="the first term")
        # someone else takes the Lease: the term ends; r1 leads again once it expires
        await kit.client.patch(Lease, options.election_lease, {"spec": {
            "holderIdentity": "intruder", "renewTime": micro_time(utc_now())}},
            namespace=options.namespace)

        async def second_term() -> bool:
            return len(terms) >= 2

        await wait_for(second_term, what="a second term", timeout=30)
        await wait_for(leading, what="the second term synced", timeout=30)
        assert terms[0]() is None, "the first term's controller is still in memory"
    finally:
        gc.enable()


# ---- fuzzed bodies through the API -----------------------------------------------------------
# USBAttachment and USBPolicy bodies drawn by hypothesis (schema edges, huge strings, unicode,
# selectors that match nothing or everything) are sent to the API with the project's CRDs while
# the controller runs. The API refuses what the schema refuses (4xx, never 5xx); the controller
# gives every accepted attachment a status, never stops, and when the objects are deleted nothing
# is left half-done: every attachment goes (its finalizer removed) and every device is free.

_EDGE_TEXT = st.one_of(
    st.sampled_from(["AAA1", "AAA2", "", "*", "46f4", "0001", "node1", "1-1", "vm1", "x" * 256,
                     "x" * 257, "\u202eevil", "Ünïcödé 🔌", "[bold]x[/bold]", "\x1b[31m",
                     "a" * 5000]),
    st.text(max_size=8))
_FITTING = {"name": st.sampled_from(["STICK1", "STICK2"]), "vendorId": st.just("46f4"),
            "productId": st.just("0001"), "serial": st.sampled_from(["AAA1", "AAA2", "AAA3"]),
            "product": st.just("QEMU USB HARDDRIVE"), "node": st.just("node1"),
            "port": st.just("1-1"), "unknown": st.just("x")}
_EDGE_SELECTOR = st.lists(st.sampled_from(sorted(_FITTING)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.one_of(_FITTING[k], _FITTING[k], _FITTING[k], _EDGE_TEXT) for k in keys}))
_EDGE_ATTACHMENT = st.fixed_dictionaries({
    "vm": st.one_of(st.just("vm1"), st.just("vm1"), _EDGE_TEXT), "device": _EDGE_SELECTOR})
_EDGE_POLICY = st.fixed_dictionaries({}, optional={
    "namespaces": st.one_of(st.just(["NS"]), st.just(["NS"]),
                            st.lists(st.one_of(st.just("NS"), _EDGE_TEXT), max_size=2)),
    "devices": _EDGE_SELECTOR,
    "namespaceSelector": st.one_of(st.just({}), st.fixed_dictionaries({"matchLabels": st.just(
        {"kubernetes.io/metadata.name": "nothing"})}))})


async def _create_or_refused(kit: Kit, resource: Any, body: dict[str, Any]) -> Obj | None:
    """The object the API accepted, or None for a refusal a client is told (4xx); a 5xx fails
    the test."""
    try:
        return await kit.client.create(resource, body)
    except Unavailable:
        raise
    except KubeError:
        return None


@pytest.fixture
async def fuzz_kit(kit: Kit) -> Kit:
    await kit.vm("vm1")
    await kit.device("stick1", serial="AAA1")
    await kit.device("stick2", serial="AAA2")
    await kit.start_controller()
    return kit


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attachments=st.lists(_EDGE_ATTACHMENT, min_size=1, max_size=3), policy=_EDGE_POLICY)
async def test_fuzzed_bodies_never_stop_the_controller_or_leave_anything_half_done(
        fuzz_kit: Kit, attachments: list[dict[str, Any]], policy: dict[str, Any]) -> None:
    kit = fuzz_kit
    if policy.get("namespaces"):
        policy["namespaces"] = [kit.namespace if n == "NS" else n for n in policy["namespaces"]]
    for selector in [policy.get("devices") or {}, *(a["device"] for a in attachments)]:
        if selector.get("name") in ("STICK1", "STICK2"):
            selector["name"] = kit.name(selector["name"].lower())
    name = f"{kit.tag}-fuzz-{uuid.uuid4().hex[:6]}"
    created_policy = await _create_or_refused(kit, USBPolicy, {
        "apiVersion": API_VERSION, "kind": "USBPolicy", "metadata": {"name": name},
        "spec": policy})
    accepted: list[str] = []
    for index, spec in enumerate(attachments):
        obj = await _create_or_refused(kit, USBAttachment, {
            "apiVersion": API_VERSION, "kind": "USBAttachment",
            "metadata": {"name": f"fuzz{index}", "namespace": kit.namespace}, "spec": spec})
        if obj is not None:
            accepted.append(obj["metadata"]["name"])
    for attachment in accepted:
        async def decided(attachment: str = attachment) -> Obj | None:
            obj = await kit.attachment(attachment)
            return obj if status(obj).get("observedGeneration") else None
        await wait_for(decided, what=f"a status on attachment {attachment}", timeout=30)
    assert not any(task.done() for task in kit.controllers), "the controller stopped"

    for attachment in accepted:
        await kit.client.delete(USBAttachment, attachment, namespace=kit.namespace)
    if created_policy is not None:
        await kit.client.delete(USBPolicy, name)
    for attachment in accepted:
        await kit.wait_gone(attachment)
    for stick in ("stick1", "stick2"):
        await kit.wait_claim(stick, None)
