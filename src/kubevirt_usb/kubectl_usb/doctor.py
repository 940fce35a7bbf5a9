"""`doctor`: is everything kubevirt-usb needs in place? Decided from facts gathered beforehand
(each fact is either known or `Unknown` with the reason), so every verdict is a pure function.

Checks: the API server, the CRDs, each node's agent (its heartbeat Lease) and usbredir library
version, KubeVirt's version and the usbredir permission of the agent, the USBPolicies, and the
VMs of the namespace (clientPassthrough).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from kubevirt_usb.kubectl_usb.objects import Obj, dig, meta, name, spec, status
from kubevirt_usb.kubectl_usb.tables import Table, human_age, parse_time
from kubevirt_usb.kubectl_usb.vmprep import has_client_passthrough
from kubevirt_usb.models import USBREDIR_MISSING_PREFIX, USBREDIR_VERSION_ANNOTATION

CRD_NAMES = ("usbdevices.usb.kubevirt-usb.io", "usbattachments.usb.kubevirt-usb.io",
             "usbpolicies.usb.kubevirt-usb.io")
AGENT_LEASE_PREFIX = "kubevirt-usb-agent-"
"""The agent's heartbeat Lease is `kubevirt-usb-agent-<node>` (kubevirt_usb.agent.heartbeat; a
test keeps the two in agreement)."""
AGENT_LEASE_LABELS = {"app.kubernetes.io/managed-by": "kubevirt-usb-agent"}
KUBEVIRT_USBREDIR_IN_ROLES = (1, 4, 0)
"""KubeVirt's aggregated admin and edit roles include usbredir since v1.4.0."""

State = Literal["ok", "warn", "fail", "unknown"]


@dataclass(frozen=True)
class Unknown:
    """A fact that could not be learned, and why (e.g. `forbidden: ...`)."""

    reason: str


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "state": self.state, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What doctor learned from the cluster."""

    server: str
    namespace: str
    now: dt.datetime
    server_version: str | Unknown
    crds: Sequence[str] | Unknown  # the CRD names that exist
    nodes: Sequence[str] | Unknown
    leases: Sequence[Obj] | Unknown  # the agents' heartbeat Leases
    devices: Sequence[Obj] | Unknown
    kubevirt_version: str | Unknown
    agent_usbredir: Mapping[str, bool] | Unknown = field(default_factory=dict)
    """Per agent service account: may it open usbredir in `namespace`?"""
    policies: Sequence[Obj] | Unknown
    vms: Sequence[Obj] | Unknown


def _version_tuple(version: str) -> tuple[int, ...] | None:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return None
    return tuple(int(g or 0) for g in match.groups())


def check_api(facts: Facts) -> Check:
    version = facts.server_version
    detail = facts.server + (f" (Kubernetes {version})" if isinstance(version, str) else "")
    return Check("api", "ok", detail)


def check_crds(facts: Facts) -> Check:
    if isinstance(facts.crds, Unknown):
        return Check("crds", "unknown", facts.crds.reason)
    missing = [c for c in CRD_NAMES if c not in facts.crds]
    if missing:
        return Check("crds", "fail", f"missing {', '.join(missing)}: install them with "
                     "`kubevirt-usb crds | kubectl apply -f -` (or deploy/base/crds.yaml)")
    return Check("crds", "ok", "usbdevices, usbattachments, usbpolicies "
                 "(usb.kubevirt-usb.io/v1alpha1)")


def lease_node(lease: Obj) -> str:
    holder = spec(lease).get("holderIdentity")
    return str(holder) if holder else name(lease).removeprefix(AGENT_LEASE_PREFIX)


def lease_alive(lease: Obj, *, now: dt.datetime) -> bool:
    """Whether the Lease was renewed within its duration, as the agent's heartbeat means it."""
    renewed = parse_time(spec(lease).get("renewTime"))
    duration = spec(lease).get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int) or isinstance(duration, bool):
        return False
    return now < renewed + dt.timedelta(seconds=duration)


def _node_names(facts: Facts) -> list[str]:
    known = [] if isinstance(facts.nodes, Unknown) else list(facts.nodes)
    with_lease = [] if isinstance(facts.leases, Unknown) else [lease_node(x)
                                                               for x in facts.leases]
    return sorted(set(known) | set(with_lease))


def _device_count(facts: Facts, node: str) -> str:
    if isinstance(facts.devices, Unknown):
        return ""
    count = sum(1 for d in facts.devices
                if status(d).get("node") == node and status(d).get("present", True))
    return f", {count} device{'s' if count != 1 else ''} present"


