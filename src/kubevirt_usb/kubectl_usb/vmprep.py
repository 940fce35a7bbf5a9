"""`prepare-vm`: what a VirtualMachine needs before devices can be redirected into it, decided
from the VM and its running VMI.

KubeVirt gives a VMI its four usbredir slots only when `spec.domain.devices.clientPassthrough: {}`
is in the VM's template when the VMI starts. So the template is patched, and a VMI that is
already running without it has to be restarted (the field notes delete the VMI, which KubeVirt
restarts when the VM's runStrategy is Always or `running: true`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubevirt_usb.kubectl_usb.objects import Obj, dig, spec, status

PATCH: dict[str, Any] = {"spec": {"template": {"spec": {"domain": {"devices": {
    "clientPassthrough": {}}}}}}}
"""The merge patch the field notes apply by hand."""

_RESTARTING = ("Always",)


class Restart(Enum):
    """Whether the running VMI must be restarted to get usbredir slots."""

    NOT_RUNNING = "the VM is not running; its VMI gets USB redirection when it starts"
    NOT_NEEDED = "its running VMI already has USB redirection"
    NEEDED = "its running VMI was started without clientPassthrough, so the VM must restart"


@dataclass(frozen=True)
class PreparePlan:
    """What to do: patch the template (`patch` not None) and/or restart the VMI."""

    patch: dict[str, Any] | None
    restart: Restart
    restart_by_deleting_vmi: bool
    run_strategy: str


def has_client_passthrough(devices: Any) -> bool:
    return isinstance(devices, dict) and isinstance(devices.get("clientPassthrough"), dict)


def run_strategy(vm: Obj) -> str:
    """The VM's runStrategy, from `spec.runStrategy` or the older `spec.running`."""
    strategy = spec(vm).get("runStrategy")
    if strategy:
        return str(strategy)
    running = spec(vm).get("running")
    return "Always" if running is True else "Halted" if running is False else "Unknown"


def plan_prepare(vm: Obj, vmi: Obj | None) -> PreparePlan:
    template_ok = has_client_passthrough(dig(vm, "spec", "template", "spec", "domain",
                                             "devices"))
    if vmi is None or status(vmi).get("phase") in ("Succeeded", "Failed"):
        restart = Restart.NOT_RUNNING
    elif has_client_passthrough(dig(vmi, "spec", "domain", "devices")):
        restart = Restart.NOT_NEEDED
    else:
        restart = Restart.NEEDED
    strategy = run_strategy(vm)
    return PreparePlan(patch=None if template_ok else PATCH, restart=restart,
                       restart_by_deleting_vmi=strategy in _RESTARTING, run_strategy=strategy)


def cannot_restart_hint(plan: PreparePlan, *, vm: str, namespace: str) -> str:
    """What to tell a user whose VM would stop, not restart, if its VMI were deleted."""
    return (f"the VM's runStrategy is {plan.run_strategy}, so deleting its VMI would stop it, "
            f"not restart it: restart it yourself (virtctl restart {vm} -n {namespace})")
