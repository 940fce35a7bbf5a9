"""What the agent says about a stream in its USBAttachment's status: plain values in, the status
fields out.

The agent owns `phase` (Connecting, Attached, Failed), `message`, the `Connected` condition,
`bytesToVM`, `bytesFromVM`, `reconnects`, `lastError`, `attachedSince` and the path the stream
takes (`path`: Local or API, `pathReason`, `pathMessage`; `slot` and `slotKind` Direct for a slot
the agent took itself on the local path, VirtHandler on the API path), and writes them with
server-side apply (field manager `kubevirt-usb-agent`, forced) while the device's claimRef names
the attachment. A field it leaves out of an apply is removed, so `lastError` and `attachedSince`
disappear when they no longer hold. When the binding ends (detach, policy revoked, VM gone, device
gone, binding moved), one last apply (`released_object`) records the end: `Connected` False with
reason `Released`, and what is history (`bytesToVM`, `bytesFromVM`, `reconnects`, `lastError`)
stays; what only a running stream holds (`path`, `pathReason`, `pathMessage`, `slot`, `slotKind`,
`attachedSince`) and the agent's `phase` and `message` (the controller's again) are left out, so
they are removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubevirt_usb import models
from kubevirt_usb.redirect.outcome import Decision, Outcome, Phase, last_error
from kubevirt_usb.redirect.pathchoice import API, Choice, Local, PathReason, SlotKind

CONDITION = "Connected"
FIELD_MANAGER = "kubevirt-usb-agent"


@dataclass(frozen=True, kw_only=True)
class StreamStatus:
    """One attachment's stream as users see it."""

    phase: Phase = "Connecting"
    reason: str = "Connecting"
    message: str = ""
    transition_time: str = ""
    """When the Connected condition last changed between True and False."""
    attached_since: str | None = None
    last_error: str | None = None
    bytes_to_vm: int = 0
    bytes_from_vm: int = 0
    reconnects: int = 0
    path: str | None = None
    path_reason: str | None = None
    path_message: str | None = None
    slot: int | None = None
    slot_kind: str | None = None

    @property
    def connected(self) -> bool:
        return self.phase == "Attached"


def seeded(existing: Mapping[str, Any] | None, *, now: str) -> StreamStatus:
    """A fresh stream's status, continuing the counters the attachment already shows."""
    existing = existing or {}

    def count(key: str) -> int:
        value = existing.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    return StreamStatus(transition_time=now, bytes_to_vm=count("bytesToVM"),
                        bytes_from_vm=count("bytesFromVM"), reconnects=count("reconnects"))


def _moved(status: StreamStatus, *, connected: bool, now: str) -> str:
    return now if connected != status.connected else status.transition_time


def connecting(status: StreamStatus, *, message: str, now: str) -> StreamStatus:
    """An attempt is under way."""
    return dataclasses.replace(status, phase="Connecting", reason="Connecting", message=message,
                               attached_since=None,
                               transition_time=_moved(status, connected=False, now=now))


def attached(status: StreamStatus, *, message: str, now: str, reconnect: bool) -> StreamStatus:
    """The VM has the device; `reconnect` when it had it before in this binding."""
    return dataclasses.replace(status, phase="Attached", reason="Attached", message=message,
                               attached_since=now,
                               transition_time=_moved(status, connected=True, now=now),
                               reconnects=status.reconnects + (1 if reconnect else 0))


def ended(status: StreamStatus, *, decision: Decision, outcome: Outcome,
          now: str) -> StreamStatus:
    """An attempt ended (or failed) as `outcome` says; `decision` is what users read."""
    return dataclasses.replace(status, phase=decision.phase, reason=decision.reason.value,
                               message=decision.message, attached_since=None,
                               last_error=last_error(outcome),
                               transition_time=_moved(status, connected=False, now=now))


def path_chosen(status: StreamStatus, choice: Choice) -> StreamStatus:
    """The path the attempt under way takes, and why; the slot when the agent took it itself
    (virt-handler does not say which slot it handed out)."""
    if isinstance(choice, Local):
        return dataclasses.replace(status, path=choice.kind.value, path_reason=choice.reason.value,
                                   path_message=choice.message, slot=choice.slot,
                                   slot_kind=SlotKind.DIRECT.value)
    api: API = choice
    waiting = api.reason is PathReason.NO_FREE_SLOT
    return dataclasses.replace(status, path=api.kind.value, path_reason=api.reason.value,
                               path_message=api.message, slot=None,
                               slot_kind=None if waiting else SlotKind.VIRT_HANDLER.value)


def counted(status: StreamStatus, *, to_vm: int, from_vm: int) -> StreamStatus:
    """Totals after more bytes flowed (`to_vm`/`from_vm` are additions)."""
    return dataclasses.replace(status, bytes_to_vm=status.bytes_to_vm + to_vm,
                               bytes_from_vm=status.bytes_from_vm + from_vm)


def _condition(*, connected: bool, reason: str, message: str, since: str) -> dict[str, Any]:
    return {"type": CONDITION, "status": "True" if connected else "False", "reason": reason,
            "message": message, "lastTransitionTime": since}


def _history(status: StreamStatus) -> dict[str, Any]:
    """What the binding's streams did, kept after they end: byte totals, reconnects, last error."""
    fields: dict[str, Any] = {"bytesToVM": status.bytes_to_vm,
                              "bytesFromVM": status.bytes_from_vm,
                              "reconnects": status.reconnects}
    if status.last_error:
        fields["lastError"] = status.last_error
    return fields


def status_fields(status: StreamStatus) -> dict[str, Any]:
    """The status fields the agent owns, as they are applied."""
    fields: dict[str, Any] = {
        "phase": status.phase,
        "message": status.message,
        "conditions": [_condition(connected=status.connected, reason=status.reason,
                                  message=status.message, since=status.transition_time)],
        **_history(status),
    }
    if status.attached_since:
        fields["attachedSince"] = status.attached_since
    optional = {"path": status.path, "pathReason": status.path_reason,
                "pathMessage": status.path_message, "slot": status.slot,
                "slotKind": status.slot_kind}
    fields.update({k: v for k, v in optional.items() if v is not None})
    return fields


RELEASED = "Released"


def released_fields(status: StreamStatus, *, now: str) -> dict[str, Any]:
    """The status fields the agent applies when the binding ended: the end and the history, none
    of what only a running stream holds."""
    message = "The stream ended: the attachment no longer holds the device."
    return {"conditions": [_condition(connected=False, reason=RELEASED, message=message,
                                      since=_moved(status, connected=False, now=now))],
            **_history(status)}


def released_object(*, namespace: str, name: str, status: StreamStatus,
                    now: str) -> dict[str, Any]:
    """The server-side apply body that records the end of the binding's stream."""
    return {"apiVersion": models.API_VERSION, "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": namespace},
            "status": released_fields(status, now=now)}


def apply_object(*, namespace: str, name: str, status: StreamStatus) -> dict[str, Any]:
    """The server-side apply body for the attachment's status subresource."""
    return {"apiVersion": models.API_VERSION, "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": namespace},
            "status": status_fields(status)}


def only_counters_changed(before: StreamStatus, after: StreamStatus) -> bool:
    """True when nothing but the byte counters differ (such writes are rate-limited)."""
    return dataclasses.replace(after, bytes_to_vm=before.bytes_to_vm,
                               bytes_from_vm=before.bytes_from_vm) == before
