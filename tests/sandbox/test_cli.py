"""`kubevirt-usb sandbox` from a shell, as the README tells people to use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KUBEVIRT_USB = str(Path(sys.executable).with_name("kubevirt-usb"))


def _run(state: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBEVIRT_USB, "sandbox", "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=timeout, check=False, env=env)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("sbx")
    up = _run(state, "up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "The sandbox is ready" in up.stdout
    yield state
    _run(state, "down")


@pytest.mark.qemu
def test_exec_prints_the_guests_output_and_exits_with_its_status(running: Path) -> None:
    listing = _run(running, "exec", "--node", "node1", "--",
                   "cat /sys/bus/usb/devices/*/serial")
    assert listing.returncode == 0
    assert {"AAA1", "AAA2", "FT0001"} <= set(listing.stdout.split())
    failing = _run(running, "exec", "--vm", "default/vm1", "--", "echo oops >&2; exit 7")
    assert failing.returncode == 7
    assert "oops" in failing.stdout


@pytest.mark.qemu
def test_unplug_and_plug_by_serial(running: Path) -> None:
    assert _run(running, "unplug", "--node", "node1", "AAA2").returncode == 0
    gone = _run(running, "exec", "--node", "node1", "--", "cat /sys/bus/usb/devices/*/serial")
    assert "AAA2" not in gone.stdout.split()
    plugged = _run(running, "plug", "--node", "node1", "AAA2")
    assert plugged.returncode == 0
    assert "port 2" in plugged.stdout
    back = _run(running, "exec", "--node", "node1", "--", "cat /sys/bus/usb/devices/2-2/serial")
    assert back.stdout.strip() == "AAA2"


@pytest.mark.qemu
def test_status_and_kubeconfig_describe_the_running_sandbox(running: Path) -> None:
    status = _run(running, "status", "-o", "json")
    assert status.returncode == 0
    assert '"default/vm1"' in status.stdout
    path = _run(running, "kubeconfig").stdout.strip()
    vms = subprocess.run(["kubectl", "get", "vms", "-n", "default", "-o", "name"],
                         env={**os.environ, "KUBECONFIG": path}, capture_output=True,
                         text=True, check=True)
    assert vms.stdout.split() == ["virtualmachine.kubevirt.io/vm1",
                                  "virtualmachine.kubevirt.io/vm2",
                                  "virtualmachine.kubevirt.io/vm3"]


@pytest.mark.qemu
def test_bad_requests_get_one_line_errors(running: Path) -> None:
    unknown = _run(running, "unplug", "--node", "node1", "ZZZ9")
    assert unknown.returncode == 1
    assert "node node1 has no device 'ZZZ9' (devices: AAA1, AAA2, FT0001)" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    twice = _run(running, "up", "--detach")
    assert twice.returncode == 1
    assert "already running" in twice.stderr
    in_front = _run(running, "up", timeout=60)  # in the foreground, in the same directory
    assert in_front.returncode == 1
    assert in_front.stderr == (f"Error: a sandbox is already running or starting in {running}; "
                               "stop it with `kubevirt-usb sandbox down`, or give this one "
                               "another --state-dir\n")
    assert (running / "sandbox.json").exists()  # the first one's state is untouched
    assert _run(running, "exec", "--node", "node1", "--", "echo still").stdout == "still\n"


def test_down_leaves_nothing_behind(tmp_path: Path) -> None:
    nothing = _run(tmp_path / "none", "down")
    assert nothing.returncode == 0
    assert "no sandbox is running" in nothing.stdout


def test_a_state_dir_that_is_not_the_sandboxs_is_never_removed(tmp_path: Path) -> None:
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    down = _run(mine, "down")
    assert down.returncode == 0
    assert down.stdout == f"no sandbox is running in {mine}\n"
    up = _run(mine, "up", "--detach")
    assert up.returncode == 1
    assert up.stderr == (f"Error: --state-dir {mine} holds files that are not the sandbox's: "
                         "choose a new or empty directory (the sandbox removes it when it "
                         "stops)\n")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_broken_scenario_file_says_what_to_fix(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("nodes:\n  - name: node1\n    devices:\n      - {id: s1, kind: floppy}\n")
    result = _run(tmp_path / "state", "up", "--detach", "--config", str(scenario))
    assert result.returncode == 1
    assert "nodes[0].devices[0].kind" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "control.sock").exists()


def test_a_detached_sandbox_that_fails_to_start_shows_why_and_leaves_nothing(
        tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qemu = bin_dir / "qemu-system-x86_64"  # found first on PATH: a QEMU that cannot start
    qemu.write_text("#!/bin/sh\necho 'qemu-system-x86_64: no such machine, for this test' >&2\n"
                    "exit 1\n")
    qemu.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    state = tmp_path / "state"
    result = _run(state, "up", "--detach", env=env)
    assert result.returncode == 1
    assert "QEMU exited with status 1 during boot" in result.stdout
    assert "no such machine, for this test" in result.stdout
    assert result.stderr == "Error: the sandbox failed to start (the reason is above)\n"
    assert not state.exists()


def test_exec_needs_exactly_one_guest(tmp_path: Path) -> None:
    result = _run(tmp_path, "exec", "--", "true")
    assert result.returncode == 2
    assert "exactly one of --node NAME or --vm NS/NAME" in result.stderr


@pytest.mark.qemu
def test_down_stops_every_process_and_removes_the_state(running: Path) -> None:
    state = (running / "sandbox.json").read_text()
    pid = int(json.loads(state)["pid"])
    down = _run(running, "down")
    assert down.returncode == 0
    assert "sandbox stopped" in down.stdout
    assert not running.exists()
    assert not Path(f"/proc/{pid}").exists()
    leftovers = subprocess.run(["pgrep", "-f", str(running)], capture_output=True, text=True,
                               check=False)
    assert leftovers.stdout == ""


def test_a_real_api_server_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "real.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    state = tmp_path / "state"
    result = _run(state, "up", "--detach", "--apiserver-kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: cannot reach the API server at https://127.0.0.1:{port}")
    assert "Traceback" not in result.stdout + result.stderr
    assert not state.exists()
