"""`attach`: create a USBAttachment, find the one that already does the job, or refuse because
someone else holds the device, decided from the device and the namespace's attachments.

A device held by another VM (its `spec.claimRef`, written by the controller) or requested by
another attachment of the namespace is refused up front, naming the holder, instead of leaving
an attachment that can never bind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, name, spec, status
from kubevirt_usb.kubectl_usb.selection import (
    Selector,
    attachment_name,
    claim_of,
    describe_device,
    held_elsewhere,
    selected_device_name,
)
from kubevirt_usb.models import API_VERSION

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-usb"}


@dataclass(frozen=True)
class Create:
    """Create this attachment."""

    attachment: dict[str, Any]


@dataclass(frozen=True)
class Already:
    """This attachment already attaches the device to the VM."""

    attachment: Obj


AttachPlan = Create | Already


def _targets(attachment: Obj, *, device: Obj | None, selector: Selector) -> bool:
    if device is not None:
        return selected_device_name(attachment) == name(device)
    return Selector.from_spec(spec(attachment).get("device")) == selector


def plan_attach(*, vm: str, namespace: str, device: Obj | None, selector: Selector,
                attachments: Sequence[Obj], attachment: str | None = None) -> AttachPlan:
    """What `attach` does; `device` None means no device matches yet (attach on plug)."""
    if device is not None:
        claim = claim_of(device)
        if claim is not None and (claim.namespace, claim.vm) != (namespace, vm):
            raise held_elsewhere(device, claim)
    for other in attachments:
        if not _targets(other, device=device, selector=selector):
            continue
        if spec(other).get("vm") == vm:
            return Already(other)
        what = describe_device(device) if device is not None else selector.words()
        phase = status(other).get("phase") or "Pending"
        raise CLIError(f"{what} is already requested for VM {namespace}/{spec(other).get('vm')}"
                       f" by attachment {namespace}/{name(other)} ({phase}); detach it first: "
                       f"kubectl usb detach -n {namespace} {name(other)}", code=ExitCode.REFUSED)
    new_name = attachment or attachment_name(
        vm, device=name(device) if device is not None else None, selector=selector)
    if any(name(a) == new_name for a in attachments):
        raise CLIError(f"attachment {namespace}/{new_name} already exists for another device: "
                       "choose another name with --name", code=ExitCode.REFUSED)
    wanted = {"name": name(device)} if device is not None else selector.to_spec()
    return Create({
        "apiVersion": API_VERSION, "kind": "USBAttachment",
        "metadata": {"name": new_name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {"vm": vm, "device": wanted},
    })


def describe_attach(plan: AttachPlan, *, vm: str, namespace: str, device: Obj | None,
                    selector: Selector) -> str:
    """What `attach` did, in one line."""
    if isinstance(plan, Already):
        phase = status(plan.attachment).get("phase") or "Pending"
        what = describe_device(device) if device is not None else selector.words()
        return (f"usbattachment/{name(plan.attachment)} unchanged: {what} is already being "
                f"attached to VM {namespace}/{vm} ({phase})")
    created = name(plan.attachment)
    if device is None:
        return (f"usbattachment/{created} created: a device matching {selector.words()} will be "
                f"attached to VM {namespace}/{vm} when it is plugged in")
    return f"usbattachment/{created} created: attaching {describe_device(device)} to VM " \
           f"{namespace}/{vm}"
