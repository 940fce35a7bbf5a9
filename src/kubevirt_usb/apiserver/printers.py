"""The columns `kubectl get` shows for the built-in kinds the emulator serves, as kube-apiserver
1.36 prints them (pkg/printers/internalversion): what each column is and how its cell is computed.

The server always prints the wide form (`GenerateOptions{Wide: true}`): the priority-1 columns
are in every Table and `kubectl get` hides them unless `-o wide`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Cell = Callable[[Obj, dt.datetime], Any]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by "
    "the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors"
    "/devel/sig-architecture/api-conventions.md#metadata")


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of a Table: its definition and how a row's cell is computed."""

    name: str
    type: str
    cell: Cell
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


def human_age(timestamp: Any, *, now: dt.datetime) -> str:
    """kubectl's short duration (`5s`, `3m`, `2d5h`...) since an RFC 3339 timestamp."""
    try:
        then = dt.datetime.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<invalid>"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _age_of(obj: Obj, now: dt.datetime) -> str:
    created = _meta(obj).get("creationTimestamp")
    return human_age(created, now=now) if created else "<unknown>"


NAME = Column(name="Name", type="string", format="name", description=NAME_DESCRIPTION,
              cell=lambda obj, _now: _meta(obj).get("name", ""))
AGE = Column(name="Age", type="string", description=AGE_DESCRIPTION, cell=_age_of)
CREATED_AT = Column(name="Created At", type="date", description=AGE_DESCRIPTION,
                    cell=lambda obj, _now: _meta(obj).get("creationTimestamp", ""))


def _field(*path: str) -> Cell:
    def cell(obj: Obj, _now: dt.datetime) -> Any:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else value

    return cell


def _pod_ready(obj: Obj, _now: dt.datetime) -> str:
    containers = (obj.get("spec") or {}).get("containers") or []
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _pod_status(obj: Obj, _now: dt.datetime) -> str:
    status = obj.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    return str(reason)


def _pod_restarts(obj: Obj, now: dt.datetime) -> str:
    """The restarts, and how long ago the last one ended when a container says."""
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    finished = [str(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "")
                for s in statuses]
    last = max((f for f in finished if f), default="")
    return f"{restarts} ({human_age(last, now=now)} ago)" if restarts and last else str(restarts)


def _or_none(cell: Cell) -> Cell:
    return lambda obj, now: cell(obj, now) or "<none>"


def _pod_ip(obj: Obj, _now: dt.datetime) -> str:
    status = obj.get("status") or {}
    ips = status.get("podIPs") or []
    return str((ips[0] or {}).get("ip") or "") if ips else str(status.get("podIP") or "")


def _pod_readiness_gates(obj: Obj, _now: dt.datetime) -> str:
    gates = (obj.get("spec") or {}).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status")
                  for c in (obj.get("status") or {}).get("conditions") or []}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


