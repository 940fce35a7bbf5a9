"""`kubectl usb detach VM|ATTACHMENT` or `detach --serial S`: let go of devices, waiting (by
default) until they are free."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import click

from kubevirt_usb.kube.resources import USBAttachment
from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_attachments_and_vms,
    complete_device_field,
    complete_devices,
    kube_options,
    output_option,
    progress,
    run,
    wait_options,
)
from kubevirt_usb.kubectl_usb.detachplan import (
    DetachPlan,
    Key,
    describe_deleted,
    plan_detach_device,
    plan_detach_name,
)
from kubevirt_usb.kubectl_usb.objects import KIND_ATTACHMENT, Obj, name, namespace
from kubevirt_usb.kubectl_usb.selection import (
    Selector,
    SelectorError,
    resolve,
    selected_device_name,
    selector_from_flags,
)
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.waiting import Progress, detach_progress, wait_for


async def _plan(session: Session, *, target: str | None,
                selector: Selector | None) -> tuple[DetachPlan, Sequence[Obj]]:
    attachments = await session.attachments(namespace=session.namespace)
    if target is not None:
        vm_exists = await session.vm(target, namespace=session.namespace) is not None
        return plan_detach_name(target, namespace_=session.namespace, attachments=attachments,
                                vm_exists=vm_exists), attachments
    assert selector is not None
    device = resolve(await session.devices(), selector)
    return plan_detach_device(device, attachments=attachments), attachments


async def wait_released(session: Session, keys: list[Key], *, timeout: float) -> None:
    async def step() -> Progress:
        left = [a for ns, n in keys
                if (a := await session.find(USBAttachment, n, namespace=ns)) is not None]
        return detach_progress(left, await session.devices(), gone=keys)

    what = ", ".join(f"{ns}/{n}" for ns, n in keys) + " to be released"
    await wait_for(step, timeout=timeout, what=what, clock=time.monotonic, sleep=asyncio.sleep,
                   report=lambda line: progress(f"waiting: {line}"))


def _device_of(attachment: Obj | None) -> str | None:
    return selected_device_name(attachment) if attachment is not None else None


@click.command(short_help="Detach devices from a VM.")
@click.argument("target", required=False, metavar="[VM|ATTACHMENT]",
                callback=checked_name("VM or attachment name"),
                shell_complete=complete_attachments_and_vms)
@click.option("--serial", default=None, help="Detach the device with this serial, wherever it "
              "is attached.", shell_complete=lambda c, p, i: complete_device_field(c, "serial", i))
@click.option("--device", default=None, metavar="NAME", shell_complete=complete_devices,
              help="Detach this USBDevice, wherever it is attached.")
@wait_options(wait_default=True, timeout_default="1m")
@output_option(("name",), default=None)
@kube_options()
@command_settings
def detach(target: str | None, serial: str | None, device: str | None, wait: bool,
           timeout: float, output: str | None, settings: Settings) -> None:
    """Detach USB devices from a VM.

    \b
    detach VM             every device attached to the VM
    detach ATTACHMENT     one USBAttachment (see `kubectl usb status`)
    detach --serial S     the device with serial S, from whichever VM has it

    Waits until the devices are released (--no-wait to return at once).
    """
    given = [x for x in (target, serial, device) if x is not None]
    if len(given) != 1:
        raise click.UsageError("say what to detach: a VM or attachment name, or --serial, or "
                               "--device (exactly one)")
    try:
        selector = None if target is not None else selector_from_flags(serial=serial,
                                                                       device=device)
    except SelectorError as exc:
        raise click.UsageError(str(exc)) from exc

    async def body(session: Session) -> None:
        plan, attachments = await _plan(session, target=target, selector=selector)
        if not plan.delete:
            click.echo(plan.nothing, err=output is not None)
            return
        known: dict[Key, Obj | None] = {(namespace(a), name(a)): a for a in attachments}
        for key in plan.delete:
            if key not in known:  # held from another namespace
                known[key] = await session.find(USBAttachment, key[1], namespace=key[0])
            await session.delete(USBAttachment, key[1], namespace=key[0])
            if output == "name":
                click.echo(f"{KIND_ATTACHMENT}/{key[1]}")
            else:
                click.echo(describe_deleted(key, known.get(key)))
        if wait:
            await wait_released(session, plan.delete, timeout=timeout)
            freed = [d for k in plan.delete if (d := _device_of(known.get(k)))]
            click.echo("released" + (f": {', '.join(freed)}" if freed else ""),
                       err=output is not None)

    run(settings, body)
