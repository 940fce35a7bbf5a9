"""`kubectl usb allow --namespace NS [DEVICE|selector]`: let namespaces attach devices (create or
extend a USBPolicy). For cluster admins."""

from __future__ import annotations

from typing import Any

import click

from kubevirt_usb.kube.errors import Conflict, KubeError
from kubevirt_usb.kube.resources import USBPolicy
from kubevirt_usb.kubectl_usb.common import (
    checked_name,
    command_settings,
    complete_devices,
    complete_namespaces,
    kube_options,
    output_option,
    pop_selector,
    progress,
    run,
    selector_options,
)
from kubevirt_usb.kubectl_usb.objects import KIND_POLICY, Obj
from kubevirt_usb.kubectl_usb.policy import Create, Extend, Plan, describe_plan, plan_allow
from kubevirt_usb.kubectl_usb.selection import Selector
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.views import render_object

_ATTEMPTS = 3


async def _apply(session: Session, plan: Plan) -> Obj:
    if isinstance(plan, Create):
        return await session.client.create(USBPolicy, plan.policy)
    if isinstance(plan, Extend):
        return await session.client.patch(USBPolicy, plan.name,
                                          {"spec": {"namespaces": plan.namespaces}},
                                          resource_version=plan.resource_version)
    return await session.client.get(USBPolicy, plan.name)


async def allow_namespaces(session: Session, *, namespaces: list[str],
                           selector: Selector) -> tuple[Plan, Obj]:
    """Plan against the policies as they are and apply; plan again if one changed meanwhile."""
    for attempt in range(1, _ATTEMPTS + 1):
        policies = (await session.listing(USBPolicy)).items
        plan = plan_allow(policies, namespaces=namespaces, selector=selector)
        try:
            return plan, await _apply(session, plan)
        except Conflict as exc:  # also AlreadyExists: someone else wrote first
            if attempt == _ATTEMPTS:
                raise session.error(exc) from exc
        except KubeError as exc:
            raise session.error(exc, res=USBPolicy) from exc
    raise AssertionError("unreachable")


@click.command(short_help="Let namespaces attach devices (a USBPolicy).")
@click.argument("device", required=False, shell_complete=complete_devices)
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NAMESPACE",
              callback=checked_name("namespace"),
              shell_complete=complete_namespaces,
              help="A namespace to allow (repeat for several).")
@selector_options
@click.option("--all-devices", is_flag=True, help="Allow every device (no selector).")
@output_option(("name", "json", "yaml"), default=None)
@kube_options(namespace=False)
@command_settings
def allow(device: str | None, namespaces: tuple[str, ...], all_devices: bool,
          output: str | None, settings: Settings, **flags: Any) -> None:
    """Let namespaces attach the devices a selector names (create or extend a USBPolicy).

    The policy is named after the selector (e.g. allow-serial-aaa1); allowing another namespace
    for the same selector adds it to that policy.

    \b
    Examples:
      kubectl usb allow --namespace default --serial AAA1
      kubectl usb allow -n lab -n ci --id 067b:2303 --node node1
    """
    selector = pop_selector(flags, device=device)
    if not namespaces:
        raise click.UsageError("say which namespace may use the devices: --namespace NS")
    if selector.is_empty() and not all_devices:
        raise click.UsageError("say which devices: a NAME, --serial, --vendor/--product, --id, "
                               "--node, --port, or --all-devices")
    if all_devices and not selector.is_empty():
        raise click.UsageError("--all-devices takes no other selector")

    async def body(session: Session) -> Obj:
        for ns in namespaces:
            if await session.namespace_exists(ns) is False:
                progress(f"warning: namespace {ns} does not exist (yet)")
        plan, policy = await allow_namespaces(session, namespaces=list(namespaces),
                                              selector=selector)
        click.echo(describe_plan(plan, selector=selector), err=output is not None)
        return policy

    policy = run(settings, body)
    if output is not None:
        click.echo(render_object(policy, output=output, kind=KIND_POLICY), nl=False)
