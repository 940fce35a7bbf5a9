"""The cluster in a box, end to end: the stock tool's chain through the virt-api emulator into a VM
guest, hot-plug through QMP, and every refusal of the usbredir subresource with a real VM behind it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from kubevirt_usb.sandbox.demo import redirect_with_usbredirect
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.stream.endpoint import load_kubeconfig
from kubevirt_usb.stream.failures import HandshakeRejected
from kubevirt_usb.stream.usbredir_client import UsbredirConnection, open_usbredir

pytestmark = [pytest.mark.qemu, pytest.mark.real_apiserver]


def _redirect(sandbox: SandboxHarness, serial_or_id: str, *, vm: str) -> Any:
    namespace, _, name = vm.partition("/")
    device = sandbox.sandbox.device("node1", serial_or_id)
    return sandbox.run(redirect_with_usbredirect(sandbox.sandbox, node="node1", device=device,
                                                 namespace=namespace, vm=name))


def test_stock_usbredirect_streams_the_serial_adapter_into_vm1(sandbox: SandboxHarness) -> None:
    redirect = _redirect(sandbox, "FT0001", vm="default/vm1")
    try:
        sandbox.wait_vm_sees("default/vm1", "FT0001")
        assert sandbox.sandbox.virtapi.active_slots(namespace="default", name="vm1") == (0,)
    finally:
        sandbox.run(redirect.stop())
    sandbox.wait_vm_loses("default/vm1", "FT0001")
    sandbox.wait_until(lambda: not sandbox.sandbox.virtapi.active_slots(
        namespace="default", name="vm1"), within=10, what="the slot to be freed")


def test_stock_usbredirect_streams_a_stick_into_vm1(sandbox: SandboxHarness) -> None:
    # Debian's usbredirect 0.13.0 opens the FIRST device with the vendor:product it is given, so
    # with both identical sticks plugged it cannot be told to take AAA2: take AAA1 out first.
    sandbox.unplug("AAA1", node="node1")
    redirect = _redirect(sandbox, "AAA2", vm="default/vm1")
    try:
        sandbox.wait_vm_sees("default/vm1", "AAA2")
        disk = sandbox.wait_vm_disk("default/vm1", "AAA2", within=30)
        assert disk.size_bytes == 64 * 1024 * 1024
    finally:
        sandbox.run(redirect.stop())
        sandbox.plug("AAA1", into="node1")
    sandbox.wait_vm_loses("default/vm1", "AAA2")


def test_unplug_and_plug_show_in_the_nodes_sysfs(sandbox: SandboxHarness) -> None:
    sandbox.unplug("AAA2", node="node1")
    sandbox.wait_until(lambda: not sandbox.node_has("node1", "AAA2"), within=10,
                       what="AAA2 to leave node1's sysfs")
    port = sandbox.plug("AAA2", into="node1")
    sandbox.wait_until(lambda: sandbox.node_has("node1", "AAA2"), within=10,
                       what="AAA2 to return to node1's sysfs")
    assert port == "2"  # back into the port it came from
    listing = sandbox.on_node("node1", "cat /sys/bus/usb/devices/2-2/serial").check()
    assert listing.output.strip() == "AAA2"


# ---- the usbredir subresource's refusals, with the VMIs the sandbox mirrors --------------------


async def _open(sandbox: SandboxHarness, vmi: str, *, namespace: str = "default"
                ) -> UsbredirConnection:
    endpoint = load_kubeconfig(sandbox.kubeconfig)
    return await open_usbredir(endpoint, namespace=namespace, vmi=vmi, connect_timeout=10)


def _refusal(sandbox: SandboxHarness, vmi: str, *, namespace: str = "default"
             ) -> HandshakeRejected:
    with pytest.raises(HandshakeRejected) as caught:
        sandbox.run(_open(sandbox, vmi, namespace=namespace))
    return caught.value


def test_a_missing_vmi_is_404(sandbox: SandboxHarness) -> None:
    error = _refusal(sandbox, "nope")
    assert error.status_code == 404
    assert str(error) == 'virtualmachineinstance.kubevirt.io "nope" not found'


def test_a_vmi_without_client_passthrough_is_409(sandbox: SandboxHarness) -> None:
    error = _refusal(sandbox, "vm2")
    assert error.status_code == 409
    assert str(error) == ('Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io '
                          '"vm2": Not configured with USB Redirection')


def test_a_vmi_that_is_not_running_is_400(sandbox: SandboxHarness) -> None:
    vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"name": "pending", "namespace": "default"},
           "spec": {"domain": {"devices": {"clientPassthrough": {}}}}}
    sandbox.create_object(vmi)
    error = _refusal(sandbox, "pending")
    assert error.status_code == 400
    assert str(error) == "VMI is not running"


def test_a_fifth_stream_to_one_vmi_is_refused_as_kubevirt_refuses_it(
        sandbox: SandboxHarness) -> None:
    async def four_then_fifth() -> tuple[list[int], HandshakeRejected | None]:
        opened: list[UsbredirConnection] = []
        try:
            for _ in range(4):
                opened.append(await _open(sandbox, "vm1"))
            slots = list(sandbox.sandbox.virtapi.active_slots(namespace="default", name="vm1"))
            try:
                extra = await _open(sandbox, "vm1")
            except HandshakeRejected as refused:
                return slots, refused
            await extra.close()
            return slots, None
        finally:
            for conn in opened:
                with contextlib.suppress(Exception):
                    await conn.close()

    slots, refused = sandbox.run(four_then_fifth())
    assert slots == [0, 1, 2, 3]
    assert refused is not None
    assert refused.status_code == 500
    assert str(refused) == ("Internal error occurred: Can't connect to websocket (503): "
                            "websocket: bad handshake")
    sandbox.wait_until(lambda: not sandbox.sandbox.virtapi.active_slots(
        namespace="default", name="vm1"), within=10, what="all four slots to be freed")


def test_a_user_without_usbredir_rights_is_forbidden(sandbox: SandboxHarness) -> None:
    token = sandbox.user_token("mallory")

    async def attempt() -> None:
        endpoint = load_kubeconfig(sandbox.write_kubeconfig(
            sandbox.kubeconfig.with_name("mallory.kubeconfig"), token=token))
        await open_usbredir(endpoint, namespace="default", vmi="vm1", connect_timeout=10)

    with pytest.raises(HandshakeRejected) as caught:
        sandbox.run(attempt())
    assert caught.value.status_code == 403


def test_restarting_a_vm_gives_its_vmi_a_new_uid(sandbox: SandboxHarness) -> None:
    with sandbox.http() as http:
        before = http.get("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/vm1"
                          ).json()["metadata"]["uid"]
    new_uid = sandbox.restart_vm("default/vm1")
    with sandbox.http() as http:
        vmi = http.get("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/vm1"
                       ).json()
    assert new_uid != before
    assert vmi["metadata"]["uid"] == new_uid
    assert vmi["status"]["phase"] == "Running"
    assert sandbox.in_vm("default/vm1", "echo alive").output.strip() == "alive"
    pods = _launcher_pods(sandbox)
    assert before not in pods  # the old VMI's launcher Pod is gone, its stand-in too
    assert pods[new_uid]["spec"]["nodeName"] == "node1"
    assert _slot_names(sandbox, "default/vm1") == [f"virt-usbredir-{n}" for n in range(4)]
    assert not sandbox.on_node("node1", f"ls -d /host/run/kvu-launchers/*/root/run/"
                                        f"kubevirt-private/{before}").ok


# ---- the VMIs' launchers on their nodes (what a node agent finds for the local path) -----------


def _launcher_pods(sandbox: SandboxHarness) -> dict[str, dict[str, Any]]:
    """virt-launcher Pods by the VMI uid they were created for (label kubevirt.io/created-by)."""
    with sandbox.http() as http:
        pods = http.get("/api/v1/namespaces/default/pods",
                        params={"labelSelector": "kubevirt.io=virt-launcher"}).json()["items"]
    return {p["metadata"]["labels"]["kubevirt.io/created-by"]: p for p in pods}


def _vmi_uid(sandbox: SandboxHarness, vm: str) -> str:
    with sandbox.http() as http:
        vmi = http.get(f"/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/{vm}")
    uid: str = vmi.json()["metadata"]["uid"]
    return uid


def _slot_names(sandbox: SandboxHarness, vm: str) -> list[str]:
    """The slot sockets (`s` in ls -l) under the launcher process's root, seen from its node."""
    launcher = sandbox.launcher(vm)
    listing = sandbox.on_node(sandbox.vm_node(vm), f"ls -l /proc/{launcher.pid}/root/run/"
                              f"kubevirt-private/{launcher.vmi_uid}/").check().output
    return sorted(line.split()[-1] for line in listing.splitlines() if line.startswith("s"))


