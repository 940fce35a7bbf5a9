"""kubectl's connection flags, before or after the command name, and the shared flags."""

from __future__ import annotations

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import KUBECTL_USB, Cluster, one_line_error, run


def add_lab_attachment(cluster: Cluster) -> None:
    cluster.add_vm("labvm", namespace="lab")
    assert cluster.run("-n", "lab", "attach", "--serial", "AAA2", "labvm").code == 0


def test_namespace_before_or_after_the_command(cluster: Cluster) -> None:
    add_lab_attachment(cluster)
    before = cluster.run("-n", "lab", "status", "-o", "name")
    after = cluster.run("status", "--namespace", "lab", "-o", "name")
    assert before.out == after.out == "usbattachment.usb.kubevirt-usb.io/labvm-46f4-0001-aaa2\n"
    default = cluster.run("status")
    assert default.err == "No USB attachments in namespace default.\n"


def test_the_command_flag_wins_over_the_one_before_it(cluster: Cluster) -> None:
    add_lab_attachment(cluster)
    result = cluster.run("-n", "default", "status", "-n", "lab", "-o", "name")
    assert result.out == "usbattachment.usb.kubevirt-usb.io/labvm-46f4-0001-aaa2\n"


def test_all_namespaces_before_the_command(cluster: Cluster) -> None:
    add_lab_attachment(cluster)
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    result = cluster.run("-A", "status", "--no-headers")
    assert [line.split()[:2] for line in result.out.splitlines()] == [
        ["default", "vm1-46f4-0001-aaa1"], ["lab", "labvm-46f4-0001-aaa2"]]


def test_kubeconfig_and_context_flags(cluster: Cluster) -> None:
    env = cluster.env(KUBECONFIG="/nonexistent")
    result = run([str(KUBECTL_USB), "--kubeconfig", str(cluster.kubeconfig), "list", "-o",
                  "name", "--context", "admin@kubevirt-usb-sandbox"], env=env)
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 3


def test_a_bad_request_timeout_is_a_usage_error(cluster: Cluster) -> None:
    result = cluster.run("list", "--request-timeout", "soon")
    assert result.code == ExitCode.USAGE
    assert "use e.g. 30s, 2m or 1h" in one_line_error(result)
    assert cluster.run("list", "--request-timeout", "5s", "-o", "name").code == 0


def test_a_request_timeout_of_zero_is_no_limit_as_for_kubectl(cluster: Cluster) -> None:
    for zero in ("0", "0s"):
        result = cluster.run("list", "--request-timeout", zero, "-o", "name")
        assert (result.code, len(result.out.splitlines())) == (0, 3), result.err


def test_bad_selector_values_are_usage_errors(cluster: Cluster) -> None:
    result = cluster.run("list", "--vendor", "xyz")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result) == ("error: --vendor 'xyz': expected 4 hex digits, e.g. 046d "
                                      "(see: kubectl usb list --help)")


def test_a_namespace_that_cannot_exist_is_a_usage_error(cluster: Cluster) -> None:
    for args in (("-n", "Bad NS", "status"), ("status", "--namespace", "default/virtualmachines"),
                 ("attach", "--serial", "AAA1", "vm1", "-n", "..")):
        result = cluster.run(*args)
        assert result.code == ExitCode.USAGE, args
        assert "is not a valid namespace: lowercase letters, digits and '-', at most 63 " \
            "characters" in one_line_error(result)
    assert cluster.attachments() == []
