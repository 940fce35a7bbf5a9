"""Whether an attachment's VM can take a USB device now, and if not, the exact fix.

A device can be redirected into a VM when the VM exists, its VirtualMachineInstance is Running,
and that instance has `spec.domain.devices.clientPassthrough` (KubeVirt's four usbredir slots).
The template having it is not enough: an instance started before it was added has no slots
until the VM restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubevirt_usb.controller.model import VM, VMI


class VMReason(StrEnum):
    RUNNING = "Running"
    NOT_FOUND = "VMNotFound"
    NO_CLIENT_PASSTHROUGH = "NoClientPassthrough"
    RESTART_REQUIRED = "RestartRequired"
    NOT_RUNNING = "VMNotRunning"


@dataclass(frozen=True)
class VMState:
    """The verdict on a VM: `ready`, why (`reason`), and a message that says what to do."""

    reason: VMReason
    message: str
    vmi_uid: str | None = None
    node: str | None = None

    @property
    def ready(self) -> bool:
        return self.reason is VMReason.RUNNING


def check_vm(namespace: str, name: str, *, vm: VM | None, vmi: VMI | None) -> VMState:
    ref = f"VM {namespace}/{name}"
    if vm is None or vm.deleting:
        return VMState(VMReason.NOT_FOUND,
                       f"{ref} does not exist: create it, or set spec.vm to a VM in namespace "
                       f"{namespace}")
    running = vmi is not None and vmi.running
    if running and vmi is not None and vmi.client_passthrough:
        return VMState(VMReason.RUNNING, f"{ref} is running on {vmi.node or 'a node'}",
                       vmi_uid=vmi.uid, node=vmi.node)
    if not vm.client_passthrough:
        return VMState(VMReason.NO_CLIENT_PASSTHROUGH,
                       f"{ref} has no spec.template.spec.domain.devices.clientPassthrough: add it "
                       f"with `kubectl usb prepare-vm {name} -n {namespace}` (or patch the VM) "
                       "and restart the VM")
    if running:
        return VMState(VMReason.RESTART_REQUIRED,
                       f"{ref} has clientPassthrough, but its running instance was started "
                       f"without it: restart the VM (`virtctl restart {name} -n {namespace}`)")
    state = "has no VirtualMachineInstance" if vmi is None or vmi.deleting else \
        f"has a VirtualMachineInstance in phase {vmi.phase}"
    return VMState(VMReason.NOT_RUNNING,
                   f"{ref} is not running ({state}): start it with "
                   f"`virtctl start {name} -n {namespace}`; the device is attached once it runs")
