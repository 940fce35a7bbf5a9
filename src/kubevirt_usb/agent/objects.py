"""USBDevice objects as the agent reads and writes them: what an object says (`DeviceObject`), and
the status and labels the agent publishes for a device it sees.

The agent owns these status fields (`AGENT_FIELDS`) and nothing else in status; `spec.claimRef`
belongs to the controller. A status field the device does not have is published as null (so a
merge patch removes a stale value); nested objects carry only the keys that have values.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb.usb.model import (
    IDENTITY_TIERS,
    DeviceIdentity,
    EstablishedIdentity,
    NodeDevice,
    UsbDevice,
)

Status = dict[str, Any]

FIELD_MANAGER = "kubevirt-usb-agent"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NODE = "usb.kubevirt-usb.io/node"
LABEL_VENDOR = "usb.kubevirt-usb.io/vendor-id"
LABEL_PRODUCT = "usb.kubevirt-usb.io/product-id"
AGENT_LABELS = (LABEL_MANAGED_BY, LABEL_NODE, LABEL_VENDOR, LABEL_PRODUCT)

AGENT_FIELDS = (
    "node", "identity", "portPath", "busNumber", "deviceNumber", "vendorId", "productId",
    "vendorName", "productName", "manufacturer", "product", "serial", "speed", "usbVersion",
    "bcdDevice", "deviceClass", "interfaces", "drivers", "present", "state", "lastSeen",
    "absentSince",
)
IDENTITY_FIELDS = ("node", "identity", "portPath", "vendorId", "productId", "manufacturer",
                   "product", "serial", "present", "state", "absentSince")
"""What the agent needs of other nodes' objects: who holds which identity where, and the strings
that tell devices apart."""
AVAILABLE = "Available"
ABSENT = "Absent"

_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")



def parse_timestamp(text: Any) -> dt.datetime | None:
    """A Kubernetes time string as an aware datetime, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def device_status(device: UsbDevice, *, node: str, identity: DeviceIdentity,
                  last_seen: str) -> Status:
    """Every agent field of the status of a device that is plugged in now."""
    return {
        "node": node,
        "identity": {"tier": identity.tier, "key": identity.key},
        "portPath": device.port_path,
        "busNumber": device.bus,
        "deviceNumber": device.devnum,
        "vendorId": device.vendor_id,
        "productId": device.product_id,
        "vendorName": device.vendor_name,
        "productName": device.product_name,
        "manufacturer": device.manufacturer,
        "product": device.product,
        "serial": device.serial,
        "speed": device.speed,
        "usbVersion": device.usb_version,
        "bcdDevice": device.bcd_device,
        "deviceClass": _without_none({
            "class": f"{device.device_class:02x}",
            "subclass": f"{device.device_subclass:02x}",
            "protocol": f"{device.device_protocol:02x}",
            "name": device.device_class_name,
        }),
        "interfaces": [
            _without_none({
                "number": i.number,
                "class": f"{i.class_code:02x}",
                "subclass": f"{i.subclass:02x}",
                "protocol": f"{i.protocol:02x}",
                "driver": i.driver,
            })
            for i in device.interfaces
        ],
        "drivers": list(device.drivers),
        "present": True,
        "state": AVAILABLE,
        "lastSeen": last_seen,
        "absentSince": None,
    }


def absent_status(*, absent_since: str) -> Status:
    """The status fields that change when a device is unplugged; the rest stays as it was."""
    return {"present": False, "state": ABSENT, "absentSince": absent_since,
            "busNumber": None, "deviceNumber": None}


