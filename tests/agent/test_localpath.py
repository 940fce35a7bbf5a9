"""The agent's node-local path for one binding: API objects in (a fake look-up), a fake host proc
tree with a real listening slot socket, the choice and the connected socket out."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubevirt_usb.agent.localpath import LauncherObjects, LocalPathSettings, dial
from kubevirt_usb.kube.errors import Unavailable
from kubevirt_usb.redirect.localpath import HELLO_TYPE
from kubevirt_usb.redirect.pathchoice import API, Local, PathReason

VMI_UID = "6a1f4c2e-0b3d-4e5f-8a9b-0c1d2e3f4a5b"
POD_UID = "1234abcd-5678-4ef0-9abc-def012345678"


def vmi(node: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": "vm1", "uid": VMI_UID},
            "status": {"phase": "Running", "nodeName": node}}


QEMU_HELLO = HELLO_TYPE + b"\x44\0\0\0\0\0\0\0qemu usb-redir guest 7.2.22"
"""The start of what QEMU's usb-redir sends a client it serves: a usbredir hello."""
POD = {"metadata": {"name": "virt-launcher-vm1-abcde", "uid": POD_UID,
                    "labels": {"kubevirt.io/created-by": VMI_UID}},
       "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}}


def launcher_tree(base: Path) -> tuple[Path, Path]:
    """A host proc tree under `base` with the launcher as pid 120: (proc, its slot directory)."""
    root = base / "root"
    slots = root / "run" / "kubevirt-private" / VMI_UID
    slots.mkdir(parents=True)
    proc = base / "proc"
    (proc / "120").mkdir(parents=True)
    (proc / "120" / "cgroup").write_text(f"0::/kubepods/pod{POD_UID}/c\n")
    (proc / "120" / "root").symlink_to(root)
    return proc, slots


@pytest.fixture
def host_proc() -> Iterator[Path]:
    """/proc/120 of the launcher, its root holding slot 3 served as QEMU serves it."""
    with tempfile.TemporaryDirectory(prefix="kvu-lp") as base:
        proc, slots = launcher_tree(Path(base))
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(slots / "virt-usbredir-3"))
        server.listen(1)
        accepted: list[socket.socket] = []

        def greet() -> None:
            conn, _ = server.accept()
            conn.sendall(QEMU_HELLO)
            accepted.append(conn)

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        yield proc
        if thread.is_alive():  # never dialed: wake the accept
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
                wake.connect(str(slots / "virt-usbredir-3"))
                thread.join()
        server.close()
        for conn in accepted:
            conn.close()


def look_up(found: LauncherObjects) -> Any:
    async def answer(namespace: str, vm: str) -> LauncherObjects:
        assert (namespace, vm) == ("default", "vm1")
        return found

    return answer


async def test_the_vm_on_this_node_gets_its_highest_slot_directly(host_proc: Path) -> None:
    dialed = await dial(node="node1", settings=LocalPathSettings(host_proc=host_proc),
                        look_up=look_up((vmi("node1"), [POD])), namespace="default", vm="vm1")
    assert isinstance(dialed.choice, Local)
    assert (dialed.choice.slot, dialed.choice.pid) == (3, 120)
    assert dialed.sock is not None
    with dialed.sock:
        assert dialed.sock.recv(len(QEMU_HELLO)) == QEMU_HELLO


async def test_the_vm_on_another_node_goes_through_the_api(host_proc: Path) -> None:
    dialed = await dial(node="node1", settings=LocalPathSettings(host_proc=host_proc),
                        look_up=look_up((vmi("node2"), [POD])), namespace="default", vm="vm1")
    assert dialed.choice == API(reason=PathReason.VMI_ON_OTHER_NODE, message=(
        "VMI default/vm1 runs on node node2, the device is on node node1: streaming through the "
        "API server."))
    assert dialed.sock is None


async def test_switched_off_asks_nothing() -> None:
    async def never(namespace: str, vm: str) -> LauncherObjects:
        raise AssertionError("asked the API")

    dialed = await dial(node="node1", settings=LocalPathSettings(enabled=False), look_up=never,
                        namespace="default", vm="vm1")
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.LOCAL_PATH_DISABLED


async def test_an_api_that_cannot_be_asked_means_the_api_path(host_proc: Path) -> None:
    async def down(namespace: str, vm: str) -> LauncherObjects:
        raise Unavailable("connection refused")

    dialed = await dial(node="node1", settings=LocalPathSettings(host_proc=host_proc),
                        look_up=down, namespace="default", vm="vm1")
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.LAUNCHER_NOT_FOUND
    assert "connection refused" in dialed.choice.message


async def test_a_dial_cancelled_midway_lets_the_slot_go() -> None:
    """The binding ends while the thread waits for QEMU's hello: once the hello comes, the
    connected socket is closed at once instead of holding the slot."""
    with tempfile.TemporaryDirectory(prefix="kvu-lp") as base:
        proc, slots = launcher_tree(Path(base))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(slots / "virt-usbredir-3"))
            server.listen(1)
            task = asyncio.create_task(dial(
                node="node1", settings=LocalPathSettings(host_proc=proc, hello_timeout=30),
                look_up=look_up((vmi("node1"), [POD])), namespace="default", vm="vm1"))
            conn, _ = await asyncio.to_thread(server.accept)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with conn:
                conn.sendall(QEMU_HELLO)
                conn.settimeout(30)
                try:  # closed with the hello unread: a reset, else an end of file
                    got = await asyncio.to_thread(conn.recv, 10)
                except ConnectionResetError:
                    got = b""
                assert got == b""  # the agent's end is closed: the slot is free
