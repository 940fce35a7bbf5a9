"""`kubectl usb attach [DEVICE] VM`: attach a device to a VM (a USBAttachment), optionally
waiting until the VM has it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from kubevirt_usb.kube.resources import USBAttachment, USBDevice
from kubevirt_usb.kubectl_usb.attachplan import Already, describe_attach, plan_attach
from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_devices,
    complete_vms,
    kube_options,
    output_option,
    pop_selector,
    progress,
    run,
    selector_options,
    wait_options,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import KIND_ATTACHMENT, Obj, name, name_problem, status
from kubevirt_usb.kubectl_usb.selection import (
    describe_device,
    resolve,
    select,
    selected_device_name,
)
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.views import render_object
from kubevirt_usb.kubectl_usb.vmprep import Restart, plan_prepare
from kubevirt_usb.kubectl_usb.waiting import Progress, attach_progress, wait_for


async def find_vm(session: Session, vm: str) -> Obj:
    namespace = session.namespace
    found = await session.vm(vm, namespace=namespace)
    if found is None:
        raise CLIError(f'VirtualMachine "{vm}" not found in namespace "{namespace}" (see: '
                       f"kubectl get vms -n {namespace})", code=ExitCode.NOT_FOUND)
    return found


async def check_vm(session: Session, vm: str, found: Obj) -> None:
    """Refuse a VM without usbredir slots; warn when it needs a restart."""
    namespace = session.namespace
    plan = plan_prepare(found, await session.vmi(vm, namespace=namespace))
    if plan.patch is not None:
        raise CLIError(f"VM {namespace}/{vm} is not configured for USB redirection (no "
                       f"clientPassthrough): run `kubectl usb prepare-vm -n {namespace} {vm}` "
                       "first", code=ExitCode.REFUSED)
    if plan.restart is Restart.NEEDED:
        progress(f"warning: VM {namespace}/{vm}: {plan.restart.value} "
                 f"(kubectl usb prepare-vm -n {namespace} {vm} --restart)")


async def wait_attached(session: Session, attachment: Obj, *, device: str | None,
                        timeout: float) -> Obj:
    namespace, wanted = session.namespace, name(attachment)

    async def step() -> Progress:
        current = await session.find(USBAttachment, wanted, namespace=namespace)
        target = (selected_device_name(current) if current is not None else None) or device
        found = await session.find(USBDevice, target) if target else None
        return attach_progress(current, found, wanted=f"{namespace}/{wanted}")

    done = await wait_for(step, timeout=timeout, what=f"{namespace}/{wanted} to be Attached",
                          clock=time.monotonic, sleep=asyncio.sleep,
                          report=lambda line: progress(f"waiting: {line}"))
    return dict(done.obj or attachment)


@click.command(short_help="Attach a device to a VM.")
@click.argument("first", metavar="[DEVICE] VM", shell_complete=complete_devices)
@click.argument("second", required=False, metavar="", shell_complete=complete_vms)
@selector_options
@click.option("--name", "attachment", default=None, callback=checked_name("attachment name"),
              help="Name of the USBAttachment "
              "(default: VM and device names joined).")
@click.option("--on-plug", is_flag=True, help="If no device matches yet, attach the first "
              "one that is plugged in later (the attachment waits for it).")
@wait_options(wait_default=False, timeout_default="2m")
@output_option(("name", "json", "yaml"), default=None)
@kube_options()
@command_settings
def attach(first: str, second: str | None, attachment: str | None, on_plug: bool, wait: bool,
           timeout: float, output: str | None, settings: Settings, **flags: Any) -> None:
    """Attach a USB device to a VM of the namespace.

    Name the device (a NAME from `kubectl usb list`) or select it with --serial, --vendor,
    --product, --id, --product-name, --node, --port. A device in use by another VM is refused,
    naming that VM. With --wait, return once the VM has the device.

    \b
    Examples:
      kubectl usb attach 46f4-0001-aaa1 vm1
      kubectl usb attach --serial AAA1 vm1 --wait
      kubectl usb attach --id 067b:2303 --node node1 vm1
    """
    device_name, vm = (first, second) if second is not None else (None, first)
    problem = name_problem(vm, what="VM name")
    if problem is not None:
        raise click.UsageError(problem)
    selector = pop_selector(flags, device=device_name)
    if selector.is_empty():
        raise click.UsageError("say which device: a NAME from `kubectl usb list`, or --serial, "
                               "--vendor/--product, --id, --node, --port")

    async def body(session: Session) -> Obj:
        found = await find_vm(session, vm)
        devices = await session.devices()
        device = None if on_plug and not select(devices, selector) else resolve(devices, selector)
        plan = plan_attach(vm=vm, namespace=session.namespace, device=device, selector=selector,
                           attachments=await session.attachments(namespace=session.namespace),
                           attachment=attachment)
        if not isinstance(plan, Already):
            await check_vm(session, vm, found)
        result = plan.attachment if isinstance(plan, Already) else \
            await session.create(USBAttachment, plan.attachment)
        message = describe_attach(plan, vm=vm, namespace=session.namespace, device=device,
                                  selector=selector)
        click.echo(message, err=output is not None)
        if wait:
            result = await wait_attached(session, result, timeout=timeout,
                                         device=name(device) if device is not None else None)
            click.echo(_attached_line(result, device=device, vm=vm, session=session),
                       err=output is not None)
        return dict(result)

    result = run(settings, body)
    if output is not None:
        click.echo(render_object(result, output=output, kind=KIND_ATTACHMENT), nl=False)


def _attached_line(attachment: Obj, *, device: Obj | None, vm: str, session: Session) -> str:
    st = status(attachment)
    what = describe_device(device) if device is not None else str(st.get("device") or "device")
    return f"attached: {what} -> VM {session.namespace}/{vm}"

