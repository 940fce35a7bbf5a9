"""detach: which attachments to delete for a name, a VM or a device."""

from __future__ import annotations

import pytest

from kubevirt_usb.kubectl_usb.detachplan import (
    DetachPlan,
    describe_deleted,
    plan_detach_device,
    plan_detach_name,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from tests.kubectl_usb.cluster import attachment_obj, field_notes_devices

A1 = attachment_obj("vm1-aaa1", vm="vm1", device={"name": "46f4-0001-aaa1"})
A2 = attachment_obj("vm1-aaa2", vm="vm1", device={"name": "46f4-0001-aaa2"})
B = attachment_obj("vm3-ft", vm="vm3", device={"name": "0403-6001-ft0001"})


def test_an_attachment_name_deletes_that_one() -> None:
    assert plan_detach_name("vm1-aaa2", namespace_="default", attachments=[A1, A2, B],
                            vm_exists=False) == DetachPlan([("default", "vm1-aaa2")])


def test_a_vm_name_deletes_all_of_its_attachments() -> None:
    assert plan_detach_name("vm1", namespace_="default", attachments=[A2, B, A1],
                            vm_exists=True) == DetachPlan([("default", "vm1-aaa1"),
                                                           ("default", "vm1-aaa2")])


def test_a_vm_without_attachments_is_nothing_to_do() -> None:
    plan = plan_detach_name("vm2", namespace_="default", attachments=[A1], vm_exists=True)
    assert plan == DetachPlan(nothing="VM default/vm2 has no USB devices attached")


def test_an_unknown_name_is_not_found() -> None:
    with pytest.raises(CLIError) as caught:
        plan_detach_name("nope", namespace_="default", attachments=[A1], vm_exists=False)
    assert caught.value.code is ExitCode.NOT_FOUND
    assert caught.value.message == ('no USB attachment or VM named "nope" in namespace '
                                    '"default" (see: kubectl usb status)')


def test_a_device_is_let_go_wherever_it_is_held() -> None:
    held = field_notes_devices(claim_aaa1={"namespace": "lab", "attachment": "x", "vm": "x"})[0]
    assert plan_detach_device(held, attachments=[A1, B]) == DetachPlan(
        [("lab", "x"), ("default", "vm1-aaa1")])
    free = field_notes_devices()[1]
    assert plan_detach_device(free, attachments=[A1]) == DetachPlan(nothing=(
        "46f4-0001-aaa2 (QEMU USB HARDDRIVE, serial AAA2, node1 port 2-2) is not attached to "
        "any VM"))


def test_what_was_deleted() -> None:
    assert describe_deleted(("default", "vm1-aaa1"), A1) == (
        "usbattachment/vm1-aaa1 deleted: VM default/vm1 lets go of 46f4-0001-aaa1")
    assert describe_deleted(("lab", "x"), None) == "usbattachment/x deleted"
