"""`kubectl usb prepare-vm`: clientPassthrough, and a restart when (and only when) asked."""

from __future__ import annotations

import os
import subprocess

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import KUBECTL_USB, KUBEVIRT, Cluster, one_line_error

VM2 = f"{KUBEVIRT}/namespaces/default/virtualmachines/vm2"
VMI2 = f"{KUBEVIRT}/namespaces/default/virtualmachineinstances/vm2"


def passthrough(cluster: Cluster) -> object:
    vm = cluster.get(VM2) or {}
    return vm["spec"]["template"]["spec"]["domain"]["devices"].get("clientPassthrough")


def test_prepare_patches_and_says_how_to_restart(cluster: Cluster) -> None:
    result = cluster.kubectl("usb", "prepare-vm", "vm2")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "virtualmachine.kubevirt.io/vm2 patched: clientPassthrough added (4 usbredir slots)",
        "its running VMI was started without clientPassthrough, so the VM must restart; "
        "restart it with: kubectl usb prepare-vm -n default vm2 --restart"]
    assert passthrough(cluster) == {}
    assert cluster.get(VMI2) is not None


def test_restart_deletes_the_vmi(cluster: Cluster) -> None:
    cluster.run("prepare-vm", "vm2")
    result = cluster.run("prepare-vm", "vm2", "--restart")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "virtualmachine.kubevirt.io/vm2 unchanged: it already has clientPassthrough",
        "virtualmachineinstance.kubevirt.io/vm2 deleted: KubeVirt starts VM default/vm2 again, "
        "now with USB redirection"]
    assert cluster.get(VMI2) is None


def test_a_prepared_vm_is_left_alone(cluster: Cluster) -> None:
    result = cluster.run("prepare-vm", "vm1", "--yes")
    assert result.out.splitlines() == [
        "virtualmachine.kubevirt.io/vm1 unchanged: it already has clientPassthrough",
        "its running VMI already has USB redirection"]


def test_a_stopped_vm_needs_no_restart(cluster: Cluster) -> None:
    cluster.add_vm("vm3", passthrough=False, running=False)
    result = cluster.run("prepare-vm", "vm3", "--restart")
    assert result.out.splitlines()[-1] == ("the VM is not running; its VMI gets USB redirection "
                                           "when it starts")


def test_a_manual_vm_is_not_stopped(cluster: Cluster) -> None:
    cluster.patch(VM2, {"spec": {"runStrategy": "Manual"}})
    result = cluster.run("prepare-vm", "vm2", "-y")
    assert result.code == ExitCode.REFUSED
    assert result.err.strip() == (
        "error: the VM's runStrategy is Manual, so deleting its VMI would stop it, not restart "
        "it: restart it yourself (virtctl restart vm2 -n default)")
    assert cluster.get(VMI2) is not None


def test_an_unknown_vm(cluster: Cluster) -> None:
    result = cluster.run("prepare-vm", "vm9")
    assert result.code == ExitCode.NOT_FOUND
    assert one_line_error(result) == ('error: VirtualMachine "vm9" not found in namespace '
                                      '"default"')


def test_a_name_that_is_not_a_vm_name_patches_nothing(cluster: Cluster) -> None:
    result = cluster.run("prepare-vm", "vm2/status", "--restart")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result).startswith(
        "error: Invalid value for 'VM': 'vm2/status' is not a valid VM name")
    vm = cluster.get(VM2)
    assert vm is not None
    assert "clientPassthrough" not in vm["spec"]["template"]["spec"]["domain"]["devices"]
    assert cluster.get(VMI2) is not None


def test_on_a_terminal_it_asks(cluster: Cluster) -> None:
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen([str(KUBECTL_USB), "prepare-vm", "vm2"], env=cluster.env(),
                                   stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        os.write(leader, b"y\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode == 0, err
    assert "Restart VM default/vm2 now" in err
    assert out.splitlines()[-1].startswith("virtualmachineinstance.kubevirt.io/vm2 deleted")
    assert cluster.get(VMI2) is None
