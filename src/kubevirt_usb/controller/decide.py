"""The attachment state machine: from what the cluster looks like now (`Situation`) to the writes
that make it right (`Plan`), as a pure function.

For a USBAttachment, in order:

1. gone: release every device still claimed for it; being deleted: release, then drop the
   finalizer. Otherwise make sure it carries the finalizer and an ownerReference to its VM.
2. claims of an older attachment of the same name (another uid) are released.
3. the VM: missing, or without clientPassthrough: no claim (VMNotReady, with the fix). Not
   running: a device it holds stays reserved for it (VMNotReady); nothing new is bound.
4. a device it holds: kept while a policy still grants it; a new VM instance (the VM
   restarted) updates the claim so the agent connects again (Bound). Unplugged, or its node's
   agent unreachable: moved to another free matching device if there is one, else kept and
   WaitingForDevice until it (or another) comes back.
5. no device yet: nothing matches (WaitingForDevice), nothing allowed (NotAllowed with the
   admin command that grants it), nothing free (WaitingForDevice), the VM's four slots taken
   (NoFreeSlot); else bind the best free device (the VM's node first, then by name) with
   `spec.claimRef` under a resourceVersion precondition (Bound).

Steps run in order and stop at the first failure; every step is safe to repeat, so a controller
that dies between steps leaves nothing that the next reconcile does not finish or undo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kubevirt_usb.controller.events import Event, attachment_ref, device_ref
from kubevirt_usb.controller.matching import best, compile_selector, ranked, selector_words
from kubevirt_usb.controller.model import (
    AGENT_PHASES,
    FINALIZER,
    VM,
    VMI,
    Attachment,
    Claim,
    Condition,
    Device,
    Key,
    Policy,
)
from kubevirt_usb.controller.policy import grant_command, grants_namespace
from kubevirt_usb.controller.slots import free_slots, no_free_slot_message
from kubevirt_usb.controller.status import (
    DesiredStatus,
    condition,
    current_condition,
    status_fields,
)
from kubevirt_usb.controller.vmcheck import VMReason, check_vm

# ---- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchMetadata:
    """Set the attachment's finalizers and ownerReferences (if it still has
    `resource_version`)."""

    finalizers: tuple[str, ...]
    owner_references: tuple[Mapping[str, Any], ...] | None = None
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Release:
    """Clear the device's claimRef (if it still has `resource_version`)."""

    device: str
    resource_version: str
    claim: Claim
    events: tuple[Event, ...] = ()
    verify_gone: bool = False
    """Release only once the API confirms the claiming attachment is gone (the cache said so)."""


@dataclass(frozen=True)
class Bind:
    """Set the device's claimRef to `claim` (if it still has `resource_version`)."""

    device: str
    resource_version: str
    claim: Claim
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class ApplyStatus:
    """Apply these status fields (every one the controller owns) to the attachment, if it still
    has the resourceVersion the decision was made from."""

    status: Mapping[str, Any]
    events: tuple[Event, ...] = ()


Step = PatchMetadata | Release | Bind | ApplyStatus


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = ()

    @property
    def binds(self) -> tuple[Bind, ...]:
        return tuple(s for s in self.steps if isinstance(s, Bind))


@dataclass(frozen=True)
class Situation:
    """Everything one attachment's decision depends on, as the controller sees it now."""

    key: Key
    attachment: Attachment | None
    claims: tuple[Device, ...] = ()
    """Devices whose claimRef names this attachment's namespace/name."""
    devices: Sequence[Device] = ()
    policies: Sequence[Policy] = ()
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    vm: VM | None = None
    vmi: VMI | None = None
    unreachable_nodes: frozenset[str] = frozenset()
    slot_holders: frozenset[str] = frozenset()
    """Other attachments of the same VM that hold a device (or are being given one)."""
    reserved: frozenset[str] = frozenset()
    """Devices that other attachments are being given right now."""
    now: str = ""
    preordered: bool = False
    """`devices` come best first (the VM's node, then by name): the first free one wins
    without looking at the rest."""


# ---- the decision ----------------------------------------------------------------------------


