"""Shell completion: the scripts, click's protocol for `kubectl-usb`, and kubectl's plugin
completion protocol for `kubectl usb` (through a kubectl_complete-usb program on PATH)."""

from __future__ import annotations

import sys
from pathlib import Path

from click.shell_completion import CompletionItem

from kubevirt_usb.kubectl_usb.completion import cobra_lines
from tests.kubectl_usb.cluster import Cluster, Result, run


def test_cobra_lines() -> None:
    items = [CompletionItem("attach", help="Attach a device to a VM."), CompletionItem("x")]
    assert cobra_lines(items) == ["attach\tAttach a device to a VM.", "x", ":4"]
    assert cobra_lines([CompletionItem("", type="file")]) == [":0"]
    assert cobra_lines([]) == [":4"]


def test_the_bash_script(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("completion", "bash")
    assert result.code == 0
    assert "_KUBECTL_USB_COMPLETE=bash_complete" in result.out
    assert "complete -o nosort -F _kubectl_usb_completion kubectl-usb" in result.out
    for shell in ("zsh", "fish"):
        assert "_KUBECTL_USB_COMPLETE" in empty_cluster.run("completion", shell).out


def click_complete(cluster: Cluster, line: str) -> list[str]:
    words = line.split(" ")
    env = cluster.env(_KUBECTL_USB_COMPLETE="bash_complete", COMP_WORDS=line,
                      COMP_CWORD=str(len(words) - 1))
    result = cluster.run(env=env)
    assert result.code == 0, result.err
    return [line for line in result.out.splitlines() if line]


def test_commands_flags_and_device_names_complete(cluster: Cluster) -> None:
    assert click_complete(cluster, "kubectl-usb att") == ["plain,attach"]
    assert click_complete(cluster, "kubectl-usb attach 46f4") == ["plain,46f4-0001-aaa1",
                                                                  "plain,46f4-0001-aaa2"]
    assert click_complete(cluster, "kubectl-usb list --serial A") == ["plain,AAA1",
                                                                      "plain,AAA2"]
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    assert click_complete(cluster, "kubectl-usb detach v") == [
        "plain,vm1", "plain,vm1-46f4-0001-aaa1", "plain,vm2"]
    assert click_complete(cluster, "kubectl-usb -n lab status v") == []


def kubectl_complete(cluster: Cluster, tmp_path: Path, *words: str) -> Result:
    shim = tmp_path / "bin" / "kubectl_complete-usb"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m kubevirt_usb.kubectl_usb.completion "
                    '"$@"\n')
    shim.chmod(0o755)
    env = cluster.env()
    env["PATH"] = f"{shim.parent}:{env['PATH']}"
    return run(["kubectl", "__complete", "usb", *words], env=env)


def test_kubectl_completes_the_plugin(cluster: Cluster, tmp_path: Path) -> None:
    commands = kubectl_complete(cluster, tmp_path, "")
    assert commands.code == 0
    lines = commands.out.splitlines()
    assert lines[-1] == ":4"
    assert [line.split("\t")[0] for line in lines[:-1]] == [
        "list", "attach", "detach", "status", "watch", "allow", "prepare-vm", "doctor",
        "completion"]
    serials = kubectl_complete(cluster, tmp_path, "attach", "--serial", "")
    assert serials.out.splitlines() == ["AAA1", "AAA2", "FT0001", ":4"]
    files = kubectl_complete(cluster, tmp_path, "list", "--kubeconfig", "")
    assert files.out.splitlines() == [":0"]
