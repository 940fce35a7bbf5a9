"""The field notes' job in the cluster in a box, with nothing but `kubectl usb`: find the two
identical sticks, attach one by serial, see the VM get exactly that stick, be refused when
another VM asks for it (naming the holder), detach it, and see it free again.

Needs the agent (publishing USBDevices and streaming) and the controller (binding) running in
the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from kubevirt_usb.sandbox.harness import SandboxHarness

pytestmark = [pytest.mark.qemu, pytest.mark.real_apiserver]

BIN = Path(sys.executable).parent


def kubectl_usb(sandbox: SandboxHarness, *args: str,
                plugin: bool = False) -> subprocess.CompletedProcess[str]:
    """The installed command, as `kubectl-usb ...` or through kubectl as `kubectl usb ...`."""
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    argv = ["kubectl", "usb", *args] if plugin else [str(BIN / "kubectl-usb"), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def sticks(sandbox: SandboxHarness) -> dict[str, dict[str, str]]:
    """The published sticks by serial: name, port, who uses them."""
    listed = kubectl_usb(sandbox, "list", "--id", "46f4:0001", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return {d["status"]["serial"]: {"name": d["metadata"]["name"],
                                    "port": d["status"]["portPath"],
                                    "used-by": (d["spec"].get("claimRef") or {}).get("vm", "")}
            for d in json.loads(listed.stdout)["items"] if (d.get("status") or {}).get("serial")}


def test_the_field_notes_with_only_kubectl_usb(sandbox: SandboxHarness) -> None:
    sandbox.wait_until(lambda: {"AAA1", "AAA2"} <= set(sticks(sandbox)), within=90,
                       what="the agent to publish AAA1 and AAA2 as USBDevices")

    # list shows both identical sticks distinctly
    found = sticks(sandbox)
    assert found["AAA1"]["name"] != found["AAA2"]["name"]
    assert found["AAA1"]["port"] != found["AAA2"]["port"]
    table = kubectl_usb(sandbox, "list", plugin=True)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert "AAA1" in rows[found["AAA1"]["name"]]
    assert "AAA2" in rows[found["AAA2"]["name"]]

    # a cluster admin lets namespace default use AAA1 (the form the controller's message shows)
    allowed = kubectl_usb(sandbox, "allow", "--namespace", "default", "--serial", "AAA1")
    assert allowed.returncode == 0, allowed.stderr

    # attach by serial: vm1 sees that stick, not its twin
    attached = kubectl_usb(sandbox, "attach", "--serial", "AAA1", "vm1", "--wait",
                           "--timeout", "3m", plugin=True)
    assert attached.returncode == 0, attached.stderr
    sandbox.wait_vm_sees("default/vm1", "AAA1", within=60)
    assert not sandbox.vm_sees("default/vm1", "AAA2")
    status = kubectl_usb(sandbox, "status", "vm1", "-o", "json")
    [attachment] = json.loads(status.stdout)["items"]
    assert attachment["status"]["phase"] == "Attached"
    assert attachment["status"]["device"] == found["AAA1"]["name"]
    # vm1 runs on node1, where AAA1 is plugged: the agent streams on the node-local path
    st = attachment["status"]
    assert (st["path"], st["pathReason"], st["slot"], st["slotKind"]) == (
        "Local", "SameNode", 3, "Direct"), st
    wide = kubectl_usb(sandbox, "status", "vm1", "-o", "wide", plugin=True).stdout.splitlines()
    assert wide[0].split()[5] == "PATH"
    assert wide[1].split()[5] == "Local"
    assert wide[1].split()[-3:] == ["SameNode", "3", "(Direct)"]

    # the same stick for another VM: refused, naming the holder
    refused = kubectl_usb(sandbox, "attach", "--serial", "AAA1", "vm2")
    assert refused.returncode == ExitCode.REFUSED
    assert refused.stderr.count("\n") == 1
    assert "is in use by VM default/vm1" in refused.stderr

    # detach frees it
    detached = kubectl_usb(sandbox, "detach", "vm1", "--timeout", "2m", plugin=True)
    assert detached.returncode == 0, detached.stderr
    assert sticks(sandbox)["AAA1"]["used-by"] == ""
    sandbox.wait_vm_loses("default/vm1", "AAA1", within=60)
    free = kubectl_usb(sandbox, "list", "--available", "--serial", "AAA1", "-o", "name")
    assert free.stdout.strip() == f"usbdevice.usb.kubevirt-usb.io/{found['AAA1']['name']}"
