"""`kubectl usb doctor`: check that everything kubevirt-usb needs is in place and say what to
fix; exit code 9 when a check fails."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import click

from kubevirt_usb.kube.resources import USBPolicy, VirtualMachine
from kubevirt_usb.kubectl_usb.common import command_settings, kube_options, now, run
from kubevirt_usb.kubectl_usb.doctor import (
    AGENT_LEASE_LABELS,
    Facts,
    Unknown,
    diagnose,
    doctor_table,
    failed,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, namespace
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.views import dump

T = TypeVar("T")
KUBEVIRT_VERSION_PATH = "/apis/subresources.kubevirt.io/v1/version"


async def known(request: Awaitable[T]) -> T | Unknown:
    """The answer, or why there is none (a cluster that cannot be reached stops doctor)."""
    try:
        return await request
    except CLIError as exc:
        if exc.code == ExitCode.UNREACHABLE:
            raise
        return Unknown(exc.message)


async def _version(session: Session, path: str) -> str:
    return str((await session.raw_get(path)).get("gitVersion") or "unknown")


async def _agent_rbac(session: Session, leases: Sequence[Obj] | Unknown, *, account: str,
                      default_namespace: str) -> dict[str, bool] | Unknown:
    spaces = sorted({namespace(x) for x in leases}) if not isinstance(leases, Unknown) else []
    out: dict[str, bool] = {}
    for ns in spaces or [default_namespace]:
        user = f"system:serviceaccount:{ns}:{account}"
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                  "system:authenticated")
        answer = await known(session.can(verb="get", group="subresources.kubevirt.io",
                                         resource="virtualmachineinstances",
                                         subresource="usbredir", namespace=session.namespace,
                                         user=user, groups=groups))
        if isinstance(answer, Unknown):
            return Unknown(f"cannot check the agent's permissions: {answer.reason}")
        out[user] = answer
    return out


async def gather(session: Session, *, agent_account: str, agent_namespace: str) -> Facts:
    server_version = await known(_version(session, "/version"))
    leases = await known(session.leases(labels=AGENT_LEASE_LABELS))

    async def items(res: Any, ns: str | None = None) -> Sequence[Obj]:
        return (await session.listing(res, namespace=ns)).items

    return Facts(
        server=session.server, namespace=session.namespace, now=now(),
        server_version=server_version, crds=await known(session.crd_names()),
        nodes=await known(session.node_names()), leases=leases,
        devices=await known(session.devices()),
        kubevirt_version=await known(_version(session, KUBEVIRT_VERSION_PATH)),
        agent_usbredir=await _agent_rbac(session, leases, account=agent_account,
                                         default_namespace=agent_namespace),
        policies=await known(items(USBPolicy)),
        vms=await known(items(VirtualMachine, session.namespace)))


@click.command(short_help="Check the installation.")
@click.option("--agent-service-account", default="kubevirt-usb-agent", show_default=True,
              help="The agent's service account (whose usbredir permission is checked).")
@click.option("--agent-namespace", default="kubevirt-usb", show_default=True,
              help="The agent's namespace, when no agent heartbeat names one.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
              help="Output format: table|json|yaml.")
@kube_options()
@command_settings
def doctor(agent_service_account: str, agent_namespace: str, output: str,
           settings: Settings) -> None:
    """Check the installation: CRDs, the agent on each node (heartbeat, usbredir library
    version), KubeVirt's version and the agent's usbredir permission, the USBPolicies, and
    the namespace's VMs. Exit code 9 when a check fails.
    """
    facts = run(settings, lambda session: gather(session, agent_account=agent_service_account,
                                                 agent_namespace=agent_namespace))
    checks = diagnose(facts)
    if output == "table":
        click.echo(doctor_table(checks).render(), nl=False)
    else:
        click.echo(dump({"ok": not failed(checks), "checks": [c.to_dict() for c in checks]},
                        output=output), nl=False)
    if failed(checks):
        raise click.exceptions.Exit(ExitCode.PROBLEMS)
