"""`python -m kubevirt_usb.redirect`: stream one device of this node into a VM, once, by hand.

What `usbredirect --device ... --to` plus `virtctl usbredir` did in the field notes, without their
faults: the device is the one in `--port` (checked against `--serial` when given), the node-local
lock refuses a second stream before the device is touched, and the device is opened before a VM
slot is taken. It stops on SIGINT/SIGTERM or when the stream ends; it never reconnects (the agent
does). Exit status: 0 after a stream that attached, 1 otherwise; the reason is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from kubevirt_usb.redirect import outcome as outcomes
from kubevirt_usb.redirect.checks import BoundDevice
from kubevirt_usb.redirect.engine import Engine
from kubevirt_usb.redirect.lock import DEFAULT_DIRECTORY, DeviceLock
from kubevirt_usb.redirect.session import Attempt, run_attempt, sysfs_reader
from kubevirt_usb.stream.endpoint import load_kubeconfig
from kubevirt_usb.usb.identity import port_identity, serial_identity


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kubevirt_usb.redirect",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--vm", required=True)
    parser.add_argument("--port", required=True, help="the device's port path, e.g. 2-1.4")
    parser.add_argument("--serial", help="refuse unless the device in --port has this serial")
    parser.add_argument("--node", default=os.uname().nodename)
    parser.add_argument("--lock-dir", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--sysfs", default="/sys")
    parser.add_argument("--devfs", default="/dev")
    return parser


def _bound(args: argparse.Namespace) -> BoundDevice | str:
    found = sysfs_reader(Path(args.sysfs))(args.port)
    if found is None:
        return f"no USB device in port {args.port}"
    identity = (serial_identity(found.vendor_id, found.product_id, args.serial) if args.serial
                else port_identity(args.node, args.port, found.vendor_id, found.product_id))
    return BoundDevice(name=f"{args.node}/{args.port}", node=args.node, port_path=args.port,
                       identity=identity, vendor_id=found.vendor_id,
                       product_id=found.product_id, serial=args.serial or found.serial)


async def _run(args: argparse.Namespace) -> int:
    device = _bound(args)
    if isinstance(device, str):
        print(device, file=sys.stderr)
        return 1
    endpoint = load_kubeconfig(args.kubeconfig)
    engine = await Engine.spawn()
    lock = DeviceLock(directory=args.lock_dir, port_path=args.port)
    attached = asyncio.Event()

    async def unknown() -> bool | None:
        return None

    def on_attached() -> None:
        attached.set()
        print(f"attached: {device.describe()} -> VM {args.namespace}/{args.vm}", flush=True)

    attempt = Attempt(device=device, namespace=args.namespace, vm=args.vm,
                      owner=f"python -m kubevirt_usb.redirect (pid {os.getpid()})",
                      lock=lock, engine=engine, endpoint=lambda: endpoint,
                      read_port=sysfs_reader(Path(args.sysfs)), vm_exists=unknown,
                      sysfs_root=args.sysfs, devfs_root=args.devfs)
    task = asyncio.create_task(run_attempt(attempt, on_attached=on_attached,
                                           on_progress=lambda _to, _from: None))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        result = await task
    except asyncio.CancelledError:
        print("stopped", flush=True)
        return 0 if attached.is_set() else 1
    finally:
        lock.release()
        with contextlib.suppress(Exception):
            await engine.stop()
    ctx = outcomes.Context(device=device.describe(), node=args.node, port_path=args.port,
                           namespace=args.namespace, vm=args.vm)
    print(outcomes.decide(result, ctx).message, flush=True)
    print(f"reason: {outcomes.last_error(result)}", flush=True)
    return 0 if attached.is_set() else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_run(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
