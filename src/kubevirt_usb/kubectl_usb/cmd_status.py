"""`kubectl usb status` (the attachments: phase, device, node, traffic, since, errors) and
`kubectl usb watch` (the same, or the devices, live)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from typing import Any

import click

from kubevirt_usb.kube.errors import Gone
from kubevirt_usb.kube.resources import USBAttachment, USBDevice
from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_attachments_and_vms,
    kube_options,
    now,
    output_option,
    run,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.live import Key, Lines, apply_event, frame, key_of, sorted_objects
from kubevirt_usb.kubectl_usb.objects import Obj, name, spec
from kubevirt_usb.kubectl_usb.selection import sort_devices
from kubevirt_usb.kubectl_usb.session import ALL_NAMESPACES, Session, Settings
from kubevirt_usb.kubectl_usb.tables import Table
from kubevirt_usb.kubectl_usb.views import (
    ATTACHMENT_MIN_WIDTHS,
    DEVICE_MIN_WIDTHS,
    OUTPUTS,
    attachment_table,
    device_table,
    render_attachments,
)


def _scope(session: Session) -> str:
    return ALL_NAMESPACES if session.all_namespaces else session.namespace


def _where(session: Session) -> str:
    return "any namespace" if session.all_namespaces else f"namespace {session.namespace}"


@click.command(short_help="Show the attachments: phase, traffic, errors.")
@click.argument("target", required=False, metavar="[VM|ATTACHMENT]",
                callback=checked_name("VM or attachment name"),
                shell_complete=complete_attachments_and_vms)
@output_option(OUTPUTS, default="table")
@click.option("--no-headers", is_flag=True, help="Table without its header line.")
@kube_options()
@command_settings
def status(target: str | None, output: str, no_headers: bool, settings: Settings) -> None:
    """Show the USB attachments of the namespace (-A: of all namespaces).

    \b
    Columns: NAME, VM, PHASE (Pending, WaitingForDevice, NotAllowed, VMNotReady, NoFreeSlot,
    Bound, Connecting, Attached, Failed), DEVICE, NODE, TO-VM / FROM-VM (bytes streamed),
    SINCE (attached for), MESSAGE (why it is not attached, or its last error).
    -o wide adds the usbredir slot, reconnects, the last error and the device selector.
    """

    async def body(session: Session) -> tuple[list[Obj], str | None]:
        found = await session.attachments(namespace=_scope(session))
        if target is not None:
            found = [a for a in found if target in (name(a), spec(a).get("vm"))]
            if not found:
                vm = await session.vm(target, namespace=session.namespace)
                if vm is None and session.all_namespaces:
                    raise CLIError(f'no USB attachment named "{target}" in any namespace, nor a '
                                   f'VM named so in namespace "{session.namespace}"',
                                   code=ExitCode.NOT_FOUND)
                if vm is None:
                    raise CLIError(f'no USB attachment or VM named "{target}" in namespace '
                                   f'"{session.namespace}"', code=ExitCode.NOT_FOUND)
                return [], f"VM {session.namespace}/{target} has no USB devices attached"
        return sorted(found, key=key_of), f"No USB attachments in {_where(session)}."

    attachments, empty = run(settings, body)
    if not attachments and output in ("table", "wide"):
        click.echo(empty, err=True)
        return
    click.echo(render_attachments(attachments, output=output, now=now(),
                                  with_namespace=settings.all_namespaces,
                                  headers=not no_headers), nl=False)


def _devices_table(objects: Iterable[Obj], wide: bool) -> Table:
    return device_table(sort_devices(objects), now=now(), wide=wide)


def _attachments_table(objects: Iterable[Obj], wide: bool, *, all_ns: bool) -> Table:
    return attachment_table(sorted(objects, key=key_of), now=now(), wide=wide,
                            with_namespace=all_ns)


async def _watch(session: Session, *, devices: bool, wide: bool, tty: bool) -> None:
    res: Any = USBDevice if devices else USBAttachment
    scope = None if devices else _scope(session)
    all_ns = session.all_namespaces and not devices

    def build(objects: Iterable[Obj]) -> Table:
        if devices:
            return _devices_table(objects, wide)
        return _attachments_table(objects, wide, all_ns=all_ns)

    what = "USB devices" if devices else f"USB attachments in {_where(session)}"
    widths = DEVICE_MIN_WIDTHS if devices else ATTACHMENT_MIN_WIDTHS
    lines = Lines(build, status_field="state" if devices else "phase",
                  min_widths=[0, *widths] if all_ns else widths)
    while True:
        listed = await session.listing(res, namespace=scope)
        state: dict[Key, Obj] = {key_of(o): o for o in listed.items}
        if tty:
            click.echo(frame(build(sorted_objects(state)), title=f"{what} (Ctrl-C to stop)"),
                       nl=False)
        else:
            click.echo(lines.start(sorted_objects(state)), nl=False)
        try:
            # closed in order when printing fails (the reader of a pipe went away): left to
            # the event loop's shutdown, the nested streams were closed twice, with a traceback
            async with contextlib.aclosing(session.watch(
                    res, resource_version=listed.resource_version, namespace=scope)) as events:
                async for event in events:
                    if event.type == "BOOKMARK":
                        continue
                    state = apply_event(state, event.type, event.object)
                    if tty:
                        click.echo(frame(build(sorted_objects(state)),
                                         title=f"{what} (Ctrl-C to stop)"), nl=False)
                    else:
                        click.echo(lines.change(event.type, event.object), nl=False)
        except Gone:
            continue


@click.command(short_help="Watch attachments or devices live.")
@click.option("--devices", is_flag=True, help="Watch the devices instead of the attachments.")
@click.option("-o", "--output", type=click.Choice(["table", "wide"]), default="table",
              help="Output format: table|wide.")
@kube_options()
@command_settings
def watch(devices: bool, output: str, settings: Settings) -> None:
    """Watch the attachments (or, with --devices, the devices) change, live.

    On a terminal the table is redrawn in place; piped, one line is printed per change
    (like `kubectl get -w`). Ctrl-C stops it (exit code 0).
    """
    tty = sys.stdout.isatty()
    try:
        run(settings, lambda session: _watch(session, devices=devices, wide=output == "wide",
                                             tty=tty))
    except KeyboardInterrupt:
        return
