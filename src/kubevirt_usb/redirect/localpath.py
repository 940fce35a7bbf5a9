"""The node-local path's I/O: the host's processes (under an injected proc root, default `/proc`),
their cgroups, and the VMI's slot sockets inside the launcher's root, opened without following a
single link and connected through the opened inode. Decisions are `redirect.pathchoice`.

The launcher's file system belongs to the tenant: any component of
`run/kubevirt-private/<vmi uid>/virt-usbredir-<n>` may be a link planted to make the agent connect
elsewhere (another VM's slot, a host daemon's socket). So, as KubeVirt's `safepath` does, the walk
starts from an `O_PATH` descriptor of `<proc>/<pid>/root` and opens each component relative to the
previous one with `O_PATH|O_NOFOLLOW`; the last one must be a socket (fstat on the descriptor)
owned by one of the pod's processes, and the connect goes to `/proc/self/fd/<n>`, which names
that very inode: nothing can be swapped in between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubevirt_usb.redirect.pathchoice import (
    PRIVATE_DIR,
    Choice,
    Launcher,
    ProcessView,
    SlotProbe,
    choose_slot,
    direct_slot_order,
    pod_uid_from_cgroup,
    slot_socket,
)

HELLO_TIMEOUT = 3.0
"""Seconds to wait for QEMU's usbredir hello before a slot counts as held by another client."""
HELLO_TYPE = (0).to_bytes(4, "little")
"""The first field of the first message QEMU sends a client it serves: the usbredir header's
type, `usb_redir_hello` (0), little-endian."""
PARTIAL_WAIT = 0.01

_DIR = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_LEAF = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ESRCH)


class ProcessGone(Exception):
    """The process exited while it was looked at."""


@dataclass(frozen=True)
class Dialed:
    """A slot socket connected on the local path (the caller owns `sock`)."""

    choice: Choice
    sock: socket.socket | None