def decide(s: Situation) -> Plan:
    a = s.attachment
    if a is None:
        return Plan(tuple(_release(s, d, "its USBAttachment no longer exists", verify_gone=True)
                          for d in s.claims))
    if a.deleting:
        return _deleting(s, a)
    steps: list[Step] = []
    meta = _metadata(a, s.vm)
    if meta is not None:
        steps.append(meta)
    mine = []
    for d in s.claims:
        assert d.claim is not None
        if d.claim.uid and a.uid and d.claim.uid != a.uid:
            steps.append(_release(s, d, "it was claimed by an earlier USBAttachment of that name"))
        elif d.claim.vm != a.vm:
            steps.append(_release(s, d, f"the USBAttachment now names VM {a.namespace}/{a.vm}"))
        else:
            mine.append(d)
    if a.problem is not None:
        steps += [_release(s, d, "the USBAttachment's spec is invalid") for d in mine]
        return _finish(s, a, steps, DesiredStatus(
            phase="Pending", message=f"spec is invalid: {a.problem}",
            conditions=(condition("Bound", False, "InvalidSpec", a.problem),)))
    return Decider(s, a, steps).run(mine)


def _attachment_event(a: Attachment, kind: str, reason: str, message: str) -> Event:
    return Event(about=attachment_ref(a.namespace, a.name, a.uid),
                 type="Warning" if kind == "Warning" else "Normal", reason=reason,
                 message=message)


def _release(s: Situation, d: Device, why: str, *, warning: bool = False,
             verify_gone: bool = False) -> Release:
    assert d.claim is not None
    claim = d.claim
    events = [Event(about=device_ref(d.name, d.uid), type="Warning" if warning else "Normal",
                    reason="Unbound",
                    message=f"Released from VM {claim.namespace}/{claim.vm} (USBAttachment "
                    f"{claim.namespace}/{claim.attachment}): {why}")]
    a = s.attachment
    if a is not None:
        events.append(_attachment_event(
            a, "Warning" if warning else "Normal", "Unbound",
            f"Unbound USBDevice {d.describe()} from VM {claim.namespace}/{claim.vm}: {why}"))
    return Release(device=d.name, resource_version=d.resource_version, claim=claim,
                   events=tuple(events), verify_gone=verify_gone)


def _deleting(s: Situation, a: Attachment) -> Plan:
    steps: list[Step] = [_release(s, d, "the USBAttachment is being deleted") for d in s.claims]
    if FINALIZER in a.finalizers:
        steps.append(PatchMetadata(finalizers=tuple(f for f in a.finalizers if f != FINALIZER)))
    return Plan(tuple(steps))


def _metadata(a: Attachment, vm: VM | None) -> PatchMetadata | None:
    finalizers = a.finalizers if FINALIZER in a.finalizers else (*a.finalizers, FINALIZER)
    owners = None
    if vm is not None and vm.uid and not vm.deleting and not any(
            o.kind == "VirtualMachine" and o.uid == vm.uid for o in a.owners):
        ours = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": vm.name,
                "uid": vm.uid}
        owners = (*a.owner_refs, ours)
    if finalizers == a.finalizers and owners is None:
        return None
    return PatchMetadata(finalizers=finalizers, owner_references=owners)


def _finish(s: Situation, a: Attachment, steps: list[Step], desired: DesiredStatus,
            events: Sequence[Event] = ()) -> Plan:
    fields = status_fields(a, desired, now=s.now)
    if fields is not None:
        steps.append(ApplyStatus(status=fields, events=tuple(events)))
    return Plan(tuple(steps))


