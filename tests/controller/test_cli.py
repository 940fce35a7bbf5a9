"""`kubevirt-usb controller`: options, refusals, and the real command binding an attachment."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubevirt_usb.allocator import glibc_mallopt
from kubevirt_usb.cli import cli
from tests.controller.cluster import Kit
from tests.heapprobe import after_the_command


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["controller", "--help"])
    assert result.exit_code == 0
    for option in ("--kubeconfig", "--namespace", "--identity", "--workers",
                   "--lease-duration", "--agent-lease-prefix", "--health-listen"):
        assert option in result.output


def test_bad_settings_are_refused_before_starting() -> None:
    result = CliRunner().invoke(cli, ["controller", "--lease-duration", "1",
                                      "--renew-deadline", "5"])
    assert result.exit_code == 2
    assert "renew_deadline" in result.output


def test_values_that_fail_later_are_refused_before_starting(tmp_path: Path) -> None:
    for option, value, problem in (("--health-listen", "nonsense", "expected HOST:PORT"),
                                   ("--namespace", "Bad NS", "is not a DNS label")):
        result = CliRunner().invoke(cli, ["controller", "--kubeconfig", str(tmp_path / "absent"),
                                          option, value])
        assert result.exit_code == 2, result.output
        assert problem in result.output
        assert "absent" not in result.output  # refused before the kubeconfig was read


async def test_the_command_binds_and_stops_cleanly_on_sigterm(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.allow()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubevirt_usb.cli", "controller",
        "--kubeconfig", str(kit.cluster.kubeconfig), "--namespace", kit.system_namespace,
        "--identity", "cli-test", "--health-listen", "127.0.0.1:0",
        "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5",
        stderr=asyncio.subprocess.PIPE)
    try:
        await kit.attach("a1", vm="vm1", serial="AAA1")
        await kit.wait_phase("a1", "Bound", timeout=60)
        event = await kit.wait_event(name="a1", reason="Bound")
        assert event["reportingInstance"] == "cli-test"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert b'"message": "controller stopped"' in stderr


@pytest.mark.skipif(glibc_mallopt() is None, reason="needs glibc's malloc")
def test_the_command_keeps_big_buffers_out_of_the_main_heap(tmp_path: Path) -> None:
    # asyncio reads every socket into a 256 KiB buffer; carved from the main heap, they fragment
    # it a little more at each reconnect (kubevirt_usb.allocator).
    assert after_the_command(["controller", "--kubeconfig", str(tmp_path / "absent")]) == "mmapped"
