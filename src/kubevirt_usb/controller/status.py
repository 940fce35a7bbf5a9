"""The part of a USBAttachment's status the controller owns, and whether it must be written.

The controller applies (server-side apply, field manager `kubevirt-usb-controller`) `phase`
(Pending, WaitingForDevice, NotAllowed, VMNotReady, NoFreeSlot, Bound), `message`, `device`,
`node`, `vmiUID`, its conditions `Bound`, `Allowed` and `VMReady`, and `observedGeneration`.
Conditions are a map keyed by type, so the node agent's own (`Connected`) stay untouched.

While a binding stands and the node agent reports on it (phase Connecting, Attached or Failed),
the phase and message are the agent's: the controller leaves them out (`phase=None`) and says
what it knows in its conditions. A field the controller leaves out of an apply that it wrote
before is removed (a released device's `device` and `node`). A condition keeps its
`lastTransitionTime` until its status changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.controller.model import Attachment, Condition

OWN_CONDITIONS = ("Bound", "Allowed", "VMReady")


@dataclass(frozen=True)
class DesiredStatus:
    """What the controller wants its status fields to say (`phase` None: the agent's phase and
    message stay)."""

    phase: str | None
    message: str
    device: str | None = None
    node: str | None = None
    vmi_uid: str | None = None
    conditions: tuple[Condition, ...] = ()


def condition(kind: str, ok: bool | None, reason: str, message: str) -> Condition:
    status = "Unknown" if ok is None else "True" if ok else "False"
    return Condition(type=kind, status=status, reason=reason, message=message)


def _stamped(wanted: Sequence[Condition], current: Sequence[Condition],
             now: str) -> tuple[Condition, ...]:
    held = {c.type: c for c in current}
    out = []
    for c in wanted:
        old = held.get(c.type)
        since = old.last_transition_time if old is not None and old.status == c.status else None
        out.append(Condition(type=c.type, status=c.status, reason=c.reason, message=c.message,
                             last_transition_time=since or now))
    return tuple(out)


def _same_conditions(a: Sequence[Condition], b: Sequence[Condition]) -> bool:
    mine = {c.type: c for c in a}
    theirs = {c.type: c for c in b if c.type in mine}
    return len(theirs) == len(mine) and all(mine[t].same(theirs[t]) for t in mine)


def current_condition(attachment: Attachment, kind: str) -> Condition | None:
    return next((c for c in attachment.status.conditions if c.type == kind), None)


def status_fields(attachment: Attachment, desired: DesiredStatus, *,
                  now: str) -> dict[str, Any] | None:
    """Every status field the controller applies so that status says `desired`, or None when
    it already does."""
    current = attachment.status
    unchanged = (
        (desired.phase is None or (desired.phase, desired.message) == (current.phase,
                                                                       current.message))
        and desired.device == current.device
        and desired.node == current.node
        and desired.vmi_uid == current.vmi_uid
        and _same_conditions(desired.conditions, current.conditions)
        and current.observed_generation == attachment.generation)
    if unchanged:
        return None
    conditions = _stamped(desired.conditions, current.conditions, now)
    fields: dict[str, Any] = {
        "observedGeneration": attachment.generation,
        "conditions": [c.to_dict(generation=attachment.generation) for c in conditions],
    }
    if desired.phase is not None:
        fields["phase"] = desired.phase
        fields["message"] = desired.message
    for key, value in (("device", desired.device), ("node", desired.node),
                       ("vmiUID", desired.vmi_uid)):
        if value is not None:
            fields[key] = value
    return fields
