"""`kubectl usb list`: the USB devices of every node, who uses them, with filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_devices,
    kube_options,
    now,
    output_option,
    pop_selector,
    run,
    selector_options,
)
from kubevirt_usb.kubectl_usb.objects import Obj
from kubevirt_usb.kubectl_usb.selection import claim_of, select
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.views import OUTPUTS, device_state, render_devices


def _in_use_by(device: Obj, vm: str) -> bool:
    claim = claim_of(device)
    if claim is None:
        return False
    namespace, _, name = vm.rpartition("/")
    return claim.vm == name and (not namespace or claim.namespace == namespace)


def _used_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        namespace, _, vm = value.rpartition("/")
        if namespace:
            checked_name("namespace")(ctx, param, namespace)
        checked_name("VM name")(ctx, param, vm)
    return value


@click.command(name="list", short_help="List the USB devices of every node.")
@click.argument("device", required=False, shell_complete=complete_devices)
@selector_options
@click.option("--available", is_flag=True, help="Only devices plugged in and not in use.")
@click.option("--in-use", is_flag=True, help="Only devices attached to a VM.")
@click.option("--used-by", metavar="[NAMESPACE/]VM", default=None, callback=_used_by,
              help="Only devices attached to this VM.")
@output_option(OUTPUTS, default="table")
@click.option("--no-headers", is_flag=True, help="Table without its header line.")
@kube_options()
@command_settings
def list_devices(device: str | None, available: bool, in_use: bool, used_by: str | None,
                 output: str, no_headers: bool, settings: Settings, **flags: Any) -> None:
    """List the USB devices on the cluster's nodes.

    \b
    Columns: NAME (give it to attach), NODE, ID (vendor:product), PRODUCT, SERIAL,
    PORT (the port path on the node), IDENTITY (how the device is told apart: serial,
    serial+descriptors or port), STATE (Available, InUse, Absent), USED-BY (namespace/VM).
    -o wide adds vendor, manufacturer, bus/device number, speed, attachment, last seen.
    """
    selector = pop_selector(flags, device=device)

    async def body(session: Session) -> Sequence[Obj]:
        return await session.devices()

    devices = select(run(settings, body), selector)
    if available:
        devices = [d for d in devices if device_state(d) == "Available"]
    if in_use:
        devices = [d for d in devices if claim_of(d)]
    if used_by is not None:
        devices = [d for d in devices if _in_use_by(d, used_by)]
    if not devices and output in ("table", "wide"):
        filtered = not selector.is_empty() or available or in_use or used_by
        click.echo("No USB devices match." if filtered else "No USB devices found.", err=True)
        return
    click.echo(render_devices(devices, output=output, now=now(), headers=not no_headers),
               nl=False)