def test_each_vmi_has_a_running_launcher_pod_on_its_node(sandbox: SandboxHarness) -> None:
    pods = _launcher_pods(sandbox)
    placed = {vm: pods[_vmi_uid(sandbox, vm)] for vm in ("vm1", "vm2", "vm3")}
    assert {vm: p["spec"]["nodeName"] for vm, p in placed.items()} == {
        "vm1": "node1", "vm2": "node1", "vm3": "node2"}
    assert {p["status"]["phase"] for p in placed.values()} == {"Running"}
    assert all(p["metadata"]["name"].startswith(f"virt-launcher-{vm}-")
               for vm, p in placed.items())


def test_the_launcher_process_sits_in_its_pods_cgroup_with_the_slots_under_its_root(
        sandbox: SandboxHarness) -> None:
    launcher = sandbox.launcher("default/vm1")
    pod = _launcher_pods(sandbox)[_vmi_uid(sandbox, "vm1")]
    assert launcher.pod_uid == pod["metadata"]["uid"]
    systemd = pod["metadata"]["uid"].replace("-", "_")
    for pid in (launcher.pid, launcher.pause_pid):
        cgroup = sandbox.on_node("node1", f"cat /proc/{pid}/cgroup").check().output
        assert cgroup.strip() == f"0::/kubepods.slice/kubepods-pod{systemd}.slice"
    assert _slot_names(sandbox, "default/vm1") == [f"virt-usbredir-{n}" for n in range(4)]
    # the pause process's root does not hold the VMI's directory; vm2 has no slots (no
    # clientPassthrough) and node2 has no launcher for vm1
    assert not sandbox.on_node("node1", f"ls -d /proc/{launcher.pause_pid}/root/run/"
                                        f"kubevirt-private/{launcher.vmi_uid}").ok
    assert _slot_names(sandbox, "default/vm2") == []
    assert not sandbox.on_node("node2", f"ls -d /host/run/kvu-launchers/*/root/run/"
                                        f"kubevirt-private/{launcher.vmi_uid}").ok


