"""The node-local lock on a port: real flock(2) on files in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubevirt_usb.redirect.lock import DeviceBusy, DeviceLock, LockHolder, lock_path


def test_a_second_taker_is_refused_and_told_who_holds_the_port(tmp_path: Path) -> None:
    first = DeviceLock(directory=tmp_path, port_path="2-1")
    first.acquire(owner="default/att1 -> vm1", pid=4242)
    with pytest.raises(DeviceBusy) as refused:
        DeviceLock(directory=tmp_path, port_path="2-1").acquire(owner="someone else")
    assert refused.value.holder == LockHolder(pid=4242, owner="default/att1 -> vm1")
    assert "already streamed by default/att1 -> vm1 (pid 4242)" in str(refused.value)


def test_releasing_lets_the_next_one_in(tmp_path: Path) -> None:
    first = DeviceLock(directory=tmp_path, port_path="2-1")
    first.acquire(owner="a")
    first.release()
    second = DeviceLock(directory=tmp_path, port_path="2-1")
    second.acquire(owner="b")
    assert second.held
    assert second.holder() == LockHolder(pid=os.getpid(), owner="b")


def test_other_ports_are_independent(tmp_path: Path) -> None:
    DeviceLock(directory=tmp_path, port_path="2-1").acquire(owner="a")
    other = DeviceLock(directory=tmp_path, port_path="2-2")
    other.acquire(owner="b")
    assert other.held


def test_a_copy_of_the_descriptor_keeps_it_held(tmp_path: Path) -> None:
    lock = DeviceLock(directory=tmp_path, port_path="2-1")
    lock.acquire(owner="agent")
    worker_copy = os.dup(lock.fileno())  # what the engine worker gets over SCM_RIGHTS
    lock.release()
    with pytest.raises(DeviceBusy):
        DeviceLock(directory=tmp_path, port_path="2-1").acquire(owner="late")
    os.close(worker_copy)
    DeviceLock(directory=tmp_path, port_path="2-1").acquire(owner="late")


def test_a_crashed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from kubevirt_usb.redirect.lock import DeviceLock\n"
        f"DeviceLock(directory=Path({str(tmp_path)!r}), port_path='2-1').acquire(owner='x')\n"
        "print('held', flush=True)\n"
        "os._exit(9)\n"  # no cleanup at all
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.stdout.strip() == "held"
    assert done.returncode == 9
    lock = DeviceLock(directory=tmp_path, port_path="2-1")
    lock.acquire(owner="after the crash")
    assert lock.held


def test_only_port_paths_name_lock_files(tmp_path: Path) -> None:
    assert lock_path(tmp_path, "3-1.4") == tmp_path / "usb-3-1.4.lock"
    with pytest.raises(ValueError, match="not a USB port path"):
        lock_path(tmp_path, "../etc/passwd")
