"""attach: create, find the existing attachment, or refuse naming the holder."""

from __future__ import annotations

import pytest

from kubevirt_usb.kubectl_usb.attachplan import Already, Create, describe_attach, plan_attach
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.selection import Selector
from tests.kubectl_usb.cluster import attachment_obj, field_notes_devices

SERIAL = Selector(serial="AAA1")


def test_a_free_device_gets_a_new_attachment_naming_it() -> None:
    aaa1 = field_notes_devices()[0]
    plan = plan_attach(vm="vm1", namespace="default", device=aaa1, selector=SERIAL,
                       attachments=[])
    assert isinstance(plan, Create)
    assert plan.attachment == {
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
        "metadata": {"name": "vm1-46f4-0001-aaa1", "namespace": "default",
                     "labels": {"app.kubernetes.io/managed-by": "kubectl-usb"}},
        "spec": {"vm": "vm1", "device": {"name": "46f4-0001-aaa1"}}}
    assert describe_attach(plan, vm="vm1", namespace="default", device=aaa1,
                           selector=SERIAL) == (
        "usbattachment/vm1-46f4-0001-aaa1 created: attaching 46f4-0001-aaa1 (QEMU USB "
        "HARDDRIVE, serial AAA1, node1 port 2-1) to VM default/vm1")


def test_a_device_held_by_another_vm_is_refused_naming_it() -> None:
    held = field_notes_devices(claim_aaa1={"namespace": "lab", "attachment": "x-aaa1",
                                           "vm": "x"})[0]
    with pytest.raises(CLIError) as caught:
        plan_attach(vm="vm1", namespace="default", device=held, selector=SERIAL,
                    attachments=[])
    assert caught.value.code is ExitCode.REFUSED
    assert "is in use by VM lab/x (attachment lab/x-aaa1)" in caught.value.message


def test_the_same_vm_already_holding_it_is_fine() -> None:
    mine = attachment_obj("vm1-46f4-0001-aaa1", vm="vm1", device={"name": "46f4-0001-aaa1"},
                          status={"phase": "Attached", "device": "46f4-0001-aaa1"})
    held = field_notes_devices(claim_aaa1={"namespace": "default",
                                           "attachment": "vm1-46f4-0001-aaa1", "vm": "vm1"})[0]
    plan = plan_attach(vm="vm1", namespace="default", device=held, selector=SERIAL,
                       attachments=[mine])
    assert plan == Already(mine)
    assert describe_attach(plan, vm="vm1", namespace="default", device=held,
                           selector=SERIAL).startswith(
        "usbattachment/vm1-46f4-0001-aaa1 unchanged: 46f4-0001-aaa1 (")


def test_a_device_requested_for_another_vm_of_the_namespace_is_refused() -> None:
    pending = attachment_obj("vm2-46f4-0001-aaa1", vm="vm2", device={"name": "46f4-0001-aaa1"},
                             status={"phase": "Pending"})
    with pytest.raises(CLIError) as caught:
        plan_attach(vm="vm1", namespace="default", device=field_notes_devices()[0],
                    selector=SERIAL, attachments=[pending])
    assert caught.value.code is ExitCode.REFUSED
    assert "already requested for VM default/vm2 by attachment default/vm2-46f4-0001-aaa1 " \
        "(Pending)" in caught.value.message


def test_attach_on_plug_stores_the_selector() -> None:
    plan = plan_attach(vm="vm1", namespace="default", device=None,
                       selector=Selector(serial="AAA9"), attachments=[])
    assert isinstance(plan, Create)
    assert plan.attachment["spec"]["device"] == {"serial": "AAA9"}
    assert describe_attach(plan, vm="vm1", namespace="default", device=None,
                           selector=Selector(serial="AAA9")).endswith(
        "a device matching serial AAA9 will be attached to VM default/vm1 when it is plugged in")
    again = plan_attach(vm="vm1", namespace="default", device=None,
                        selector=Selector(serial="AAA9"), attachments=[plan.attachment])
    assert isinstance(again, Already)


def test_a_taken_name_is_refused() -> None:
    other = attachment_obj("mine", vm="vm1", device={"name": "46f4-0001-aaa2"})
    with pytest.raises(CLIError, match="attachment default/mine already exists"):
        plan_attach(vm="vm1", namespace="default", device=field_notes_devices()[0],
                    selector=SERIAL, attachments=[other], attachment="mine")