@dataclass(frozen=True, kw_only=True)
class HostProc:
    """The host's processes as a proc file system at `root` shows them."""

    root: Path = Path("/proc")
    self_fd_dir: Path = Path("/proc/self/fd")
    """Where this process's descriptors are named (the connect goes through it)."""
    hello_timeout: float = HELLO_TIMEOUT

    def processes(self, pod_uids: Collection[str], *, vmi_uid: str) -> list[ProcessView]:
        """Every process whose cgroup names one of `pod_uids`; processes that exit meanwhile are
        left out."""
        found: list[ProcessView] = []
        for pid in self._pids():
            try:
                pod_uid = pod_uid_from_cgroup((self.root / str(pid) / "cgroup").read_text())
                if pod_uid is None or pod_uid not in pod_uids:
                    continue
                owner = os.stat(self.root / str(pid)).st_uid
            except OSError:
                continue
            found.append(ProcessView(pid=pid, pod_uid=pod_uid, uid=owner,
                                     has_private_dir=self.has_private_dir(pid, vmi_uid)))
        return found

    def _pids(self) -> Iterator[int]:
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            if name.isdigit():
                yield int(name)

    def has_private_dir(self, pid: int, vmi_uid: str) -> bool:
        try:
            with self._root_fd(pid) as root:
                fd = _walk(root, (*PRIVATE_DIR, vmi_uid))
        except (OSError, ProcessGone):
            return False
        os.close(fd)
        return True

    @contextlib.contextmanager
    def _root_fd(self, pid: int) -> Iterator[int]:
        """An O_PATH descriptor of the process's root (the one link followed: /proc's own)."""
        try:
            fd = os.open(self.root / str(pid) / "root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in _GONE:
                raise ProcessGone(str(pid)) from exc
            raise
        try:
            yield fd
        finally:
            os.close(fd)

    def probe(self, launcher: Launcher, *, vmi_uid: str,
              slot: int) -> tuple[SlotProbe, socket.socket | None]:
        """Open slot `slot` of the launcher without following links and connect to it; the
        connected socket only when the slot is FREE."""
        try:
            with self._root_fd(launcher.pid) as root:
                parts = slot_socket(vmi_uid, slot)
                try:
                    parent = _walk(root, parts[:-1])
                except OSError as exc:
                    return _walk_failure(exc), None
                try:
                    leaf = os.open(parts[-1], _LEAF, dir_fd=parent)
                except OSError as exc:
                    return _walk_failure(exc), None
                finally:
                    os.close(parent)
                try:
                    return self._connect(leaf, launcher)
                finally:
                    os.close(leaf)
        except ProcessGone:
            return SlotProbe.PROCESS_GONE, None
        except OSError:
            return SlotProbe.MISSING, None

    def _connect(self, leaf: int, launcher: Launcher) -> tuple[SlotProbe, socket.socket | None]:
        st = os.fstat(leaf)
        if stat.S_ISLNK(st.st_mode):
            return SlotProbe.IS_A_LINK, None
        if not stat.S_ISSOCK(st.st_mode):
            return SlotProbe.NOT_A_SOCKET, None
        if st.st_uid not in launcher.owners:
            return SlotProbe.OWNER_MISMATCH, None
        if not (self.root / str(launcher.pid)).exists():
            return SlotProbe.PROCESS_GONE, None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            sock.connect(str(self.self_fd_dir / str(leaf)))
        except (BlockingIOError, InterruptedError):
            sock.close()  # a full listen backlog: someone holds the slot and more are queued
            return SlotProbe.HELD, None
        except ConnectionRefusedError:
            sock.close()  # nobody listens: QEMU is gone or not ready
            return SlotProbe.MISSING, None
        except OSError:
            sock.close()
            return SlotProbe.MISSING, None
        if not _says_hello(sock, self.hello_timeout):
            sock.close()
            return SlotProbe.HELD, None
        sock.setblocking(True)
        return SlotProbe.FREE, sock

    def dial(self, launcher: Launcher, *, vmi_uid: str) -> Dialed:
        """The highest free slot, connected; or why the local path is not taken."""
        probes: list[tuple[int, SlotProbe]] = []
        for slot in direct_slot_order():
            probe, sock = self.probe(launcher, vmi_uid=vmi_uid, slot=slot)
            probes.append((slot, probe))
            if probe is not SlotProbe.HELD:
                return Dialed(choose_slot(launcher, vmi_uid=vmi_uid, probes=probes), sock)
        return Dialed(choose_slot(launcher, vmi_uid=vmi_uid, probes=probes), None)


class _Refused(OSError):
    """A component of the walk is not a plain directory."""

    def __init__(self, probe: SlotProbe) -> None:
        super().__init__(probe.value)
        self.probe = probe


def _walk(root: int, parts: tuple[str, ...]) -> int:
    """An O_PATH descriptor of the directory `parts` below `root`, no link followed: a link (or
    anything but a directory) in the way raises `_Refused` saying what it is."""
    fd = os.dup(root)
    for part in parts:
        try:
            nxt = os.open(part, _DIR, dir_fd=fd)
        except OSError as exc:
            refused = _what_is(fd, part) if exc.errno in (errno.ELOOP, errno.ENOTDIR) else None
            os.close(fd)
            if refused is not None:
                raise _Refused(refused) from exc
            raise
        os.close(fd)
        fd = nxt
    return fd


def _what_is(dir_fd: int, name: str) -> SlotProbe:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return SlotProbe.MISSING
    return SlotProbe.IS_A_LINK if stat.S_ISLNK(st.st_mode) else SlotProbe.NOT_A_SOCKET


def _walk_failure(exc: OSError) -> SlotProbe:
    if isinstance(exc, _Refused):
        return exc.probe
    if exc.errno == errno.ESRCH:
        return SlotProbe.PROCESS_GONE
    return SlotProbe.MISSING


def _says_hello(sock: socket.socket, timeout: float) -> bool:
    """Whether QEMU's usbredir hello arrives within `timeout`: the first bytes a usb-redir
    chardev sends a client it serves are a usbredir header of type `hello`. They are peeked, so
    they stay in the socket for the usbredir host.

    Anything else is not a hello and the slot counts as held: silence (QEMU serves one client
    per slot and leaves another's connection in its listen queue, unanswered, while the slot is
    held), an end (a connection let go at once), other bytes, an error. An unsure slot is never
    taken: a wrong "held" costs a lower slot or a retry, a wrong "free" hangs another user."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        if not poller.poll(max(1, int(left * 1000))):
            return False
        try:
            head = sock.recv(len(HELLO_TYPE), socket.MSG_PEEK)
        except OSError:
            return False
        if not head or not HELLO_TYPE.startswith(head):
            return False
        if len(head) == len(HELLO_TYPE):
            return True
        time.sleep(PARTIAL_WAIT)  # part of the header is in: the rest is on its way
    return False
