"""The columns `kubectl get` shows for the built-in kinds the emulator serves, as kube-apiserver
1.30 prints them (pkg/printers/internalversion): what each column is and how its cell is computed.
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


def _count(key: str) -> Cell:
    return lambda obj, _now: len(obj.get(key) or {})


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


def _pod_restarts(obj: Obj, _now: dt.datetime) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return str(sum(int(s.get("restartCount") or 0) for s in statuses))


def _node_status(obj: Obj, _now: dt.datetime) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else
              ("Ready" if ready.get("status") == "True" else "NotReady")]
    if (obj.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


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
    return f"{kind}/{involved.get('name', '')}"


def _event_last_seen(obj: Obj, now: dt.datetime) -> str:
    when = obj.get("lastTimestamp") or obj.get("eventTime") or \
        _meta(obj).get("creationTimestamp")
    if isinstance(when, str) and "." in when:
        when = when.split(".")[0] + "Z"
    return human_age(when, now=now) if when else "<unknown>"


def _role_ref(obj: Obj, _now: dt.datetime) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _string(name: str, cell: Cell, *, priority: int = 0) -> Column:
    return Column(name=name, type="string", cell=cell, priority=priority)


def _integer(name: str, cell: Cell) -> Column:
    return Column(name=name, type="integer", cell=cell)


BUILTIN_COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "Namespace"): (NAME, _string("Status", _field("status", "phase")), AGE),
    ("", "ConfigMap"): (NAME, _integer("Data", _count("data")), AGE),
    ("", "Secret"): (NAME, _string("Type", _field("type")),
                     _integer("Data", _count("data")), AGE),
    ("", "ServiceAccount"): (NAME, _integer("Secrets", lambda obj, _now: len(
        obj.get("secrets") or [])), AGE),
    ("", "Node"): (NAME, _string("Status", _node_status), _string("Roles", _node_roles), AGE,
                   _string("Version", _field("status", "nodeInfo", "kubeletVersion"))),
    ("", "Pod"): (NAME, _string("Ready", _pod_ready), _string("Status", _pod_status),
                  _string("Restarts", _pod_restarts), AGE,
                  _string("IP", _field("status", "podIP"), priority=1),
                  _string("Node", _field("spec", "nodeName"), priority=1)),
    ("", "Event"): (_string("Last Seen", _event_last_seen), _string("Type", _field("type")),
                    _string("Reason", _field("reason")), _string("Object", _event_object),
                    _string("Message", _field("message"))),
    ("coordination.k8s.io", "Lease"): (NAME, _string("Holder", _field("spec",
                                                                     "holderIdentity")), AGE),
    ("rbac.authorization.k8s.io", "Role"): (NAME, CREATED_AT),
    ("rbac.authorization.k8s.io", "ClusterRole"): (NAME, CREATED_AT),
    ("rbac.authorization.k8s.io", "RoleBinding"): (NAME, _string("Role", _role_ref), AGE),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (NAME, _string("Role", _role_ref), AGE),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (NAME, CREATED_AT),
}


def builtin_columns(group: str, kind: str) -> tuple[Column, ...]:
    """The columns of a built-in kind (Name and Age for kinds without their own printer)."""
    return BUILTIN_COLUMNS.get((group, kind), (NAME, AGE))
