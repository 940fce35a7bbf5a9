"""What the agent must write so the USBDevice objects say what this node has plugged in: a pure
function of the node's scan, every USBDevice object in the cluster, the time and the grace period.

Identities are decided cluster-wide (`usb.identity.assign_identities`): the devices of other nodes
come from their objects' status, and every object's identity is established. For each device of
this node (hubs are not published):

- no object of that name: create it (labels only; status is a subresource), then write status;
- an object of that name: write the status fields that differ, if any. `lastSeen` is written with
  them and only then: it is the time the agent last published the device as present (it
  appeared, changed, moved or came back), not a per-scan timestamp, so an unchanged node writes
  nothing. That the node is alive (so its present devices are still there) is told by its
  heartbeat Lease instead.

For each object this node published (status.node) whose device is no longer plugged in:

- still marked present: mark it absent at once (`present: false`, `state: Absent`,
  `absentSince`: now, no bus/device number); `lastSeen` keeps the time it was last published;
- absent for `grace` or longer and not bound (`spec.claimRef`): delete it, only if unchanged since
  read (resourceVersion precondition). A bound device stays, absent, until unbound: a claim waits
  for its device to come back.

Objects without status carrying this node's label are creations that did not finish: they get
their status, or are deleted if their device is gone. A name held by another node's unfinished
creation, or by an object being deleted, waits (`Plan.waiting`) for the next round.

Writes to existing objects carry the resourceVersion they were planned from; `None` means "the
version the previous write of this object returned".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb.agent.objects import (
    DeviceObject,
    absent_status,
    changed_fields,
    device_labels,
    device_status,
)
from kubevirt_usb.clock import rfc3339
from kubevirt_usb.usb.identity import assign_identities, device_object_name
from kubevirt_usb.usb.model import DeviceIdentity, EstablishedIdentity, NodeDevice, UsbDevice


@dataclass(frozen=True)
class Create:
    """Create the object (metadata only)."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class SetStatus:
    """Merge these fields into the object's status."""

    name: str
    resource_version: str | None
    status: Mapping[str, Any]
    reason: str  # appeared, changed, absent


@dataclass(frozen=True)
class SetLabels:
    """Merge these labels into the object's metadata."""

    name: str
    resource_version: str | None
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Delete:
    """Delete the object if it still has this resourceVersion."""

    name: str
    resource_version: str
    reason: str


Write = Create | SetStatus | SetLabels | Delete


@dataclass(frozen=True)
class Plan:
    """The writes to make, in order; when to look again for a grace period ending; names that
    could not be handled this round."""

    writes: tuple[Write, ...] = ()
    next_due: dt.datetime | None = None
    waiting: tuple[str, ...] = ()
    devices: Mapping[str, UsbDevice] = field(default_factory=dict)  # object name -> device


def _other_nodes(node: str, objects: Iterable[DeviceObject]) -> list[NodeDevice]:
    """Devices other nodes have plugged in now, one per location."""
    found: dict[tuple[str, str], NodeDevice] = {}
    for obj in sorted(objects, key=lambda o: o.name):
        if obj.node == node or not obj.present or obj.deleting:
            continue
        device = obj.node_device()
        if device is not None:
            found.setdefault(device.location, device)
    return list(found.values())


def _established(objects: Iterable[DeviceObject]) -> list[EstablishedIdentity]:
    return [e for e in (o.established() for o in objects) if e is not None]


def identify(*, node: str, devices: Sequence[UsbDevice],
             objects: Mapping[str, DeviceObject]) -> dict[str, tuple[UsbDevice, DeviceIdentity]]:
    """Object name -> (device, identity) for this node's devices, decided cluster-wide."""
    mine = [NodeDevice(node=node, device=d) for d in devices]
    others = _other_nodes(node, objects.values())
    identities = assign_identities([*mine, *others], established=_established(objects.values()))
    named: dict[str, tuple[UsbDevice, DeviceIdentity]] = {}
    for device in mine:
        identity = identities[device.location]
        named[device_object_name(identity)] = (device.device, identity)
    return named