def _node_status(obj: Obj, _now: dt.datetime) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else
              ("Ready" if ready.get("status") == "True" else "NotReady")]
    if (obj.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_address(kind: str) -> Cell:
    def cell(obj: Obj, _now: dt.datetime) -> str:
        for address in (obj.get("status") or {}).get("addresses") or []:
            if address.get("type") == kind:
                return str(address.get("address") or "")
        return "<none>"

    return cell


def _node_info(key: str) -> Cell:
    def cell(obj: Obj, _now: dt.datetime) -> str:
        info = (obj.get("status") or {}).get("nodeInfo") or {}
        value = str(info.get(key) or "") or "<unknown>"
        if key == "kernelVersion" and info.get("architecture"):
            value += f" ({info['architecture']})"
        return value

    return cell


def _node_roles(obj: Obj, _now: dt.datetime) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = _meta(obj).get("labels") or {}
    roles = sorted(k[len(prefix):] for k in labels if k.startswith(prefix) and k[len(prefix):])
    if labels.get("kubernetes.io/role"):
        roles = sorted({*roles, labels["kubernetes.io/role"]})
    return ",".join(roles) or "<none>"


def _event_object(obj: Obj, _now: dt.datetime) -> str:
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def _since(when: Any, now: dt.datetime) -> str:
    if isinstance(when, str) and "." in when:  # a MicroTime
        when = when.split(".")[0] + "Z"
    return human_age(when, now=now) if when else "<unknown>"


def _event_first_seen(obj: Obj, now: dt.datetime) -> str:
    return _since(obj.get("firstTimestamp") or obj.get("eventTime"), now)


def _event_last_seen(obj: Obj, now: dt.datetime) -> str:
    series = obj.get("series") or {}
    if series:
        return _since(series.get("lastObservedTime"), now)
    if obj.get("lastTimestamp"):
        return _since(obj["lastTimestamp"], now)
    return _event_first_seen(obj, now)


def _event_count(obj: Obj, _now: dt.datetime) -> int:
    series = obj.get("series") or {}
    return int(series.get("count") or 0) if series else int(obj.get("count") or 0) or 1


def _event_source(obj: Obj, _now: dt.datetime) -> str:
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else str(component)


def _subjects(kind: str) -> Cell:
    def cell(obj: Obj, _now: dt.datetime) -> str:
        subjects = [s for s in obj.get("subjects") or [] if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects)
        return ", ".join(str(s.get("name", "")) for s in subjects)

    return cell


def _role_ref(obj: Obj, _now: dt.datetime) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _string(name: str, cell: Cell, *, priority: int = 0) -> Column:
    return Column(name=name, type="string", cell=cell, priority=priority)


def _wide(name: str, cell: Cell) -> Column:
    return _string(name, cell, priority=1)


def _data_count(*keys: str) -> Cell:
    return lambda obj, _now: sum(len(obj.get(key) or {}) for key in keys)


_BINDING_COLUMNS = (NAME, _string("Role", _role_ref), AGE, _wide("Users", _subjects("User")),
                    _wide("Groups", _subjects("Group")),
                    _wide("ServiceAccounts", _subjects("ServiceAccount")))


BUILTIN_COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "Namespace"): (NAME, _string("Status", _field("status", "phase")), AGE),
    ("", "ConfigMap"): (NAME, _string("Data", _data_count("data", "binaryData")), AGE),
    ("", "Secret"): (NAME, _string("Type", _field("type")), _string("Data", _data_count("data")),
                     AGE),
    ("", "ServiceAccount"): (NAME, AGE),
    ("", "Node"): (NAME, _string("Status", _node_status), _string("Roles", _node_roles), AGE,
                   _string("Version", _field("status", "nodeInfo", "kubeletVersion")),
                   _wide("Internal-IP", _node_address("InternalIP")),
                   _wide("External-IP", _node_address("ExternalIP")),
                   _wide("OS-Image", _node_info("osImage")),
                   _wide("Kernel-Version", _node_info("kernelVersion")),
                   _wide("Container-Runtime", _node_info("containerRuntimeVersion"))),
    ("", "Pod"): (NAME, _string("Ready", _pod_ready), _string("Status", _pod_status),
                  _string("Restarts", _pod_restarts), AGE,
                  _wide("IP", _or_none(_pod_ip)),
                  _wide("Node", _or_none(_field("spec", "nodeName"))),
                  _wide("Nominated Node", _or_none(_field("status", "nominatedNodeName"))),
                  _wide("Readiness Gates", _pod_readiness_gates)),
    ("", "Event"): (_string("Last Seen", _event_last_seen), _string("Type", _field("type")),
                    _string("Reason", _field("reason")), _string("Object", _event_object),
                    _wide("Subobject", _field("involvedObject", "fieldPath")),
                    _wide("Source", _event_source),
                    _string("Message", lambda obj, _now: str(obj.get("message") or "").strip()),
                    _wide("First Seen", _event_first_seen), _wide("Count", _event_count),
                    Column(name="Name", type="string", format="name", priority=1,
                           description=NAME_DESCRIPTION,
                           cell=lambda obj, _now: _meta(obj).get("name", ""))),
    ("coordination.k8s.io", "Lease"): (NAME, _string("Holder", _field("spec",
                                                                     "holderIdentity")), AGE),
    ("rbac.authorization.k8s.io", "Role"): (NAME, CREATED_AT),
    ("rbac.authorization.k8s.io", "ClusterRole"): (NAME, CREATED_AT),
    ("rbac.authorization.k8s.io", "RoleBinding"): _BINDING_COLUMNS,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _BINDING_COLUMNS,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (NAME, CREATED_AT),
}


def builtin_columns(group: str, kind: str) -> tuple[Column, ...]:
    """The columns of a built-in kind (Name and Age for kinds without their own printer)."""
    return BUILTIN_COLUMNS.get((group, kind), (NAME, AGE))
