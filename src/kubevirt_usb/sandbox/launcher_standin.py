"""The virt-launcher stand-in: the process a node guest runs for each VMI placed on that node.

Run inside the node guest (in the chroot of the host's root, as root) by the cluster in a box:

    python -m kubevirt_usb.sandbox.launcher_standin --root DIR --vmi-uid UID --cgroup CG \
        --host 10.0.2.2 --slot-port 0=PORT ... --info FILE

It makes itself look like KubeVirt's launcher to a node agent: it joins the pod's cgroup (CG, the
kubelet's systemd form `kubepods.slice/kubepods-pod<uid with _>.slice`), starts a pause child in
the same cgroup (whose root does not hold the VMI's directory, as a pod's pause container), creates
`DIR/run/kubevirt-private/<UID>/virt-usbredir-N` listening unix sockets, then `chroot(DIR)`: its
`/proc/<pid>/root` is DIR, as a launcher's is its container's root. Every connection to slot N is
spliced (kernel `splice(2)`, no copy through Python) to TCP `<host>:<port of N>`: the node guest's
user networking to a forwarder on the host that dials the VM guest's real slot socket. It also
listens on 127.0.0.1 TCP per slot (the ports are in FILE) so that a stock `usbredirect --to`, which
speaks only TCP, pays the same bridge in the benchmark's `direct` baseline.

Standard library only, imported before the chroot: nothing is loaded from disk afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
CHUNK = 1 << 20
SLOT_PREFIX = "virt-usbredir-"


def slot_directory(root: Path, vmi_uid: str) -> Path:
    """The VMI's private directory inside the launcher's root."""
    return root / "run" / "kubevirt-private" / vmi_uid


def parse_slot_ports(values: Sequence[str]) -> dict[int, int]:
    """`N=PORT` arguments -> {slot: host port}; ValueError names a bad one."""
    ports: dict[int, int] = {}
    for value in values:
        slot, sep, port = value.partition("=")
        if not sep or not slot.isdigit() or not port.isdigit():
            raise ValueError(f"--slot-port {value!r}: expected SLOT=PORT, e.g. 0=40123")
        ports[int(slot)] = int(port)
    return ports


def _splice_one_way(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes src -> dst through a pipe with splice(2) until src ends; then half-close dst."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
    try:
        while True:
            moved = os.splice(src.fileno(), write_end, CHUNK)
            if moved == 0:
                break
            while moved:
                moved -= os.splice(read_end, dst.fileno(), moved)
    except OSError:
        pass
    finally:
        os.close(read_end)
        os.close(write_end)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def bridge(client: socket.socket, host: str, port: int) -> None:
    """Splice one accepted slot connection to TCP host:port, both ways, until both ends close.
    Nothing is sent by the bridge itself: a held slot upstream stays silent, as QEMU's does."""
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # a numeric address: no NSS
    try:
        upstream.connect((host, port))
    except OSError:
        upstream.close()
        client.close()
        return
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=_splice_one_way, args=(upstream, client), daemon=True)
    back.start()
    _splice_one_way(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(listener: socket.socket, host: str, port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        if client.family == socket.AF_INET:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=bridge, args=(client, host, port), daemon=True).start()


def _join_cgroup(cgroup: Path) -> None:
    cgroup.mkdir(parents=True, exist_ok=True)
    (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launcher_standin")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--vmi-uid", required=True)
    parser.add_argument("--cgroup", required=True, type=Path)
    parser.add_argument("--host", default="10.0.2.2")
    parser.add_argument("--slot-port", action="append", default=[])
    parser.add_argument("--info", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        ports = parse_slot_ports(args.slot_port)
    except ValueError as exc:
        print(f"launcher stand-in: {exc}", file=sys.stderr)
        return 2
    _join_cgroup(args.cgroup)
    pause = subprocess.Popen(["sleep", "2147483"], stdin=subprocess.DEVNULL)
    directory = slot_directory(args.root, args.vmi_uid)
    directory.mkdir(parents=True, exist_ok=True)
    listeners: list[tuple[socket.socket, int]] = []
    tcp_ports: dict[str, int] = {}
    os.chdir(directory)  # bind relative names: the full paths exceed a sockaddr_un's 107 bytes
    for slot, port in sorted(ports.items()):
        name = f"{SLOT_PREFIX}{slot}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(name)
        unix.listen(8)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        tcp_ports[str(slot)] = tcp.getsockname()[1]
        listeners += [(unix, port), (tcp, port)]
    info = {"pid": os.getpid(), "pausePid": pause.pid, "tcpPorts": tcp_ports}
    args.info.write_text(json.dumps(info))
    os.chroot(args.root)
    os.chdir("/")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for listener, port in listeners:
        threading.Thread(target=_serve, args=(listener, args.host, port), daemon=True).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
