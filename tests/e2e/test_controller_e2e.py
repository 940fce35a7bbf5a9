"""The controller end to end in the cluster in a box, with the VM guest's kernel as the judge: the
real agent (in the node guest) and controller (beside the API) of a sandbox, driven by the
objects a user and an admin write.

A USBAttachment puts its device into the VM; deleting it takes the device out and frees it;
unplugging and plugging the device brings it back; revoking the USBPolicy takes every device out
and granting it again puts them all back; deleting the VM deletes its attachments and frees their
devices (last, as it takes vm1 away).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kubevirt_usb.sandbox.harness import SandboxHarness

pytestmark = [pytest.mark.qemu, pytest.mark.real_apiserver]

GROUP = "/apis/usb.kubevirt-usb.io/v1alpha1"
ATTACHMENTS = f"{GROUP}/namespaces/default/usbattachments"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.is_success, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


POLICY = f"{GROUP}/usbpolicies/e2e-default"


def grant(sandbox: SandboxHarness) -> None:
    """The admin lets namespace default use every device."""
    with sandbox.http() as http:
        _ok(http.post(f"{GROUP}/usbpolicies", json={
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
            "metadata": {"name": "e2e-default"}, "spec": {"namespaces": ["default"]}}))


@pytest.fixture(scope="module")
def allowed(sandbox: SandboxHarness) -> SandboxHarness:
    grant(sandbox)
    return sandbox


def attach(sandbox: SandboxHarness, name: str, *, vm: str, **device: str) -> None:
    with sandbox.http() as http:
        _ok(http.post(ATTACHMENTS, json={
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"vm": vm, "device": device}}))


def attachment(sandbox: SandboxHarness, name: str) -> dict[str, Any] | None:
    with sandbox.http() as http:
        got = http.get(f"{ATTACHMENTS}/{name}")
    return None if got.status_code == 404 else _ok(got)


def phase(sandbox: SandboxHarness, name: str) -> str:
    return str(((attachment(sandbox, name) or {}).get("status") or {}).get("phase", ""))


def bound_reason(sandbox: SandboxHarness, name: str) -> str:
    """The reason of the controller's Bound condition (the phase may be the agent's)."""
    conditions = ((attachment(sandbox, name) or {}).get("status") or {}).get("conditions") or []
    return next((str(c["reason"]) for c in conditions if c["type"] == "Bound"), "")


def holder(sandbox: SandboxHarness, serial: str) -> str | None:
    """The attachment holding the device with this serial (None: free)."""
    with sandbox.http() as http:
        devices = _ok(http.get(f"{GROUP}/usbdevices"))["items"]
    found = [d for d in devices if (d.get("status") or {}).get("serial") == serial]
    assert found, f"no USBDevice with serial {serial}"
    ref = (found[0].get("spec") or {}).get("claimRef")
    return str(ref["attachment"]) if ref else None


def delete(sandbox: SandboxHarness, path: str) -> None:
    with sandbox.http() as http:
        _ok(http.delete(path))


def test_an_attachment_puts_its_device_into_the_vm_and_deleting_takes_it_out(
        allowed: SandboxHarness) -> None:
    sandbox = allowed
    attach(sandbox, "stick", vm="vm1", serial="AAA1")
    sandbox.wait_vm_sees("default/vm1", "AAA1", within=120)
    sandbox.wait_until(lambda: phase(sandbox, "stick") == "Attached", within=30,
                       what="the attachment Attached")
    assert holder(sandbox, "AAA1") == "stick"
    assert not sandbox.vm_sees("default/vm1", "AAA2")  # exactly that stick, not its twin

    delete(sandbox, f"{ATTACHMENTS}/stick")
    sandbox.wait_vm_loses("default/vm1", "AAA1", within=60)
    sandbox.wait_until(lambda: attachment(sandbox, "stick") is None, within=30,
                       what="the attachment gone")
    assert holder(sandbox, "AAA1") is None


def test_unplugged_and_plugged_again_it_comes_back(allowed: SandboxHarness) -> None:
    sandbox = allowed
    attach(sandbox, "twin", vm="vm1", serial="AAA2")
    sandbox.wait_vm_sees("default/vm1", "AAA2", within=60)
    sandbox.unplug("AAA2", node="node1")
    sandbox.wait_vm_loses("default/vm1", "AAA2", within=60)
    sandbox.wait_until(lambda: bound_reason(sandbox, "twin") == "DeviceUnavailable", within=60,
                       what="the attachment waiting for its device")
    assert holder(sandbox, "AAA2") == "twin"  # kept for it while unplugged
    sandbox.plug("AAA2", into="node1")
    sandbox.wait_vm_sees("default/vm1", "AAA2", within=60)
    delete(sandbox, f"{ATTACHMENTS}/twin")
    sandbox.wait_vm_loses("default/vm1", "AAA2", within=60)


def test_a_vm_without_client_passthrough_is_refused_with_the_fix(
        allowed: SandboxHarness) -> None:
    sandbox = allowed
    attach(sandbox, "nopass", vm="vm2", serial="FT0001")
    sandbox.wait_until(lambda: phase(sandbox, "nopass") == "VMNotReady", within=30,
                       what="VMNotReady")
    message = (attachment(sandbox, "nopass") or {})["status"]["message"]
    assert "`kubectl usb prepare-vm vm2 -n default`" in message
    assert holder(sandbox, "FT0001") is None
    delete(sandbox, f"{ATTACHMENTS}/nopass")


def test_revoking_takes_the_devices_out_and_granting_again_puts_them_all_back(
        allowed: SandboxHarness) -> None:
    sandbox = allowed
    streams = {"regrant-aaa1": "AAA1", "regrant-aaa2": "AAA2", "regrant-serial": "FT0001"}
    for name, serial in streams.items():
        attach(sandbox, name, vm="vm1", serial=serial)
    for serial in streams.values():
        sandbox.wait_vm_sees("default/vm1", serial, within=120)
    delete(sandbox, POLICY)  # the admin revokes: the three bindings end together
    try:
        for serial in streams.values():
            sandbox.wait_vm_loses("default/vm1", serial, within=60)
        sandbox.wait_until(lambda: all(phase(sandbox, n) == "NotAllowed" for n in streams),
                           within=30, what="every attachment NotAllowed")
        assert all(holder(sandbox, serial) is None for serial in streams.values())
    finally:
        grant(sandbox)  # and grants again: each comes back into the VM
    for serial in streams.values():
        sandbox.wait_vm_sees("default/vm1", serial, within=120)
    sandbox.wait_until(lambda: all(phase(sandbox, n) == "Attached" for n in streams),
                       within=60, what="every attachment Attached again")
    assert {holder(sandbox, serial) for serial in streams.values()} == set(streams)
    for name in streams:
        delete(sandbox, f"{ATTACHMENTS}/{name}")
    for serial in streams.values():
        sandbox.wait_vm_loses("default/vm1", serial, within=60)


def test_deleting_the_vm_deletes_its_attachments_and_frees_the_device(
        allowed: SandboxHarness) -> None:
    sandbox = allowed
    attach(sandbox, "serial", vm="vm1", serial="FT0001")
    sandbox.wait_vm_sees("default/vm1", "FT0001", within=60)
    delete(sandbox, "/apis/kubevirt.io/v1/namespaces/default/virtualmachines/vm1")
    sandbox.wait_until(lambda: attachment(sandbox, "serial") is None, within=60,
                       what="the attachment deleted with its VM")
    sandbox.wait_until(lambda: holder(sandbox, "FT0001") is None, within=30,
                       what="the serial adapter free")
    sandbox.wait_vm_loses("default/vm1", "FT0001", within=60)
