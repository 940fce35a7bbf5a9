"""`detach`: which USBAttachments to delete for "detach NAME" (an attachment, or every
attachment of a VM) or "detach --serial S" (whatever holds that device), decided from what
exists. Nothing to delete is not an error; a name that is neither is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, name, namespace, spec
from kubevirt_usb.kubectl_usb.selection import claim_of, describe_device, selected_device_name

Key = tuple[str, str]  # namespace, attachment name


@dataclass(frozen=True)
class DetachPlan:
    """Delete `delete`; when it is empty, `nothing` says why that is fine."""

    delete: list[Key] = field(default_factory=list)
    nothing: str = ""


def plan_detach_name(target: str, *, namespace_: str, attachments: Sequence[Obj],
                     vm_exists: bool) -> DetachPlan:
    """`detach NAME`: the attachment called NAME, else every attachment of VM NAME."""
    if any(name(a) == target for a in attachments):
        return DetachPlan([(namespace_, target)])
    of_vm = sorted(name(a) for a in attachments if spec(a).get("vm") == target)
    if of_vm:
        return DetachPlan([(namespace_, n) for n in of_vm])
    if vm_exists:
        return DetachPlan(nothing=f"VM {namespace_}/{target} has no USB devices attached")
    raise CLIError(f'no USB attachment or VM named "{target}" in namespace "{namespace_}" '
                   "(see: kubectl usb status)", code=ExitCode.NOT_FOUND)


def plan_detach_device(device: Obj, *, attachments: Sequence[Obj]) -> DetachPlan:
    """`detach --serial S`: the attachment holding the device, and any of the namespace's
    attachments still waiting for it."""
    keys: list[Key] = []
    claim = claim_of(device)
    if claim is not None:
        keys.append((claim.namespace, claim.attachment))
    for attachment in attachments:
        key = (namespace(attachment), name(attachment))
        if selected_device_name(attachment) == name(device) and key not in keys:
            keys.append(key)
    if keys:
        return DetachPlan(keys)
    return DetachPlan(nothing=f"{describe_device(device)} is not attached to any VM")


def describe_deleted(key: Key, attachment: Obj | None, *, device: str | None = None) -> str:
    """`usbattachment/vm1-46f4-0001-aaa1 deleted: VM default/vm1 lets go of 46f4-0001-aaa1`."""
    ns, attachment_name = key
    vm = spec(attachment).get("vm") if attachment is not None else None
    what = device or (selected_device_name(attachment) if attachment is not None else None)
    detail = f": VM {ns}/{vm} lets go of {what or 'its device'}" if vm else ""
    return f"usbattachment/{attachment_name} deleted{detail}"
