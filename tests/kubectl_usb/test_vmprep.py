"""prepare-vm: patch the template, and restart only what needs it and can be restarted."""

from __future__ import annotations

from typing import Any

from kubevirt_usb.kubectl_usb.vmprep import (
    PATCH,
    Restart,
    cannot_restart_hint,
    has_client_passthrough,
    plan_prepare,
    run_strategy,
)
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.scenario import VMSpec


def vm(*, passthrough: bool, **spec: Any) -> dict[str, Any]:
    obj = kubevirt.vm_object(VMSpec(name="vm", client_passthrough=passthrough, node="node1"))
    obj["spec"].update(spec)
    return obj


def vmi(*, passthrough: bool, phase: str = "Running") -> dict[str, Any]:
    vm_spec = VMSpec(name="vm", client_passthrough=passthrough, node="node1")
    return {**kubevirt.vmi_object(vm_spec, vm_uid="u"),
            "status": kubevirt.vmi_status(vm_spec, phase=phase)}


def test_the_patch_is_the_field_notes_patch() -> None:
    assert PATCH == {"spec": {"template": {"spec": {"domain": {"devices": {
        "clientPassthrough": {}}}}}}}


def test_a_running_vm_without_passthrough_needs_both() -> None:
    plan = plan_prepare(vm(passthrough=False), vmi(passthrough=False))
    assert plan.patch == PATCH
    assert plan.restart is Restart.NEEDED
    assert plan.restart_by_deleting_vmi


def test_a_patched_vm_whose_vmi_is_old_needs_a_restart_only() -> None:
    plan = plan_prepare(vm(passthrough=True), vmi(passthrough=False))
    assert plan.patch is None
    assert plan.restart is Restart.NEEDED


def test_a_prepared_vm_needs_nothing() -> None:
    plan = plan_prepare(vm(passthrough=True), vmi(passthrough=True))
    assert (plan.patch, plan.restart) == (None, Restart.NOT_NEEDED)


def test_a_stopped_vm_needs_no_restart() -> None:
    assert plan_prepare(vm(passthrough=False), None).restart is Restart.NOT_RUNNING
    finished = vmi(passthrough=False, phase="Succeeded")
    assert plan_prepare(vm(passthrough=False), finished).restart is Restart.NOT_RUNNING


def test_only_an_always_running_vm_restarts_by_deleting_its_vmi() -> None:
    manual = vm(passthrough=True, runStrategy="Manual")
    plan = plan_prepare(manual, vmi(passthrough=False))
    assert not plan.restart_by_deleting_vmi
    assert cannot_restart_hint(plan, vm="vm", namespace="default") == (
        "the VM's runStrategy is Manual, so deleting its VMI would stop it, not restart it: "
        "restart it yourself (virtctl restart vm -n default)")
    legacy = vm(passthrough=True)
    del legacy["spec"]["runStrategy"]
    legacy["spec"]["running"] = True
    assert run_strategy(legacy) == "Always"
    legacy["spec"]["running"] = False
    assert run_strategy(legacy) == "Halted"


def test_client_passthrough_must_be_an_object() -> None:
    assert has_client_passthrough({"clientPassthrough": {}})
    assert not has_client_passthrough({"clientPassthrough": None})
    assert not has_client_passthrough(None)
