"""The installed `kubectl-usb` program and `kubectl usb` through kubectl's plugin mechanism:
help, version, and the one-line errors when there is no cluster."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import KUBECTL_USB, Cluster, one_line_error, run

COMMANDS = ["list", "attach", "detach", "status", "watch", "allow", "prepare-vm", "doctor",
            "completion"]


def test_help_lists_the_commands_in_the_order_of_the_job(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("--help")
    assert result.code == 0
    section = result.out.split("Commands:")[1].split("Examples:")[0]
    assert [line.split()[0] for line in section.splitlines() if line.strip()] == COMMANDS
    assert result.out.startswith("Usage: kubectl usb [OPTIONS] COMMAND [ARGS]...")
    for flag in ("--kubeconfig", "--context", "-n, --namespace", "-A, --all-namespaces"):
        assert flag in result.out


def test_help_documents_every_exit_code(empty_cluster: Cluster) -> None:
    out = empty_cluster.run("--help").out
    section = out.split("Exit codes:")[1]
    for code in ExitCode:
        assert f"  {int(code):>3}  " in section


def test_kubectl_finds_the_plugin(empty_cluster: Cluster) -> None:
    result = empty_cluster.kubectl("usb", "--help")
    assert result.code == 0
    assert "Find USB devices on the cluster's nodes" in result.out
    plugins = empty_cluster.kubectl("plugin", "list")
    assert str(KUBECTL_USB) in plugins.out


def test_version(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("--version")
    assert result.code == 0
    assert result.out.startswith("kubectl-usb, version ")


def test_an_unknown_command_is_a_one_line_usage_error(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("frobnicate")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result) == ("error: No such command 'frobnicate'. (see: kubectl usb "
                                      "--help)")
    bad_flag = empty_cluster.run("list", "--colour")
    assert bad_flag.code == ExitCode.USAGE
    assert one_line_error(bad_flag) == ("error: No such option '--colour'. (see: kubectl usb "
                                        "list --help)")


def test_a_missing_choice_is_one_line_too(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("completion")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result) == ("error: Missing argument '{bash|zsh|fish}'. Choose from: "
                                      "bash, zsh, fish (see: kubectl usb completion --help)")


def test_no_reachable_cluster_is_one_line_and_exit_7(empty_cluster: Cluster,
                                                     tmp_path: Path) -> None:
    config = yaml.safe_load(empty_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    result = empty_cluster.run("list", "--kubeconfig", str(dead))
    assert result.code == ExitCode.UNREACHABLE
    assert one_line_error(result).startswith(
        "error: cannot reach the Kubernetes API at https://127.0.0.1:1 (")
    assert "check --context/--kubeconfig and that the cluster is up" in result.err
    through_kubectl = empty_cluster.kubectl("usb", "status", "--kubeconfig", str(dead))
    assert through_kubectl.code == ExitCode.UNREACHABLE
    assert one_line_error(through_kubectl).startswith("error: cannot reach")


def test_no_kubeconfig_is_one_line_and_exit_7(empty_cluster: Cluster, tmp_path: Path) -> None:
    env = empty_cluster.env(KUBECONFIG=str(tmp_path / "missing"))
    result = run([str(KUBECTL_USB), "list"], env=env)
    assert result.code == ExitCode.UNREACHABLE
    assert one_line_error(result).startswith(f"error: no cluster to talk to: kubeconfig "
                                             f"{tmp_path / 'missing'}")


def test_an_unknown_context_is_one_line_and_exit_7(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("list", "--context", "nope")
    assert result.code == ExitCode.UNREACHABLE
    assert "nope" in one_line_error(result)


def test_bad_credentials_are_exit_6(empty_cluster: Cluster, tmp_path: Path) -> None:
    path = empty_cluster.server.write_kubeconfig(tmp_path / "bad", token="not-a-token")
    result = empty_cluster.run("list", "--kubeconfig", str(path))
    assert result.code == ExitCode.FORBIDDEN
    assert one_line_error(result).startswith(
        f"error: the API server {empty_cluster.server.url} did not accept your credentials "
        "(401 Unauthorized): log in again")
