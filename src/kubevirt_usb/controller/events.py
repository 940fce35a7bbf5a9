"""Kubernetes Events: the audit trail of who attached what, when, and of every refusal.

Each bind, unbind and refusal becomes a core/v1 Event on the USBAttachment (in its namespace)
and, for binds and unbinds, on the USBDevice too (cluster-scoped objects' Events live in
`default`, as kubectl expects), so `kubectl describe` shows the history from either side.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from kubevirt_usb import models

COMPONENT = "kubevirt-usb-controller"
DEVICE_EVENTS_NAMESPACE = "default"
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about."""

    kind: Literal["USBAttachment", "USBDevice"]
    name: str
    namespace: str = ""
    uid: str = ""


@dataclass(frozen=True)
class Event:
    about: ObjectRef
    type: EventType
    reason: str
    message: str


def attachment_ref(namespace: str, name: str, uid: str) -> ObjectRef:
    return ObjectRef(kind="USBAttachment", name=name, namespace=namespace, uid=uid)


def device_ref(name: str, uid: str) -> ObjectRef:
    return ObjectRef(kind="USBDevice", name=name, uid=uid)


def event_body(event: Event, *, now: str, instance: str,
               suffix: str | None = None) -> dict[str, Any]:
    """The Event object to create (`now`: RFC 3339, `instance`: this controller replica)."""
    about = event.about
    namespace = about.namespace or DEVICE_EVENTS_NAMESPACE
    involved: dict[str, Any] = {"apiVersion": models.API_VERSION, "kind": about.kind,
                                "name": about.name}
    if about.namespace:
        involved["namespace"] = about.namespace
    if about.uid:
        involved["uid"] = about.uid
    tail = suffix or secrets.token_hex(8)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{about.name[:230]}.{tail}", "namespace": namespace},
        "involvedObject": involved,
        "type": event.type, "reason": event.reason, "message": event.message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT, "reportingInstance": instance,
        "action": event.reason,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