class Decider:
    """The decision for one attachment that exists and is not being deleted."""

    def __init__(self, s: Situation, a: Attachment, steps: list[Step]) -> None:
        self.s = s
        self.a = a
        self.steps = steps
        self.vm_state = check_vm(a.namespace, a.vm, vm=s.vm, vmi=s.vmi)
        self.words = selector_words(a.selector)
        self.policies = [(p.name, compile_selector(p.devices)) for p in s.policies
                         if grants_namespace(p, a.namespace, s.namespace_labels)]
        self._grants: dict[str, list[str]] = {}

    # -- helpers --

    @cached_property
    def matching(self) -> list[Device]:
        """The devices the selector names (only scanned when a device must be chosen)."""
        wanted = compile_selector(self.a.selector)
        return [d for d in self.s.devices if d.published and not d.deleting and wanted(d)]

    def grants(self, d: Device) -> list[str]:
        """The policies that grant this namespace `d` (names, sorted)."""
        found = self._grants.get(d.name)
        if found is None:
            found = self._grants[d.name] = sorted(n for n, fits in self.policies if fits(d))
        return found

    def usable(self, d: Device) -> bool:
        return d.present and d.node not in self.s.unreachable_nodes

    def free(self, d: Device) -> bool:
        return (d.claim is None and d.name not in self.s.reserved and self.usable(d)
                and bool(self.grants(d)))

    def conditions(self, bound: Condition, *, allowed: Condition | None = None
                   ) -> tuple[Condition, ...]:
        vm = self.vm_state
        vm_ready = condition("VMReady", vm.ready, vm.reason.value, vm.message)
        return (bound, allowed or self.allowed_condition(), vm_ready)

    def allowed_condition(self, device: Device | None = None) -> Condition:
        if device is not None:
            names = self.grants(device)
            return condition("Allowed", bool(names), "PolicyGrants" if names else "NoPolicy",
                             f"allowed by USBPolicy {', '.join(names)}" if names else
                             f"no USBPolicy grants namespace {self.a.namespace} this device")
        if not self.matching:
            return condition("Allowed", None, "NoMatchingDevice", "no device to check yet")
        granted = sorted({n for d in self.matching for n in self.grants(d)})
        if granted:
            return condition("Allowed", True, "PolicyGrants",
                             f"allowed by USBPolicy {', '.join(granted)}")
        return condition("Allowed", False, "NoPolicy",
                         f"no USBPolicy grants namespace {self.a.namespace} {self.words}")

    def agent_reports(self, d: Device) -> bool:
        """Whether the phase is the agent's report on this binding (and the agent is alive to
        keep it current): the controller then leaves phase and message to it."""
        st = self.a.status
        return (st.phase in AGENT_PHASES and st.device == d.name
                and d.node not in self.s.unreachable_nodes)

    def waiting(self, phase: str, reason: str, message: str, *, kind: str = "Warning",
                keep: Device | None = None) -> Plan:
        bound = condition("Bound", False, reason, message)
        own_phase = keep is None or not self.agent_reports(keep)
        desired = DesiredStatus(
            phase=phase if own_phase else None, message=message,
            device=keep.name if keep else None, node=keep.node if keep else None,
            vmi_uid=self.vm_state.vmi_uid,
            conditions=self.conditions(bound, allowed=self.allowed_condition(keep)
                                       if keep else None))
        held = current_condition(self.a, "Bound")
        news = held is None or (held.reason, held.message) != (reason, message)
        events = [_attachment_event(self.a, kind, phase, message)] if news else []
        return _finish(self.s, self.a, self.steps, desired, events)

    def bound(self, d: Device, *, phase: str | None, events: Sequence[Event] = ()) -> Plan:
        message = f"bound to USBDevice {d.describe()}"
        desired = DesiredStatus(
            phase=phase, message=message, device=d.name, node=d.node,
            vmi_uid=self.vm_state.vmi_uid,
            conditions=self.conditions(condition("Bound", True, "Bound", message),
                                       allowed=self.allowed_condition(d)))
        return _finish(self.s, self.a, self.steps, desired, events)

    def claim(self) -> Claim:
        return Claim(namespace=self.a.namespace, attachment=self.a.name, vm=self.a.vm,
                     uid=self.a.uid or None, vmi_uid=self.vm_state.vmi_uid)

    def bind(self, d: Device, *, why: str = "") -> Bind:
        what = f"Bound USBDevice {d.describe()} to VM {self.a.namespace}/{self.a.vm}"
        events = (
            _attachment_event(self.a, "Normal", "Bound", what + (f" ({why})" if why else "")),
            Event(about=device_ref(d.name, d.uid), type="Normal", reason="Bound",
                  message=f"Bound to VM {self.a.namespace}/{self.a.vm} (USBAttachment "
                  f"{self.a.namespace}/{self.a.name})"),
        )
        return Bind(device=d.name, resource_version=d.resource_version, claim=self.claim(),
                    events=events)

    def best_free(self) -> Device | None:
        if self.s.preordered:
            wanted = compile_selector(self.a.selector)
            return next((d for d in self.s.devices if d.claim is None and d.published
                         and not d.deleting and wanted(d) and self.free(d)), None)
        return best((d for d in self.matching if self.free(d)),
                    preferred_node=self.vm_state.node)

    # -- the decision --

    def run(self, mine: list[Device]) -> Plan:
        keep = self.keep(mine)
        if keep is not None:
            return self.holding(keep)
        if not self.vm_state.ready:
            return self.waiting("VMNotReady", self.vm_state.reason.value, self.vm_state.message)
        return self.binding()

    def keep(self, mine: list[Device]) -> Device | None:
        """The one held device to keep (others are released), or None."""
        order = sorted(mine, key=lambda d: (not self.usable(d), d.name))
        for extra in order[1:]:
            self.steps.append(_release(self.s, extra, "the USBAttachment holds another device"))
        if not order:
            return None
        held = order[0]
        if self.vm_state.reason in (VMReason.NOT_FOUND, VMReason.NO_CLIENT_PASSTHROUGH,
                                    VMReason.RESTART_REQUIRED):
            self.steps.append(_release(self.s, held, self.vm_state.message))
            return None
        if not self.grants(held):
            self.steps.append(_release(
                self.s, held, f"no USBPolicy grants namespace {self.a.namespace} this device "
                "any more", warning=True))
            return None
        return held

    def holding(self, d: Device) -> Plan:
        assert d.claim is not None
        if not self.usable(d):
            return self.replace(d)
        if not self.vm_state.ready:
            message = (f"{self.vm_state.message}; USBDevice {d.name} stays reserved for it")
            return self.waiting("VMNotReady", self.vm_state.reason.value, message, keep=d)
        vmi_uid = self.vm_state.vmi_uid
        if d.claim.vmi_uid != vmi_uid or d.claim.uid != (self.a.uid or None):
            restarted = d.claim.vmi_uid is not None
            events = [_attachment_event(
                self.a, "Normal", "Reattaching",
                f"VM {self.a.namespace}/{self.a.vm} restarted (instance {vmi_uid}): attaching "
                f"USBDevice {d.describe()} again")] if restarted else []
            self.steps.append(Bind(device=d.name, resource_version=d.resource_version,
                                   claim=self.claim(), events=tuple(events)))
            return self.bound(d, phase="Bound")
        keep_agent_phase = self.agent_reports(d) and self.a.status.vmi_uid == vmi_uid
        return self.bound(d, phase=None if keep_agent_phase else "Bound")

    def replace(self, d: Device) -> Plan:
        """The held device is unplugged or unreachable: another one, or wait for it."""
        why = (f"USBDevice {d.describe()} is unplugged" if not d.present else
               f"USBDevice {d.describe()} is on {d.node}, whose agent stopped renewing its "
               "heartbeat")
        new = self.best_free()
        if new is not None:  # a move keeps the slot it holds
            self.steps.append(_release(self.s, d, why.replace(f"USBDevice {d.describe()}", "it")
                                       + f"; moving to {new.name}"))
            self.steps.append(self.bind(new, why=f"{d.name} is unavailable"))
            return self.bound(new, phase="Bound")
        return self.waiting("WaitingForDevice", "DeviceUnavailable",
                            f"{why}: waiting for it, or another device matching {self.words}, "
                            "to be plugged in", kind="Normal", keep=d)

    def binding(self) -> Plan:
        a = self.a
        chosen = self.best_free()
        if chosen is None:
            if not self.matching:
                return self.waiting("WaitingForDevice", "NoMatchingDevice",
                                    f"no USBDevice matches {self.words}: waiting for one to "
                                    "be plugged in", kind="Normal")
            allowed = [d for d in self.matching if self.grants(d)]
            if not allowed:
                ranked_all = ranked(self.matching, preferred_node=self.vm_state.node)
                what = ranked_all[0].describe() if len(ranked_all) == 1 else \
                    f"the {len(ranked_all)} devices matching {self.words}"
                command = grant_command(a.namespace, a.selector, ranked_all)
                return self.waiting("NotAllowed", "NoPolicy",
                                    f"no USBPolicy allows namespace {a.namespace} to use "
                                    f"{what}: a cluster admin can allow it with `{command}`")
            return self.waiting("WaitingForDevice", "NoFreeDevice", self.busy(allowed),
                                kind="Normal")
        if free_slots(self.s.slot_holders) == 0:
            message = no_free_slot_message(a.namespace, a.vm, self.s.slot_holders)
            return self.waiting("NoFreeSlot", "NoFreeSlot", message)
        self.steps.append(self.bind(chosen))
        return self.bound(chosen, phase="Bound")

    def busy(self, allowed: list[Device]) -> str:
        in_use = sum(1 for d in allowed if d.claim is not None or d.name in self.s.reserved)
        unplugged = sum(1 for d in allowed if not d.present and d.claim is None)
        away = sum(1 for d in allowed
                   if d.present and d.claim is None and d.node in self.s.unreachable_nodes)
        parts = [f"{n} {label}" for n, label in ((in_use, "in use"), (unplugged, "unplugged"),
                                                  (away, "on nodes whose agent is unreachable"))
                 if n]
        count = "1 device matches" if len(allowed) == 1 else f"{len(allowed)} devices match"
        return (f"{count} {self.words} but none is free ({', '.join(parts)}): waiting for one "
                "to be released or plugged in")
