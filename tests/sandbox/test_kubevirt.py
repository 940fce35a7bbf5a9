"""KubeVirt's objects as the box mirrors them: the VMI's virt-launcher Pod."""

from __future__ import annotations

from kubevirt_usb.sandbox.kubevirt import launcher_pod_object, launcher_pod_status, vmi_status
from kubevirt_usb.sandbox.scenario import VMSpec


def test_the_launcher_pod_is_labelled_with_its_vmis_uid_and_bound_to_the_vms_node() -> None:
    vm = VMSpec(namespace="team-a", name="vm3", node="node2")
    pod = launcher_pod_object(vm, vmi_uid="u-1", suffix="ab12c")
    assert pod["metadata"]["name"] == "virt-launcher-vm3-ab12c"
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["metadata"]["labels"]["kubevirt.io/created-by"] == "u-1"
    assert pod["metadata"]["labels"]["kubevirt.io"] == "virt-launcher"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert pod["spec"]["nodeName"] == "node2"


def test_a_launcher_pod_is_running_only_while_its_stand_in_runs() -> None:
    assert launcher_pod_status(running=True)["phase"] == "Running"
    assert launcher_pod_status(running=False)["phase"] == "Pending"


def test_the_vmi_records_its_active_launcher_pod_as_virt_controller_does() -> None:
    vm = VMSpec(name="vm1", node="node1")
    assert vmi_status(vm, phase="Running", active_pods={"p-1": "node1"})["activePods"] == {
        "p-1": "node1"}
    assert "activePods" not in vmi_status(vm, phase="Scheduled")
