"""KubeVirt's objects as the box mirrors them: the VM and VMI carry what real KubeVirt fills in
(so KubeVirt's own console plugin can render their page), the VMI's virt-launcher Pod."""

from __future__ import annotations

from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.kubevirt import launcher_pod_object, launcher_pod_status, vmi_status
from kubevirt_usb.sandbox.scenario import VMSpec

VM1 = VMSpec(name="vm1", node="node1", memory_mib=384)


def test_the_firmware_uuid_is_virt_controllers_name_based_uuid() -> None:
    # uuid.NewSHA1(firmwareUUIDns, "vm1") as virt-controller computes it (a version-5 UUID):
    # the same for every start of vm1, so it stays across restarts
    assert kubevirt.firmware_uuid("vm1") == "133bf63e-9459-5126-9b21-b56e9b3d17b3"
    assert kubevirt.firmware_uuid("vm1") != kubevirt.firmware_uuid("vm2")


def test_a_vmi_carries_the_domain_kubevirt_fills_in() -> None:
    domain = kubevirt.vmi_object(VM1, vm_uid="u")["spec"]["domain"]
    assert domain["firmware"] == {"uuid": kubevirt.firmware_uuid("vm1")}
    assert domain["machine"] == {"type": "q35"}
    assert domain["cpu"] == {"cores": 1, "sockets": 1, "threads": 1, "model": "host-model"}
    assert domain["resources"] == {"requests": {"memory": "384Mi"}}


def test_client_passthrough_is_in_the_vmi_only_when_the_vm_asks_for_it() -> None:
    without = VMSpec(name="vm2", node="node1", client_passthrough=False)
    assert kubevirt.vmi_object(VM1, vm_uid="u")["spec"]["domain"]["devices"] == {
        "clientPassthrough": {}}
    assert kubevirt.vmi_object(without, vm_uid="u")["spec"]["domain"]["devices"] == {}


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
