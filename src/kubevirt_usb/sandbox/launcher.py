"""A VMI's virt-launcher as a node agent sees it on its node, in the cluster in a box.

On a real node the VM's QEMU runs inside the virt-launcher pod; its usb-redir slots are unix
sockets `run/kubevirt-private/<vmi uid>/virt-usbredir-N` under the launcher process's root, and
the launcher's processes sit in the pod's cgroup. In the box the VM is its own QEMU guest on the
host, so the node guest of the VM's node runs a stand-in (`launcher_standin`, one per VMI) that
recreates that layout and bridges each slot to the VM guest's real socket:

    node agent (node guest) -unix-> stand-in -TCP 10.0.2.2:P (QEMU user networking)->
    SlotBridge (host, asyncio) -unix-> the VM guest's virt-usbredir-N

The bridge is the cost of modelling one host with two QEMU guests; the benchmark's `direct`
baseline pays the same one (usbredirect -> the stand-in's TCP port for the slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from kubevirt_usb.sandbox.guest import BackgroundProcess, GuestError, wait_until
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.relay import pump

LAUNCHERS_DIR = "/run/kvu-launchers"
"""Where the stand-ins' roots live in a node guest (the chroot's view; a guest tmpfs)."""
CGROUP_ROOT = "/sys/fs/cgroup"
HOST_FROM_GUEST = "10.0.2.2"
SLOT_PREFIX = "virt-usbredir-"
START_TIMEOUT = 300.0
"""Seconds for a stand-in to start (a Python start in a TCG guest on a loaded host: minutes)."""


def pod_cgroup(pod_uid: str) -> str:
    """The pod's cgroup v2 directory as the kubelet's systemd cgroup driver names it."""
    return f"{CGROUP_ROOT}/kubepods.slice/kubepods-pod{pod_uid.replace('-', '_')}.slice"


def launcher_root(pod_uid: str) -> str:
    """The stand-in's root directory (its `/proc/<pid>/root`) in the node guest's chroot."""
    return f"{LAUNCHERS_DIR}/{pod_uid}/root"


def slot_path(pod_uid: str, vmi_uid: str, slot: int) -> str:
    """Slot `slot`'s socket path in the node guest's chroot (under the stand-in's root)."""
    return f"{launcher_root(pod_uid)}/run/kubevirt-private/{vmi_uid}/{SLOT_PREFIX}{slot}"


def standin_argv(*, python: str, pod_uid: str, vmi_uid: str, ports: dict[int, int]) -> list[str]:
    """The stand-in's command line (run in the node guest's chroot of the host's root)."""
    argv = [python, "-m", "kubevirt_usb.sandbox.launcher_standin",
            "--root", launcher_root(pod_uid), "--vmi-uid", vmi_uid,
            "--cgroup", pod_cgroup(pod_uid), "--host", HOST_FROM_GUEST,
            "--info", f"{LAUNCHERS_DIR}/{pod_uid}/info.json"]
    for slot, port in sorted(ports.items()):
        argv += ["--slot-port", f"{slot}={port}"]
    return argv


@dataclass
class SlotBridge:
    """Host side of the bridge: one TCP port on 127.0.0.1 per slot, spliced to that slot's unix
    socket of the VM guest. `close_all()` drops every open stream (both ends)."""

    sockets: dict[int, Path]
    ports: dict[int, int] = field(default_factory=dict)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        for slot, path in sorted(self.sockets.items()):
            server = await asyncio.start_server(functools.partial(self._serve, path=path),
                                                "127.0.0.1", 0)
            self._servers.append(server)
            self.ports[slot] = server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     path: Path) -> None:
        try:
            slot_reader, slot_writer = await asyncio.open_unix_connection(str(path))
        except OSError:
            writer.close()
            return
        self._open.update({writer, slot_writer})
        try:
            await asyncio.gather(pump(reader, slot_writer), pump(slot_reader, writer))
        finally:
            self._open.difference_update({writer, slot_writer})

    def close_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        self.close_all()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()


