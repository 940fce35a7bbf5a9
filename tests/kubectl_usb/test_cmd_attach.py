"""`kubectl usb attach`: by name or selector, refusals that name the holder, --wait."""

from __future__ import annotations

import json
import signal
import subprocess

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster, StderrLines, exit_code, one_line_error
from tests.polling import wait_until

AAA1 = "46f4-0001-aaa1"
NAME = "vm1-46f4-0001-aaa1"


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        exit_code(process, within=0)  # fails the test with where it hung
        raise
    return process.returncode, out, err


def test_attach_by_serial_creates_an_attachment_for_that_stick(cluster: Cluster) -> None:
    result = cluster.kubectl("usb", "attach", "--serial", "AAA1", "vm1")
    assert result.code == 0, result.err
    assert result.out == (f"usbattachment/{NAME} created: attaching {AAA1} (QEMU USB HARDDRIVE, "
                          "serial AAA1, node1 port 2-1) to VM default/vm1\n")
    attachment = cluster.attachment(NAME)
    assert attachment is not None
    assert attachment["spec"] == {"vm": "vm1", "device": {"name": AAA1}}


def test_attach_by_device_name(cluster: Cluster) -> None:
    result = cluster.run("attach", "46f4-0001-aaa2", "vm1", "--name", "stick")
    assert result.code == 0, result.err
    assert (cluster.attachment("stick") or {})["spec"]["device"] == {"name": "46f4-0001-aaa2"}