def check_agents(facts: Facts) -> list[Check]:
    if isinstance(facts.leases, Unknown):
        return [Check("agents", "unknown", f"cannot read the agents' heartbeat Leases: "
                      f"{facts.leases.reason}")]
    nodes = _node_names(facts)
    if not nodes:
        return [Check("agents", "fail", "no node and no agent heartbeat found")]
    leases = {lease_node(x): x for x in facts.leases}
    checks = []
    for node in nodes:
        lease = leases.get(node)
        if lease is None:
            checks.append(Check(f"agent {node}", "fail", "no heartbeat Lease "
                                f"{AGENT_LEASE_PREFIX}{node}: the agent does not run on this "
                                "node (check the DaemonSet and its node selector)"))
            continue
        renewed = parse_time(spec(lease).get("renewTime"))
        ago = human_age(renewed, now=facts.now)
        if lease_alive(lease, now=facts.now):
            checks.append(Check(f"agent {node}", "ok",
                                f"heartbeat {ago} ago{_device_count(facts, node)}"))
        else:
            checks.append(Check(f"agent {node}", "fail",
                                f"heartbeat stale (last renewed {ago} ago): the agent is down "
                                "or cut off; check its pod on this node"))
    return checks


def check_usbredir_versions(facts: Facts) -> list[Check]:
    if isinstance(facts.leases, Unknown):
        return []
    checks = []
    for lease in sorted(facts.leases, key=lease_node):
        version = (meta(lease).get("annotations") or {}).get(USBREDIR_VERSION_ANNOTATION)
        node = lease_node(lease)
        if version and version.startswith(USBREDIR_MISSING_PREFIX):
            checks.append(Check(f"usbredir {node}", "fail",
                                f"{version}: the agent cannot stream from this node; install "
                                "the usbredir host library in the agent's image"))
        elif version:
            checks.append(Check(f"usbredir {node}", "ok", f"libusbredirhost {version}"))
        else:
            checks.append(Check(f"usbredir {node}", "unknown",
                                "the agent does not publish its usbredir library version "
                                f"(annotation {USBREDIR_VERSION_ANNOTATION} on its Lease); "
                                "see the agent's log"))
    return checks


def check_kubevirt(facts: Facts) -> Check:
    version = facts.kubevirt_version
    if isinstance(version, Unknown):
        return Check("kubevirt", "fail", f"KubeVirt's virt-api does not answer ({version.reason})"
                     ": is KubeVirt installed and running?")
    parsed = _version_tuple(version)
    if parsed is not None and parsed < KUBEVIRT_USBREDIR_IN_ROLES:
        return Check("kubevirt", "warn", f"{version}: before v1.4.0 the kubevirt.io:admin/edit "
                     "roles lack usbredir; grant `get` on virtualmachineinstances/usbredir "
                     "(subresources.kubevirt.io) to the agent yourself")
    return Check("kubevirt", "ok", f"{version} (usbredir subresource served)")


def check_agent_rbac(facts: Facts) -> Check:
    allowed = facts.agent_usbredir
    if isinstance(allowed, Unknown):
        return Check("usbredir rbac", "unknown", allowed.reason)
    if not allowed:
        return Check("usbredir rbac", "unknown", "no agent service account to check")
    denied = sorted(sa for sa, ok in allowed.items() if not ok)
    if denied:
        return Check("usbredir rbac", "fail", f"{', '.join(denied)} may not get "
                     "virtualmachineinstances/usbredir (subresources.kubevirt.io) in namespace "
                     f"{facts.namespace}: bind it to a role that allows it")
    return Check("usbredir rbac", "ok", f"{', '.join(sorted(allowed))} may open usbredir in "
                 f"namespace {facts.namespace}")


def check_policies(facts: Facts) -> Check:
    if isinstance(facts.policies, Unknown):
        return Check("policies", "unknown", facts.policies.reason)
    if not facts.policies:
        return Check("policies", "warn", "no USBPolicy, so no namespace may attach any device: "
                     "allow some with `kubectl usb allow --namespace NS --serial S`")
    mine = [p for p in facts.policies if facts.namespace in (spec(p).get("namespaces") or [])]
    listed = ", ".join(sorted(name(p) for p in facts.policies))
    count = len(facts.policies)
    return Check("policies", "ok", f"{count} USBPolic{'y' if count == 1 else 'ies'} ({listed}), "
                 f"{len(mine)} of them for namespace {facts.namespace}")


def check_vms(facts: Facts) -> Check:
    label = f"vms {facts.namespace}"
    if isinstance(facts.vms, Unknown):
        return Check(label, "unknown", facts.vms.reason)
    if not facts.vms:
        return Check(label, "ok", "no VirtualMachines in this namespace")
    lacking = sorted(name(v) for v in facts.vms if not has_client_passthrough(
        dig(v, "spec", "template", "spec", "domain", "devices")))
    if lacking:
        return Check(label, "warn", f"without clientPassthrough: {', '.join(lacking)} "
                     f"(fix: kubectl usb prepare-vm -n {facts.namespace} {lacking[0]})")
    return Check(label, "ok", f"{len(facts.vms)} VM(s), all with clientPassthrough")


def diagnose(facts: Facts) -> list[Check]:
    """Every check, in the order a person fixes things."""
    return [check_api(facts), check_crds(facts), *check_agents(facts),
            *check_usbredir_versions(facts), check_kubevirt(facts), check_agent_rbac(facts),
            check_policies(facts), check_vms(facts)]


def failed(checks: Sequence[Check]) -> bool:
    return any(c.state == "fail" for c in checks)


def doctor_table(checks: Sequence[Check]) -> Table:
    return Table(["CHECK", "STATE", "DETAIL"], [[c.name, c.state, c.detail] for c in checks])