_HELLO = ("import os, socket; os.chdir({directory!r}); s = socket.socket(socket.AF_UNIX); "
          "s.connect('virt-usbredir-3'); s.settimeout(30); print(s.recv(200))")


def test_a_launcher_slot_socket_reaches_the_vms_usbredir_slot(sandbox: SandboxHarness) -> None:
    launcher = sandbox.launcher("default/vm1")
    node = sandbox.sandbox.node("node1")
    # relative to the directory: the full path is longer than a unix socket address may be
    directory = f"/proc/{launcher.pid}/root/run/kubevirt-private/{launcher.vmi_uid}"
    script = _HELLO.format(directory=directory)
    hello = sandbox.on_node("node1", node.python_command(["-c", script])).check().output
    assert "usb-redir" in hello  # QEMU's usbredir hello, from the VM guest's slot 3


def test_a_link_planted_at_a_slot_stays_until_the_launcher_is_recreated(
        sandbox: SandboxHarness) -> None:
    before = sandbox.launcher("default/vm1").pid
    path = sandbox.plant_at_slot("default/vm1", slot=3, kind="symlink", target="/etc/passwd")
    link = sandbox.on_node("node1", f"readlink /host{path}").check().output
    assert link.strip() == "/etc/passwd"
    assert _slot_names(sandbox, "default/vm1") == [f"virt-usbredir-{n}" for n in range(3)]
    pid = sandbox.recreate_launcher("default/vm1")
    assert pid != before
    assert not sandbox.on_node("node1", f"[ -e /proc/{before} ]").ok
    assert _slot_names(sandbox, "default/vm1") == [f"virt-usbredir-{n}" for n in range(4)]


def test_the_api_mirrors_the_guests(sandbox: SandboxHarness) -> None:
    listing = sandbox.kubectl("get", "vmis", "-n", "default", "--no-headers").stdout
    rows = {line.split()[0]: line.split() for line in listing.splitlines()}
    # AGE PHASE IP NODENAME READY, where IP is blank: the guests have no pod network
    assert rows["vm1"][2:] == ["Running", "node1", "True"]
    assert rows["vm2"][2:] == ["Running", "node1", "True"]
    assert rows["vm3"][2:] == ["Running", "node2", "True"]
    vms = sandbox.kubectl("get", "vms", "-n", "default", "--no-headers").stdout.splitlines()
    assert sorted(line.split()[::2] for line in vms) == [["vm1", "Running"], ["vm2", "Running"],
                                                         ["vm3", "Running"]]
    assert all(line.split()[-1] == "True" for line in vms)  # READY
    nodes = sandbox.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
    assert [line.split()[:2] for line in nodes] == [["node1", "Ready"], ["node2", "Ready"]]
