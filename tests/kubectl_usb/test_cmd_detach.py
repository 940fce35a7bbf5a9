"""`kubectl usb detach`: a VM's devices, one attachment, or a device wherever it is held;
waiting until the devices are free."""

from __future__ import annotations

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster, StderrLines, one_line_error
from tests.polling import wait_until

AAA1, AAA2 = "46f4-0001-aaa1", "46f4-0001-aaa2"


def attach_both(cluster: Cluster) -> None:
    for serial, device in (("AAA1", AAA1), ("AAA2", AAA2)):
        assert cluster.run("attach", "--serial", serial, "vm1").code == 0
        cluster.bind(device, attachment=f"vm1-{device}", vm="vm1")


def test_detach_a_vm_waits_until_its_devices_are_free(cluster: Cluster) -> None:
    attach_both(cluster)
    process = cluster.start("detach", "vm1")
    progress = StderrLines(process)
    wait_until(lambda: cluster.attachments() == [], timeout=30,
               what="the attachments to be deleted")
    # kubectl usb polls: on a busy machine it may look only after both devices are released
    wait_until(lambda: progress.shown("waiting: waiting for"), timeout=60,
               what="kubectl usb to report the devices still held")
    cluster.release(AAA1)
    cluster.release(AAA2)
    out = process.stdout.read() if process.stdout else ""
    process.wait(timeout=60)
    err = progress.text()
    assert process.returncode == 0, err
    assert out.splitlines() == [
        f"usbattachment/vm1-{AAA1} deleted: VM default/vm1 lets go of {AAA1}",
        f"usbattachment/vm1-{AAA2} deleted: VM default/vm1 lets go of {AAA2}",
        f"released: {AAA1}, {AAA2}"]
    assert "waiting: waiting for" in err
    listing = cluster.run("list", "--in-use")
    assert listing.err == "No USB devices match.\n"


def test_detach_one_attachment_without_waiting(cluster: Cluster) -> None:
    attach_both(cluster)
    result = cluster.kubectl("usb", "detach", f"vm1-{AAA2}", "--no-wait")
    assert result.code == 0, result.err
    assert result.out == f"usbattachment/vm1-{AAA2} deleted: VM default/vm1 lets go of {AAA2}\n"
    assert [a["metadata"]["name"] for a in cluster.attachments()] == [f"vm1-{AAA1}"]


def test_detach_by_serial_finds_the_holder_in_any_namespace(cluster: Cluster) -> None:
    cluster.add_vm("labvm", namespace="lab")
    assert cluster.run("-n", "lab", "attach", "--serial", "AAA1", "labvm").code == 0
    cluster.claim(AAA1, attachment=f"labvm-{AAA1}", vm="labvm", namespace="lab")
    result = cluster.run("detach", "--serial", "AAA1", "--no-wait")
    assert result.code == 0, result.err
    assert result.out == f"usbattachment/labvm-{AAA1} deleted: VM lab/labvm lets go of {AAA1}\n"
    assert cluster.attachments(namespace="lab") == []


def test_detach_times_out_while_the_device_stays_held(cluster: Cluster) -> None:
    attach_both(cluster)
    result = cluster.run("detach", f"vm1-{AAA1}", "--timeout", "1s")
    assert result.code == ExitCode.TIMEOUT
    assert result.err.splitlines()[-1] == (
        f"error: timed out after 1s waiting for default/vm1-{AAA1} to be released (last seen: "
        f"waiting for {AAA1} to be released)")


def test_nothing_to_detach_is_fine(cluster: Cluster) -> None:
    vm = cluster.run("detach", "vm2")
    assert (vm.code, vm.out) == (0, "VM default/vm2 has no USB devices attached\n")
    device = cluster.run("detach", "--serial", "AAA2")
    assert device.code == 0
    assert device.out.endswith("is not attached to any VM\n")


def test_unknown_names(cluster: Cluster) -> None:
    name = cluster.run("detach", "nope")
    assert name.code == ExitCode.NOT_FOUND
    assert one_line_error(name) == ('error: no USB attachment or VM named "nope" in namespace '
                                    '"default" (see: kubectl usb status)')
    serial = cluster.run("detach", "--serial", "NOPE")
    assert serial.code == ExitCode.NOT_FOUND


def test_values_that_cannot_name_anything_are_usage_errors(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    for args, error in (
            (("vm1/status",), "'vm1/status' is not a valid VM or attachment name"),
            (("--serial", ""), "an empty selector value matches nothing"),
            (("--device", "Bad_Name"), "'Bad_Name' is not a USBDevice name")):
        result = cluster.run("detach", *args)
        assert result.code == ExitCode.USAGE, args
        assert error in one_line_error(result)
    assert len(cluster.attachments()) == 1


def test_say_exactly_one_thing_to_detach(cluster: Cluster) -> None:
    for args in ((), ("vm1", "--serial", "AAA1")):
        result = cluster.run("detach", *args)
        assert result.code == ExitCode.USAGE
        assert one_line_error(result).startswith("error: say what to detach:")


def test_output_names(cluster: Cluster) -> None:
    attach_both(cluster)
    result = cluster.run("detach", "vm1", "--no-wait", "-o", "name")
    assert result.out.splitlines() == [f"usbattachment.usb.kubevirt-usb.io/vm1-{AAA1}",
                                       f"usbattachment.usb.kubevirt-usb.io/vm1-{AAA2}"]