def _label_patch(obj: DeviceObject, wanted: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in wanted.items() if obj.labels.get(k) != v}


def _for_device(*, node: str, name: str, device: UsbDevice, identity: DeviceIdentity,
                obj: DeviceObject | None, now: str) -> tuple[list[Write], bool]:
    """The writes for one plugged-in device, and whether it has to wait."""
    labels = device_labels(device, node=node)
    desired = device_status(device, node=node, identity=identity, last_seen=now)
    if obj is None:
        return [Create(name, labels), SetStatus(name, None, desired, "appeared")], False
    if obj.deleting:
        return [], True
    if obj.status is None:
        if obj.label_node not in (node, None):
            return [], True  # another node is creating it right now
        writes: list[Write] = [SetStatus(name, obj.resource_version, desired, "appeared")]
    else:
        if obj.identity != identity:
            return [], True  # a different identity holds this name (should never happen)
        diff = changed_fields(obj.status, {k: v for k, v in desired.items() if k != "lastSeen"})
        if not diff:
            writes = []
        else:
            reason = "appeared" if not obj.present or obj.node != node else "changed"
            diff["lastSeen"] = now
            writes = [SetStatus(name, obj.resource_version, diff, reason)]
    label_diff = _label_patch(obj, labels)
    if label_diff:
        writes.append(SetLabels(name, None if writes else obj.resource_version, label_diff))
    return writes, False


def _for_gone(obj: DeviceObject, *, now: dt.datetime,
              grace: dt.timedelta) -> tuple[list[Write], dt.datetime | None]:
    """The writes for an object of this node whose device is not plugged in, and when to look
    again."""
    if obj.deleting:
        return [], None
    if obj.status is None:
        return ([] if obj.claimed else [Delete(obj.name, obj.resource_version, "unfinished")],
                None)
    if obj.present:
        marked = absent_status(absent_since=rfc3339(now))
        return [SetStatus(obj.name, obj.resource_version, marked, "absent")], now + grace
    since = obj.absent_since
    if since is None:
        fix = {"absentSince": rfc3339(now)}
        return [SetStatus(obj.name, obj.resource_version, fix, "absent")], now + grace
    if obj.claimed:
        return [], None
    due = since + grace
    if due <= now:
        return [Delete(obj.name, obj.resource_version, "absent past the grace period")], None
    return [], due


def _is_mine(obj: DeviceObject, node: str) -> bool:
    """Published by this node (status), or created by it and not finished (label)."""
    return obj.node == node if obj.status is not None else obj.label_node == node


def plan_writes(*, node: str, devices: Sequence[UsbDevice], objects: Mapping[str, DeviceObject],
                now: dt.datetime, grace: dt.timedelta,
                unsure_ports: Collection[str] = ()) -> Plan:
    """The writes that make the objects match this node's devices (see the module docstring).

    `unsure_ports` are ports whose device could not be read this time (it was being unplugged or
    replugged while scanned): their objects are left as they are until a later scan tells.
    """
    published = [d for d in devices if not d.is_hub]
    named = identify(node=node, devices=published, objects=objects)
    stamp = rfc3339(now)
    writes: list[Write] = []
    waiting: list[str] = []
    dues: list[dt.datetime] = []
    for name, (device, identity) in sorted(named.items()):
        device_writes, waits = _for_device(node=node, name=name, device=device,
                                           identity=identity, obj=objects.get(name), now=stamp)
        writes.extend(device_writes)
        if waits:
            waiting.append(name)
    for name, obj in sorted(objects.items()):
        if name in named or not _is_mine(obj, node) or obj.port_path in unsure_ports:
            continue
        gone_writes, due = _for_gone(obj, now=now, grace=grace)
        writes.extend(gone_writes)
        if due is not None:
            dues.append(due)
    return Plan(writes=tuple(writes), next_due=min(dues, default=None), waiting=tuple(waiting),
                devices={name: device for name, (device, _) in named.items()})
