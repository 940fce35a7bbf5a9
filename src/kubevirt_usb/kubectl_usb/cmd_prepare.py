"""`kubectl usb prepare-vm VM`: give a VM its usbredir slots (clientPassthrough) and restart it
if its running VMI needs that (asking first, on a terminal)."""

from __future__ import annotations

import click

from kubevirt_usb.kube.resources import VirtualMachine, VirtualMachineInstance
from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_vms,
    kube_options,
    run,
    stdin_is_tty,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.vmprep import (
    PATCH,
    PreparePlan,
    Restart,
    cannot_restart_hint,
    plan_prepare,
)


def _want_restart(choice: bool | None, *, vm: str, namespace: str) -> bool:
    if choice is not None:
        return choice
    if not stdin_is_tty():
        return False
    return click.confirm(f"Restart VM {namespace}/{vm} now (its VMI is deleted and KubeVirt "
                         "starts it again)?", default=False, err=True)


async def _restart(session: Session, plan: PreparePlan, *, vm: str) -> None:
    namespace = session.namespace
    if not plan.restart_by_deleting_vmi:
        raise CLIError(cannot_restart_hint(plan, vm=vm, namespace=namespace),
                       code=ExitCode.REFUSED)
    await session.delete(VirtualMachineInstance, vm, namespace=namespace)
    click.echo(f"virtualmachineinstance.kubevirt.io/{vm} deleted: KubeVirt starts VM "
               f"{namespace}/{vm} again, now with USB redirection")


@click.command(name="prepare-vm", short_help="Let a VM take USB devices (clientPassthrough).")
@click.argument("vm", callback=checked_name("VM name"), shell_complete=complete_vms)
@click.option("--restart/--no-restart", "restart", default=None,
              help="Restart the VM if its running VMI needs it, or do not (default: ask on a "
              "terminal, else do not).")
@click.option("-y", "--yes", is_flag=True, help="Answer yes: restart if needed.")
@kube_options()
@command_settings
def prepare_vm(vm: str, restart: bool | None, yes: bool, settings: Settings) -> None:
    """Let a VM take USB devices: add clientPassthrough to its template, then restart it.

    Same as `kubectl patch vm VM --type=merge -p '{"spec":{"template":{"spec":{"domain":
    {"devices":{"clientPassthrough":{}}}}}}}'` followed by `kubectl delete vmi VM`.
    """
    choice = True if yes else restart

    async def body(session: Session) -> None:
        namespace = session.namespace
        found = await session.vm(vm, namespace=namespace)
        if found is None:
            raise CLIError(f'VirtualMachine "{vm}" not found in namespace "{namespace}"',
                           code=ExitCode.NOT_FOUND)
        plan = plan_prepare(found, await session.vmi(vm, namespace=namespace))
        if plan.patch is not None:
            await session.patch(VirtualMachine, vm, PATCH, namespace=namespace)
            click.echo(f"virtualmachine.kubevirt.io/{vm} patched: clientPassthrough added "
                       "(4 usbredir slots)")
        else:
            click.echo(f"virtualmachine.kubevirt.io/{vm} unchanged: it already has "
                       "clientPassthrough")
        if plan.restart is not Restart.NEEDED:
            click.echo(plan.restart.value)
            return
        if _want_restart(choice, vm=vm, namespace=namespace):
            await _restart(session, plan, vm=vm)
        else:
            click.echo(f"{plan.restart.value}; restart it with: kubectl usb prepare-vm -n "
                       f"{namespace} {vm} --restart")

    run(settings, body)