def test_attaching_twice_is_fine(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    again = cluster.run("attach", AAA1, "vm1")
    assert again.code == 0
    assert again.out.startswith(f"usbattachment/{NAME} unchanged: {AAA1} (")
    assert len(cluster.attachments()) == 1


def test_an_ambiguous_selector_lists_the_candidates(cluster: Cluster) -> None:
    result = cluster.run("attach", "--id", "46f4:0001", "vm1")
    assert result.code == ExitCode.AMBIGUOUS
    line = one_line_error(result)
    assert line.startswith("error: 2 devices match --vendor 46f4 --product 0001: ")
    assert "serial AAA1" in line
    assert "serial AAA2" in line
    assert cluster.attachments() == []


def test_unknown_device_and_vm(cluster: Cluster) -> None:
    device = cluster.run("attach", "--serial", "NOPE", "vm1")
    assert device.code == ExitCode.NOT_FOUND
    assert one_line_error(device) == ("error: no USB device matches --serial NOPE: see "
                                      "`kubectl usb list`")
    named = cluster.run("attach", "no-such-device", "vm1")
    assert named.code == ExitCode.NOT_FOUND
    assert "no USB device named 'no-such-device'" in one_line_error(named)
    vm = cluster.run("attach", "--serial", "AAA1", "vm9")
    assert vm.code == ExitCode.NOT_FOUND
    assert one_line_error(vm) == ('error: VirtualMachine "vm9" not found in namespace "default" '
                                  "(see: kubectl get vms -n default)")
    assert cluster.attachments() == []


def test_names_that_are_not_kubernetes_names_are_usage_errors(cluster: Cluster) -> None:
    sub = cluster.run("attach", "--serial", "AAA1", "vm1/status")
    assert sub.code == ExitCode.USAGE
    assert one_line_error(sub) == (
        "error: 'vm1/status' is not a valid VM name: lowercase letters, digits, '-' and '.', at "
        "most 253 characters (see: kubectl usb attach --help)")
    assert cluster.run("attach", "--serial", "AAA1", "../vm1").code == ExitCode.USAGE
    for name in ("Bad_Name", ""):
        named = cluster.run("attach", "--serial", "AAA1", "vm1", "--name", name)
        assert named.code == ExitCode.USAGE
        assert f"Invalid value for '--name': '{name}' is not a valid attachment name" in \
            one_line_error(named)
    assert cluster.attachments() == []


def test_a_vm_without_usb_redirection_is_refused_with_the_fix(cluster: Cluster) -> None:
    result = cluster.run("attach", "--serial", "AAA1", "vm2")
    assert result.code == ExitCode.REFUSED
    assert one_line_error(result) == (
        "error: VM default/vm2 is not configured for USB redirection (no clientPassthrough): "
        "run `kubectl usb prepare-vm -n default vm2` first")


def test_a_stick_held_by_another_vm_is_refused_naming_the_holder(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    cluster.bind(AAA1, attachment=NAME, vm="vm1")
    cluster.add_vm("vm3")
    result = cluster.kubectl("usb", "attach", "--serial", "AAA1", "vm3")
    assert result.code == ExitCode.REFUSED
    assert one_line_error(result) == (
        f"error: {AAA1} (QEMU USB HARDDRIVE, serial AAA1, node1 port 2-1) is in use by VM "
        f"default/vm1 (attachment default/{NAME}); detach it there first: kubectl usb detach "
        f"-n default {NAME}")
    assert [a["metadata"]["name"] for a in cluster.attachments()] == [NAME]


def test_a_stick_requested_but_not_yet_bound_is_refused_too(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    cluster.add_vm("vm3")
    result = cluster.run("attach", "--serial", "AAA1", "vm3")
    assert result.code == ExitCode.REFUSED
    assert f"already requested for VM default/vm1 by attachment default/{NAME}" in \
        one_line_error(result)


def test_wait_until_attached_shows_progress(cluster: Cluster) -> None:
    process = cluster.start("attach", "--serial", "AAA1", "vm1", "--wait", "--timeout", "1m")
    progress = StderrLines(process)
    wait_until(lambda: cluster.attachment(NAME) is not None, timeout=30,
               what="the attachment to be created")
    cluster.claim(AAA1, attachment=NAME, vm="vm1")
    cluster.set_phase(NAME, "Connecting", device=AAA1, node="node1")
    # kubectl usb polls: on a busy machine it may look only after the next phase is set
    wait_until(lambda: progress.shown("waiting: "), timeout=60,
               what="kubectl usb to report the attachment connecting")
    cluster.set_phase(NAME, "Attached", device=AAA1, node="node1")
    out = process.stdout.read() if process.stdout else ""
    code = process.wait(timeout=60)
    err = progress.text()
    assert code == 0, err
    assert out.splitlines() == [
        f"usbattachment/{NAME} created: attaching {AAA1} (QEMU USB HARDDRIVE, serial AAA1, node1 "
        "port 2-1) to VM default/vm1",
        f"attached: {AAA1} (QEMU USB HARDDRIVE, serial AAA1, node1 port 2-1) -> VM default/vm1"]
    assert err.startswith("waiting: ")


def test_wait_ends_on_not_allowed_with_the_allow_command(cluster: Cluster) -> None:
    process = cluster.start("attach", "--serial", "AAA1", "vm1", "--wait")
    wait_until(lambda: cluster.attachment(NAME) is not None, timeout=30,
               what="the attachment to be created")
    cluster.set_phase(NAME, "NotAllowed", message="no USBPolicy allows namespace default to "
                      "use 46f4-0001-aaa1: kubectl usb allow --namespace default --serial AAA1")
    code, _, err = finish(process)
    assert code == ExitCode.REFUSED
    assert err.splitlines()[-1] == (
        f"error: attachment default/{NAME} is NotAllowed: no USBPolicy allows namespace default "
        "to use 46f4-0001-aaa1: kubectl usb allow --namespace default --serial AAA1")


def test_wait_times_out_with_the_last_phase(cluster: Cluster) -> None:
    result = cluster.run("attach", "--serial", "AAA1", "vm1", "--wait", "--timeout", "1s")
    assert result.code == ExitCode.TIMEOUT
    assert result.err.splitlines()[-1] == (
        f"error: timed out after 1s waiting for default/{NAME} to be Attached (last seen: "
        "Pending)")


def test_attach_on_plug(cluster: Cluster) -> None:
    result = cluster.run("attach", "--serial", "AAA9", "vm1", "--on-plug", "-o", "json")
    assert result.code == 0, result.err
    created = json.loads(result.out)
    assert created["spec"] == {"vm": "vm1", "device": {"serial": "AAA9"}}
    assert result.err.endswith("a device matching serial AAA9 will be attached to VM "
                               "default/vm1 when it is plugged in\n")


def test_output_for_scripts(cluster: Cluster) -> None:
    result = cluster.run("attach", "--serial", "AAA1", "vm1", "-o", "name")
    assert result.out == f"usbattachment.usb.kubevirt-usb.io/{NAME}\n"
    assert result.err.startswith(f"usbattachment/{NAME} created")


def test_no_device_given_is_a_usage_error(cluster: Cluster) -> None:
    result = cluster.run("attach", "vm1")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result).startswith("error: say which device:")


def test_a_user_who_may_only_read(cluster: Cluster) -> None:
    kubeconfig = cluster.add_user("viewer")
    cluster.grant("viewer", [
        {"apiGroups": ["usb.kubevirt-usb.io"], "resources": ["usbdevices"],
         "verbs": ["get", "list"]}])
    cluster.grant("viewer", [
        {"apiGroups": ["usb.kubevirt-usb.io"], "resources": ["usbattachments"],
         "verbs": ["get", "list"]},
        {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines",
                                                      "virtualmachineinstances"],
         "verbs": ["get", "list"]}], namespace="default")
    result = cluster.run("attach", "--serial", "AAA1", "vm1",
                         env=cluster.env(KUBECONFIG=str(kubeconfig)))
    assert result.code == ExitCode.FORBIDDEN
    assert one_line_error(result) == (
        'error: usbattachments.usb.kubevirt-usb.io is forbidden: User "viewer" cannot create '
        'resource "usbattachments" in API group "usb.kubevirt-usb.io" in the namespace '
        '"default"; ask a cluster admin for that permission')


def test_a_held_stick_names_its_holder_even_for_an_unprepared_vm(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    cluster.bind(AAA1, attachment=NAME, vm="vm1")
    result = cluster.run("attach", "--serial", "AAA1", "vm2")
    assert result.code == ExitCode.REFUSED
    assert "is in use by VM default/vm1" in one_line_error(result)


def test_a_vm_that_must_restart_is_warned_about(cluster: Cluster) -> None:
    cluster.patch("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/vm2",
                  {"spec": {"template": {"spec": {"domain": {"devices": {
                      "clientPassthrough": {}}}}}}})
    result = cluster.run("attach", "--serial", "AAA2", "vm2")
    assert result.code == 0
    assert result.err == ("warning: VM default/vm2: its running VMI was started without "
                          "clientPassthrough, so the VM must restart (kubectl usb prepare-vm -n "
                          "default vm2 --restart)\n")


def test_ctrl_c_while_waiting_is_exit_130(cluster: Cluster) -> None:
    process = cluster.start("attach", "--serial", "AAA1", "vm1", "--wait")
    wait_until(lambda: cluster.attachment(NAME) is not None, timeout=30,
               what="the attachment to be created")
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code == ExitCode.INTERRUPTED
    assert err.splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in err
