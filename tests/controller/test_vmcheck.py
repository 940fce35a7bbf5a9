"""Whether the VM can take a device now, and the fix when it cannot."""

from __future__ import annotations

from kubevirt_usb.controller.model import VM, VMI
from kubevirt_usb.controller.vmcheck import VMReason, check_vm

VM_OK = VM(namespace="ns", name="vm1", uid="u", client_passthrough=True)
VM_BARE = VM(namespace="ns", name="vm1", uid="u", client_passthrough=False)


def vmi(*, phase: str = "Running", passthrough: bool = True) -> VMI:
    return VMI(namespace="ns", name="vm1", uid="i", phase=phase, node="n1",
               client_passthrough=passthrough)


def test_running_with_client_passthrough_is_ready() -> None:
    state = check_vm("ns", "vm1", vm=VM_OK, vmi=vmi())
    assert state.ready
    assert (state.vmi_uid, state.node) == ("i", "n1")


def test_each_problem_and_its_fix() -> None:
    missing = check_vm("ns", "vm1", vm=None, vmi=None)
    assert missing.reason is VMReason.NOT_FOUND
    bare = check_vm("ns", "vm1", vm=VM_BARE, vmi=None)
    assert bare.reason is VMReason.NO_CLIENT_PASSTHROUGH
    assert bare.message == ("VM ns/vm1 has no spec.template.spec.domain.devices.clientPassthrough:"
                            " add it with `kubectl usb prepare-vm vm1 -n ns` (or patch the VM) "
                            "and restart the VM")
    stale = check_vm("ns", "vm1", vm=VM_OK, vmi=vmi(passthrough=False))
    assert stale.reason is VMReason.RESTART_REQUIRED
    assert "`virtctl restart vm1 -n ns`" in stale.message
    stopped = check_vm("ns", "vm1", vm=VM_OK, vmi=None)
    assert stopped.reason is VMReason.NOT_RUNNING
    assert "`virtctl start vm1 -n ns`" in stopped.message
    starting = check_vm("ns", "vm1", vm=VM_OK, vmi=vmi(phase="Scheduled"))
    assert "phase Scheduled" in starting.message
    assert not starting.ready


def test_a_running_instance_with_slots_counts_even_if_the_template_lost_them() -> None:
    assert check_vm("ns", "vm1", vm=VM_BARE, vmi=vmi()).ready
