"""The node-local exclusive lock on the device in one USB port: `flock(LOCK_EX | LOCK_NB)` on
`<directory>/usb-<port path>.lock` (default directory /run/kubevirt-usb/locks; the agent's pod
mounts the host's /run/kubevirt-usb so every agent and tool on the node shares it).

The lock belongs to the open file, not to a process or thread: it is held while any process keeps
the descriptor open (the agent and its engine worker both do), and the kernel drops it when the
last one closes or dies, crash included. Nothing has to be cleaned up and no stale lock survives.
The holder writes who it is into the file, so a refused stream can say who has the device.

It cannot stop what does not take it: `usbredirect`/`virtctl usbredir` run by hand, another
program opening /dev/bus/usb directly, a kernel driver, KubeVirt host-device passthrough, or an
agent that sees a different /run. Those show up later, as a claim that fails when streaming starts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIRECTORY = Path("/run/kubevirt-usb/locks")
_PORT = re.compile(r"[0-9]+-[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True, kw_only=True)
class LockHolder:
    """Who holds a device: a process and what it streams the device for."""

    pid: int
    owner: str

    def describe(self) -> str:
        return f"{self.owner} (pid {self.pid})" if self.owner else f"pid {self.pid}"


class DeviceBusy(Exception):
    """Another stream holds the device in this port."""

    def __init__(self, port_path: str, holder: LockHolder | None) -> None:
        who = holder.describe() if holder else "another process"
        super().__init__(f"the device in port {port_path} is already streamed by {who}")
        self.port_path = port_path
        self.holder = holder


def lock_path(directory: Path, port_path: str) -> Path:
    """The lock file of a port; ValueError for anything that is not a port path."""
    if not _PORT.fullmatch(port_path):
        raise ValueError(f"not a USB port path: {port_path!r}")
    return directory / f"usb-{port_path}.lock"


class DeviceLock:
    """The lock of one port; `acquire()` or DeviceBusy, `release()` (idempotent)."""

    def __init__(self, *, directory: Path = DEFAULT_DIRECTORY, port_path: str) -> None:
        self.port_path = port_path
        self.path = lock_path(directory, port_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def fileno(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"the lock of port {self.port_path} is not held")
        return self._fd

    def acquire(self, *, owner: str, pid: int | None = None) -> None:
        """Take the lock without waiting; DeviceBusy (naming the holder) if someone has it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DeviceBusy(self.port_path, holder) from None
            raise
        record = json.dumps({"pid": os.getpid() if pid is None else pid, "owner": owner})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with the next taker)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def holder(self) -> LockHolder | None:
        """Who the file says holds the lock (the last holder if nobody holds it now)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            return _read_holder(fd)
        finally:
            os.close(fd)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        raw = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("pid"), int):
        return None
    return LockHolder(pid=raw["pid"], owner=str(raw.get("owner") or ""))
