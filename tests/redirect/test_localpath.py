"""The node-local path's I/O against a fake host proc tree built in tmp_path: real directories,
real symbolic links, real unix sockets (a listener that says hello as QEMU does, one that never
accepts as a held slot does)."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevirt_usb.redirect.localpath import HostProc
from kubevirt_usb.redirect.pathchoice import (
    API,
    Launcher,
    Local,
    PathReason,
    SlotProbe,
)

VMI_UID = "6a1f4c2e-0b3d-4e5f-8a9b-0c1d2e3f4a5b"
POD_UID = "1234abcd-5678-4ef0-9abc-def012345678"
QEMU_HELLO = (struct.pack("<III", 0, 68, 0) + b"qemu usb-redir guest 7.2.22".ljust(64, b"\0")
              + struct.pack("<I", 0x7ff))
"""What QEMU's usb-redir sends first: a usbredir header (type hello = 0, length, id) and the hello
(version string, capabilities)."""
SYSTEMD_CGROUP = (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
                  f"{POD_UID.replace('-', '_')}.slice/cri-containerd-0a1b.scope\n")


class FakeHost:
    """A proc tree: /proc/<pid>/{cgroup,root}, each root a directory of its own."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc = base / "proc"
        self.proc.mkdir()
        self.listeners: list[socket.socket] = []
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def process(self, pid: int, *, cgroup: str, private: bool) -> Path:
        root = self.base / f"root-{pid}"
        root.mkdir()
        if private:
            (root / "run" / "kubevirt-private" / VMI_UID).mkdir(parents=True)
        (self.proc / str(pid)).mkdir()
        (self.proc / str(pid) / "cgroup").write_text(cgroup)
        (self.proc / str(pid) / "root").symlink_to(root)
        return root

    def slot_dir(self, pid: int) -> Path:
        return self.base / f"root-{pid}" / "run" / "kubevirt-private" / VMI_UID

    def qemu_slot(self, path: Path, *, greeting: bytes = QEMU_HELLO) -> None:
        """A listening socket that greets each client as QEMU's usb-redir chardev does (or with
        `greeting`; empty: it lets the client go at once)."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        self.listeners.append(server)

        server.settimeout(0.1)

        def serve() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = server.accept()
                except (TimeoutError, OSError):
                    continue
                if greeting:
                    conn.sendall(greeting)
                    self.listeners.append(conn)
                else:
                    conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.threads.append(thread)

    def held_slot(self, path: Path) -> None:
        """A listening socket that never accepts (QEMU while another client holds the slot)."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        self.listeners.append(server)

    def close(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join()
        for sock in self.listeners:
            sock.close()


@pytest.fixture
def host() -> Iterator[FakeHost]:
    # unix socket paths are limited to 107 bytes: pytest's tmp_path is too deep for them
    with tempfile.TemporaryDirectory(prefix="kvu-lp") as base:
        fake = FakeHost(Path(base))
        yield fake
        fake.close()


def proc(host: FakeHost) -> HostProc:
    return HostProc(root=host.proc, hello_timeout=0.5)


LAUNCHER = Launcher(pod="virt-launcher-vm1-abcde", pod_uid=POD_UID, pid=120,
                    owners=frozenset({os.getuid()}))


def test_the_pods_processes_are_found_by_cgroup_and_the_launcher_by_its_root(
        host: FakeHost) -> None:
    host.process(100, cgroup=SYSTEMD_CGROUP, private=False)  # the pause container
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    host.process(130, cgroup=f"0::/kubepods/besteffort/pod{POD_UID}/c\n", private=True)
    host.process(200, cgroup="0::/system.slice/kubelet.service\n", private=True)
    found = {(p.pid, p.has_private_dir) for p in proc(host).processes({POD_UID},
                                                                       vmi_uid=VMI_UID)}
    assert found == {(100, False), (120, True), (130, True)}


def test_the_highest_free_slot_is_connected_and_qemus_hello_is_left_for_the_engine(
        host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    for slot in range(4):
        host.qemu_slot(host.slot_dir(120) / f"virt-usbredir-{slot}")
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, Local)
    assert dialed.choice.slot == 3
    assert dialed.sock is not None
    with dialed.sock:
        assert dialed.sock.recv(len(QEMU_HELLO)) == QEMU_HELLO


def test_a_held_slot_is_passed_over(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    host.held_slot(host.slot_dir(120) / "virt-usbredir-3")
    host.qemu_slot(host.slot_dir(120) / "virt-usbredir-2")
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, Local)
    assert dialed.choice.slot == 2
    assert dialed.sock is not None
    dialed.sock.close()


@pytest.mark.parametrize("greeting", [b"", b"SSH-2.0-OpenSSH\r\n", b"\0\0\0\x01rest"],
                         ids=["let go at once", "another service", "not a hello"])
def test_a_slot_that_does_not_say_hello_is_not_taken(host: FakeHost, greeting: bytes) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    host.qemu_slot(host.slot_dir(120) / "virt-usbredir-3", greeting=greeting)
    host.qemu_slot(host.slot_dir(120) / "virt-usbredir-2")
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, Local)
    assert dialed.choice.slot == 2
    assert dialed.sock is not None
    dialed.sock.close()


