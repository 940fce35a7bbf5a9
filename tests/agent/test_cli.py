"""`kubevirt-usb agent`: options and environment, and the real program against the API emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from kubevirt_usb.agent.cli import agent
from kubevirt_usb.allocator import glibc_mallopt
from kubevirt_usb.cli import cli
from kubevirt_usb.kube.resources import Lease, USBDevice
from kubevirt_usb.redirect.libversion import usbredir_version
from kubevirt_usb.sandbox.sysfs_tree import USB_IDS_TEXT, SysfsTree
from tests.heapprobe import after_the_command
from tests.kube.emulator import NAMESPACE, Emulator, Relay, eventually


def test_the_agent_is_a_kubevirt_usb_subcommand() -> None:
    result = CliRunner().invoke(cli, ["agent", "--help"])
    assert result.exit_code == 0
    for option in ("--node-name", "--kubeconfig", "--context", "--namespace", "--sysfs-root",
                   "--usb-ids", "--health-listen", "--uevents"):
        assert option in result.output


def test_a_bad_node_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(agent, ["--node-name", "Bad_Name"])
    assert result.exit_code == 2
    assert "'Bad_Name' is not a DNS subdomain" in result.output


def test_a_bad_health_address_is_a_usage_error_before_connecting(tmp_path: Path) -> None:
    result = CliRunner().invoke(agent, ["--node-name", "node1", "--kubeconfig",
                                        str(tmp_path / "absent"), "--health-listen", "nonsense"])
    assert result.exit_code == 2
    assert "health listen address 'nonsense': expected HOST:PORT" in result.output
    assert "absent" not in result.output  # refused before the kubeconfig was read


def test_settings_come_from_the_downward_api_and_prefixed_variables() -> None:
    runner = CliRunner(env={"NODE_NAME": "From_Env", "KUBEVIRT_USB_NODE_NAME": None})
    assert "'From_Env' is not a DNS subdomain" in runner.invoke(agent, []).output
    prefixed = CliRunner(env={"NODE_NAME": "ok", "KUBEVIRT_USB_RENEW_INTERVAL": "50"})
    assert "renew interval (50.0s) must be shorter" in prefixed.invoke(agent, []).output


def test_without_a_node_name_the_agent_says_where_to_give_it() -> None:
    result = CliRunner(env={"NODE_NAME": None, "KUBEVIRT_USB_NODE_NAME": None}).invoke(agent, [])
    assert result.exit_code == 2
    assert "--node-name or set NODE_NAME" in result.output


def test_a_missing_kubeconfig_stops_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(agent, ["--node-name", "node1", "--kubeconfig",
                                        str(tmp_path / "absent"), "--health-listen",
                                        "127.0.0.1:0"])
    assert result.exit_code == 1
    assert "the agent cannot start" in result.output
    assert "absent" in result.output


def _tree(root: Path) -> Path:
    tree = SysfsTree(root)
    tree.root_hub(1)
    for index in range(1, 4):
        tree.device(f"1-{index}", devnum=index + 1, serial=f"CLI{index}")
    return root


async def test_the_program_publishes_serves_health_and_stops_on_sigterm(
        tmp_path: Path, cluster: Emulator) -> None:
    (tmp_path / "usb.ids").write_text(USB_IDS_TEXT)
    port = Relay.free_port()
    env = {**os.environ, "NODE_NAME": "node-cli", "POD_NAMESPACE": NAMESPACE}
    command = [sys.executable, "-m", "kubevirt_usb.cli", "agent",
               "--kubeconfig", str(cluster.kubeconfig),
               "--sysfs-root", str(_tree(tmp_path / "sys")),
               "--usb-ids", str(tmp_path / "usb.ids"), "--health-listen", f"127.0.0.1:{port}",
               "--uevents", "none", "--restart-grace", "90"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    api = cluster.client()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=30, what="/readyz")
            assert (await http.get("/healthz")).text == "ok\n"
            metrics = (await http.get("/metrics")).text
        objects = (await api.list(USBDevice)).items
        heartbeat = await api.get(Lease, "kubevirt-usb-agent-node-cli", namespace=NAMESPACE)
    finally:
        await api.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert sorted(o["metadata"]["name"] for o in objects) == [
        "46f4-0001-cli1", "46f4-0001-cli2", "46f4-0001-cli3"]
    assert {o["status"]["node"] for o in objects} == {"node-cli"}
    assert 'kubevirt_usb_agent_devices{state="Available"} 3.0' in metrics
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    assert lines[0]["message"] == "agent started"
    # the node's usbredir library, for `kubectl usb doctor`: this machine's real one
    found = usbredir_version()
    assert found is not None
    assert lines[0]["usbredir"] == found.describe()
    assert heartbeat["metadata"]["annotations"] == {
        "usb.kubevirt-usb.io/usbredir-version": found.describe()}
    assert lines[-1]["message"] == "agent stopped"
    assert {line["node"] for line in lines if "device" in line} == {"node-cli"}
    after = cluster.client()
    try:  # stopped, it left its Lease counting for a restart
        left = await after.get(Lease, "kubevirt-usb-agent-node-cli", namespace=NAMESPACE)
    finally:
        await after.close()
    assert left["spec"]["leaseDurationSeconds"] == 90
    assert heartbeat["spec"]["leaseDurationSeconds"] == 40


@pytest.mark.skipif(glibc_mallopt() is None, reason="needs glibc's malloc")
def test_the_command_keeps_big_buffers_out_of_the_main_heap(tmp_path: Path) -> None:
    # asyncio reads every API socket into a 256 KiB buffer; carved from the main heap, they
    # fragment it a little more at each reconnect (kubevirt_usb.allocator).
    assert after_the_command(["agent", "--kubeconfig", str(tmp_path / "absent"),
                              "--node-name", "n1"]) == "mmapped"
