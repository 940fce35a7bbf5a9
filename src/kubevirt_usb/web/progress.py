"""How far an attach or a detach the user started has come, from the attachment as the API shows
it now (pure). A progress panel keeps asking until `settled`: the VM has the device, the device is
gone from it, or the refusal text says why not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.printable import printable
from kubevirt_usb.web.views import PHASE_TONE

STEPS = ("Requested", "Bound", "Connecting", "Attached")
_STEP_OF_PHASE = {"Pending": 0, "Bound": 1, "Connecting": 2, "Attached": 3}
_WAITING = {  # phases that stop the panel: nothing will change until something else does
    "WaitingForDevice": "No matching device is plugged in; it attaches when one is.",
    "NotAllowed": "No USBPolicy lets this namespace use that device.",
    "VMNotReady": "The VM is not running (or has no USB client passthrough).",
    "NoFreeSlot": "All four usbredir slots of the VM are in use.",
    "Failed": "The attachment failed.",
}


@dataclass(frozen=True)
class Progress:
    """What an action's panel says now."""

    title: str
    text: str
    tone: str  # a PatternFly alert variant: info, success, warning, danger
    step: int  # 0..3 along STEPS; -1 when the steps do not apply
    settled: bool


def attach_progress(attachment: Mapping[str, Any] | None, *, vm: str, device: str) -> Progress:
    """Progress of an attach, from the USBAttachment (None: it was deleted meanwhile)."""
    if attachment is None:
        return Progress(title=f"Not attached to {vm}", text="The attachment was deleted.",
                        tone="warning", step=-1, settled=True)
    status = attachment.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    message = printable(status.get("message"), limit=512)
    if (attachment.get("metadata") or {}).get("deletionTimestamp"):
        return Progress(title="Detaching", text="The attachment is being deleted.",
                        tone="info", step=-1, settled=True)
    if phase == "Attached":
        bound = printable(status.get("device")) or device
        return Progress(title=f"Attached to {vm}",
                        text=f"{bound} is in {vm}.",
                        tone="success", step=3, settled=True)
    if phase in _WAITING:
        reason = message or printable(status.get("lastError"), limit=512) or _WAITING[phase]
        tone = "danger" if PHASE_TONE.get(phase) == "red" else "warning"
        return Progress(title=f"{phase}: not attached yet" if phase != "Failed" else "Failed",
                        text=reason, tone=tone, step=-1, settled=True)
    step = _STEP_OF_PHASE.get(phase, 0)
    default = {0: "Waiting for the controller to bind a device.",
               1: f"Bound to {printable(status.get('device'))} on "
                  f"{printable(status.get('node'))}; waiting for its node's agent.",
               2: "The node's agent is connecting the device to the VM's usbredir slot."}
    return Progress(title=f"Attaching {device} to {vm}", text=message or default[step],
                    tone="info", step=step, settled=False)


def detach_progress(attachment: Mapping[str, Any] | None, *, vm: str) -> Progress:
    """Progress of a detach, from the USBAttachment (None: it is gone, the VM let go)."""
    if attachment is None:
        return Progress(title=f"Detached from {vm}",
                        text="The device was released and is free again.",
                        tone="success", step=-1, settled=True)
    status = attachment.get("status") or {}
    phase = printable(status.get("phase") or "Pending", limit=32)
    return Progress(title=f"Detaching from {vm}",
                    text=f"Waiting for the device to be released (now {phase}).",
                    tone="info", step=-1, settled=False)