def test_all_slots_held_is_no_free_slot(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    for slot in range(4):
        host.held_slot(host.slot_dir(120) / f"virt-usbredir-{slot}")
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.sock is None
    assert dialed.choice.reason is PathReason.NO_FREE_SLOT


def test_a_symlink_planted_at_the_slot_path_is_refused_and_never_connected(
        host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    elsewhere = host.base / "host-daemon.sock"
    host.qemu_slot(elsewhere)
    (host.slot_dir(120) / "virt-usbredir-3").symlink_to(elsewhere)
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.sock is None
    assert dialed.choice.reason is PathReason.SOCKET_IS_A_LINK
    assert len(host.listeners) == 1  # the planted target never accepted a client


def test_a_symlinked_directory_on_the_way_is_refused(host: FakeHost) -> None:
    root = host.process(120, cgroup=SYSTEMD_CGROUP, private=False)
    other = host.base / "other-vm" / VMI_UID
    other.mkdir(parents=True)
    host.qemu_slot(other / "virt-usbredir-3")
    (root / "run").mkdir()
    (root / "run" / "kubevirt-private").symlink_to(host.base / "other-vm")
    probe, sock = proc(host).probe(LAUNCHER, vmi_uid=VMI_UID, slot=3)
    assert (probe, sock) == (SlotProbe.IS_A_LINK, None)
    assert not proc(host).has_private_dir(120, VMI_UID)


def test_a_regular_file_at_the_slot_path_is_refused(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    (host.slot_dir(120) / "virt-usbredir-3").write_text("not a socket")
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.SOCKET_NOT_A_SOCKET


def test_a_missing_socket_is_socket_missing(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.SOCKET_MISSING


def test_a_socket_nobody_listens_on_is_socket_missing(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(host.slot_dir(120) / "virt-usbredir-3"))
    dead.close()  # the inode stays, nobody listens: QEMU exited
    probe, _ = proc(host).probe(LAUNCHER, vmi_uid=VMI_UID, slot=3)
    assert probe is SlotProbe.MISSING


def test_a_socket_owned_by_someone_outside_the_pod_is_refused(host: FakeHost) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the socket another owner")
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    path = host.slot_dir(120) / "virt-usbredir-3"
    host.qemu_slot(path)
    os.chown(path, 4242, 4242)
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.SOCKET_OWNER_MISMATCH


def test_a_pid_that_vanished_before_the_dial_is_launcher_process_gone(host: FakeHost) -> None:
    host.process(120, cgroup=SYSTEMD_CGROUP, private=True)
    (host.proc / "120" / "root").unlink()
    (host.proc / "120" / "cgroup").unlink()
    (host.proc / "120").rmdir()
    dialed = proc(host).dial(LAUNCHER, vmi_uid=VMI_UID)
    assert isinstance(dialed.choice, API)
    assert dialed.choice.reason is PathReason.LAUNCHER_PROCESS_GONE
    assert proc(host).processes({POD_UID}, vmi_uid=VMI_UID) == []