def changed_fields(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> Status:
    """The fields of `desired` whose value differs from `current` (a missing field is null)."""
    current = current or {}
    return {k: v for k, v in desired.items() if current.get(k) != v}


def is_label_value(text: str) -> bool:
    return len(text) <= 63 and _LABEL_VALUE.fullmatch(text) is not None


def device_labels(device: UsbDevice, *, node: str) -> dict[str, str]:
    """The labels the agent puts on a device's object (the node only when it fits a label)."""
    labels = {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_VENDOR: device.vendor_id,
              LABEL_PRODUCT: device.product_id}
    if is_label_value(node):
        labels[LABEL_NODE] = node
    return labels


@dataclass(frozen=True)
class DeviceObject:
    """What one USBDevice object says, as far as the agent cares."""

    name: str
    resource_version: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    status: Mapping[str, Any] | None = None
    claimed: bool = False
    deleting: bool = False

    @property
    def node(self) -> str | None:
        """The node whose agent published the status (None without a status)."""
        value = (self.status or {}).get("node")
        return value if isinstance(value, str) and value else None

    @property
    def label_node(self) -> str | None:
        return self.labels.get(LABEL_NODE)

    def belongs_to(self, node: str) -> bool:
        """Published by `node`, or being created by it (its label, before any status)."""
        return node in (self.node, self.label_node)

    def slim(self) -> DeviceObject:
        """The object with only what identities need (for other nodes' objects: less memory)."""
        status = None if self.status is None else {
            k: self.status[k] for k in IDENTITY_FIELDS if k in self.status}
        labels = {LABEL_NODE: self.labels[LABEL_NODE]} if LABEL_NODE in self.labels else {}
        return DeviceObject(name=self.name, resource_version=self.resource_version,
                            labels=labels, status=status, claimed=self.claimed,
                            deleting=self.deleting)

    @property
    def present(self) -> bool:
        status = self.status or {}
        return status.get("present") is not False and status.get("state") != ABSENT

    @property
    def port_path(self) -> str | None:
        value = (self.status or {}).get("portPath")
        return value if isinstance(value, str) and value else None

    @property
    def identity(self) -> DeviceIdentity | None:
        raw = (self.status or {}).get("identity")
        if not isinstance(raw, Mapping):
            return None
        tier, key = raw.get("tier"), raw.get("key")
        if tier not in IDENTITY_TIERS or not isinstance(key, str) or not key:
            return None
        return DeviceIdentity(tier, key)

    @property
    def absent_since(self) -> dt.datetime | None:
        return parse_timestamp((self.status or {}).get("absentSince"))

    @functools.cached_property
    def _established(self) -> EstablishedIdentity | None:
        identity, node, port = self.identity, self.node, self.port_path
        if identity is None or node is None or port is None:
            return None
        return EstablishedIdentity(identity=identity, node=node, port_path=port)

    def established(self) -> EstablishedIdentity | None:
        """The identity this object holds and where its device was last seen, if it says."""
        return self._established

    def node_device(self) -> NodeDevice | None:
        """The device as its status describes it (for devices on other nodes), if well-formed."""
        return self._node_device

    @functools.cached_property
    def _node_device(self) -> NodeDevice | None:  # objects are immutable: computed once
        status = self.status or {}
        node, port = self.node, self.port_path
        if node is None or port is None:
            return None
        try:
            device = UsbDevice(
                port_path=port,
                vendor_id=str(status.get("vendorId")),
                product_id=str(status.get("productId")),
                bus=0,
                devnum=0,
                manufacturer=_text(status.get("manufacturer")),
                product=_text(status.get("product")),
                serial=_text(status.get("serial")),
            )
        except ValueError:
            return None
        return NodeDevice(node=node, device=device)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_object(obj: Mapping[str, Any]) -> DeviceObject | None:
    """The agent's view of a USBDevice object (None for something without a name)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    status = obj.get("status")
    spec = obj.get("spec") or {}
    labels = meta.get("labels") or {}
    return DeviceObject(
        name=name,
        resource_version=str(meta.get("resourceVersion") or ""),
        uid=str(meta.get("uid") or ""),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        status=status if isinstance(status, dict) and status else None,
        claimed=bool(spec.get("claimRef")) if isinstance(spec, dict) else False,
        deleting=bool(meta.get("deletionTimestamp")),
    )