@dataclass
class Launcher:
    """One VMI's launcher on its node: the Pod's identity and the stand-in running it."""

    namespace: str
    vm: str
    node: str
    vmi_uid: str
    pod_name: str
    pod_uid: str
    bridge: SlotBridge
    process: BackgroundProcess | None = None
    pid: int | None = None
    pause_pid: int | None = None
    tcp_ports: dict[int, int] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return launcher_root(self.pod_uid)

    def slot_path(self, slot: int) -> str:
        return slot_path(self.pod_uid, self.vmi_uid, slot)


async def mount_cgroup2(guest: NodeGuest) -> None:
    """cgroup v2 at /sys/fs/cgroup in the node guest's chroot (where the stand-ins join pods)."""
    script = (f"grep -q ' /host{CGROUP_ROOT} cgroup2 ' /proc/mounts || "
              f"mount -t cgroup2 cgroup2 /host{CGROUP_ROOT}")
    (await guest.exec(script, timeout=30)).check("mounting cgroup v2 in the node guest")


async def start_standin(guest: NodeGuest, launcher: Launcher, *, python: str) -> None:
    """Start the stand-in in the node guest; returns once its slot sockets listen."""
    info = f"/host{LAUNCHERS_DIR}/{launcher.pod_uid}/info.json"
    (await guest.exec(f"mkdir -p /host{launcher.root} && rm -f {info}", timeout=30)).check(
        "preparing the launcher's root")
    command = guest.host_command(standin_argv(python=python, pod_uid=launcher.pod_uid,
                                              vmi_uid=launcher.vmi_uid,
                                              ports=launcher.bridge.ports))
    launcher.process = await guest.start_background(
        command, log_path=f"/tmp/launcher-{launcher.pod_uid}.log")

    async def started() -> bool:
        return (await guest.exec(f"cat {info}", timeout=30)).ok

    try:
        await wait_until(started, within=START_TIMEOUT, interval=0.2,
                         what=f"the launcher stand-in of {launcher.namespace}/{launcher.vm}")
    except GuestError:
        log = (await guest.exec(f"tail -n 20 /tmp/launcher-{launcher.pod_uid}.log",
                                timeout=30)).output
        raise GuestError(f"the launcher stand-in did not start:\n{log}") from None
    data = json.loads((await guest.exec(f"cat {info}", timeout=30)).output)
    launcher.pid = int(data["pid"])
    launcher.pause_pid = int(data["pausePid"])
    launcher.tcp_ports = {int(k): int(v) for k, v in data["tcpPorts"].items()}


async def kill_standin(guest: NodeGuest, launcher: Launcher, *, remove_root: bool) -> None:
    """Kill the stand-in and its pause child (their process group) and wait until they are gone;
    with `remove_root`, its root and cgroup go too (the pod is gone from the node)."""
    process, launcher.process = launcher.process, None
    if process is not None and guest.running:
        pids = " ".join(str(p) for p in (launcher.pid, launcher.pause_pid, process.pid) if p)
        script = f"kill -KILL -{process.pid} {pids} 2>/dev/null; true"
        await guest.exec(script, timeout=30)

        async def gone() -> bool:
            check = " && ".join(f"! [ -e /proc/{p} ]" for p in pids.split()) or "true"
            return (await guest.exec(check, timeout=30)).ok

        await wait_until(gone, within=30, interval=0.2, what="the launcher stand-in to exit")
    launcher.pid = launcher.pause_pid = None
    launcher.tcp_ports = {}
    if remove_root and guest.running:
        cgroup = pod_cgroup(launcher.pod_uid)
        await guest.exec(f"rm -rf /host{LAUNCHERS_DIR}/{shlex.quote(launcher.pod_uid)}; "
                         f"rmdir /host{cgroup} 2>/dev/null; true", timeout=30)
