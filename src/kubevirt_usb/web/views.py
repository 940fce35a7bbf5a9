"""What the pages show, computed from API objects (plain dicts) without any I/O: device rows
grouped by node and filtered, a VM's attachments and its four usbredir slots, policies, the audit
trail. Templates only lay these out.

Every string that comes from hardware or users passes through `printable`, and the templates
escape it: a product string holding markup or control characters is shown as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb import models
from kubevirt_usb.models import API_VERSION
from kubevirt_usb.printable import printable

Obj = Mapping[str, Any]
SLOTS = 4  # KubeVirt gives every VMI four usbredir slots

PHASE_TONE = {
    "Attached": "green", "Bound": "blue", "Connecting": "blue", "Pending": "blue",
    "WaitingForDevice": "orange", "VMNotReady": "orange", "NoFreeSlot": "orange",
    "NotAllowed": "red", "Failed": "red",
}
STATE_TONE = {"Available": "green", "In use": "blue", "Absent": "grey"}
DEVICE_STATES = ("Available", "In use", "Absent")


def parse_time(value: object) -> dt.datetime | None:
    """An RFC 3339 timestamp from the API, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def age(value: object, *, now: dt.datetime) -> str:
    """How long ago, the way kubectl says it (12s, 5m, 3h, 2d); empty when unknown."""
    then = parse_time(value)
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_bytes(count: object) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 12.0 MiB."""
    value = float(count) if isinstance(count, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


_SELECTOR_KEYS = (("name", "name"), ("vendorId", "vendor"), ("productId", "product"),
                  ("serial", "serial"), ("product", "productName"), ("node", "node"),
                  ("port", "port"))


def selector_summary(selector: Obj | None, *, empty: str = "any device") -> str:
    """A device selector as the user would type it: serial=AAA1, node=node1."""
    parts = [f"{label}={printable(selector[key], limit=64)}"
             for key, label in _SELECTOR_KEYS if selector and selector.get(key)]
    return ", ".join(parts) or empty


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _status(obj: Obj) -> Obj:
    status: Obj = obj.get("status") or {}
    return status


def _spec(obj: Obj) -> Obj:
    spec: Obj = obj.get("spec") or {}
    return spec


# ---- devices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    """One USBDevice as the devices page lists it."""

    name: str
    node: str
    ids: str
    product: str
    catalog_name: str
    manufacturer: str
    serial: str
    port: str
    identity: str
    state: str
    claim_namespace: str
    claim_vm: str
    attachment: str
    since: str
    since_age: str

    @property
    def state_tone(self) -> str:
        return STATE_TONE.get(self.state, "grey")

    @property
    def used_by(self) -> str:
        """The VM holding the device, as namespace/name."""
        return f"{self.claim_namespace}/{self.claim_vm}" if self.claim_vm else ""

    @property
    def free(self) -> bool:
        return self.state == "Available"

    @property
    def label(self) -> str:
        """How a device is named in a choice list: product, serial, node."""
        serial = f" ({self.serial})" if self.serial else ""
        return f"{self.product}{serial} on {self.node}"

    def matches(self, text: str) -> bool:
        haystack = " ".join((self.name, self.ids, self.product, self.catalog_name,
                             self.manufacturer, self.serial, self.port, self.used_by))
        return text.casefold() in haystack.casefold()


def _attachment_index(attachments: Iterable[Obj]) -> dict[tuple[str, str], Obj]:
    return {(str(_meta(a).get("namespace") or ""), str(_meta(a).get("name") or "")): a
            for a in attachments}


def device_row(device: Obj, *, attachments: Mapping[tuple[str, str], Obj],
               now: dt.datetime) -> DeviceRow:
    """A USBDevice as a row; `attachments` (by namespace and name) tell since when it is used."""
    status, claim = _status(device), _spec(device).get("claimRef") or {}
    vid, pid = str(status.get("vendorId") or "????"), str(status.get("productId") or "????")
    identity = status.get("identity") or {}
    absent = status.get("present") is False or status.get("state") == "Absent"
    state = "Absent" if absent else "In use" if claim else "Available"
    since: object = _meta(device).get("creationTimestamp")
    if absent:
        since = status.get("absentSince") or since
    elif claim:
        bound = attachments.get((str(claim.get("namespace")), str(claim.get("attachment"))))
        since = _status(bound).get("attachedSince") if bound else None
    catalog = " ".join(str(x) for x in (status.get("vendorName"), status.get("productName")) if x)
    return DeviceRow(
        name=printable(_meta(device).get("name")),
        node=printable(status.get("node")),
        ids=printable(f"{vid}:{pid}"),
        product=printable(status.get("product") or status.get("productName") or f"{vid}:{pid}"),
        catalog_name=printable(catalog),
        manufacturer=printable(status.get("manufacturer")),
        serial=printable(status.get("serial")),
        port=printable(status.get("portPath")),
        identity=printable(f"{identity.get('tier', '?')}: {identity.get('key', '')}"
                           if identity else ""),
        state=state,
        claim_namespace=printable(claim.get("namespace") or ""),
        claim_vm=printable(claim.get("vm") or ""),
        attachment=printable(claim.get("attachment") or ""),
        since=printable(since, limit=64),
        since_age=age(since, now=now),
    )


@dataclass(frozen=True)
class DeviceFilter:
    """The devices page's filters: a node, a state, and free text (ids, names, serial...)."""

    node: str = ""
    state: str = ""
    text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> DeviceFilter:
        state = query.get("state", "")
        return cls(node=query.get("node", "").strip()[:253],
                   state=state if state in DEVICE_STATES else "",
                   text=query.get("q", "").strip()[:100])

    def keep(self, row: DeviceRow) -> bool:
        return ((not self.node or row.node == self.node)
                and (not self.state or row.state == self.state)
                and (not self.text or row.matches(self.text)))

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (empty ones left out)."""
        return {k: v for k, v in (("node", self.node), ("state", self.state), ("q", self.text))
                if v}


@dataclass(frozen=True)
class NodeGroup:
    node: str
    rows: list[DeviceRow]

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


def device_rows(devices: Iterable[Obj], *, attachments: Iterable[Obj] = (),
                now: dt.datetime) -> list[DeviceRow]:
    index = _attachment_index(attachments)
    rows = [device_row(d, attachments=index, now=now) for d in devices]
    return sorted(rows, key=lambda r: (r.node, r.port, r.name))


def devices_by_node(rows: Iterable[DeviceRow], *, keep: DeviceFilter | None = None
                    ) -> list[NodeGroup]:
    """Rows grouped by node (nodes in name order), after the filter."""
    groups: dict[str, list[DeviceRow]] = {}
    for row in rows:
        if keep is None or keep.keep(row):
            groups.setdefault(row.node, []).append(row)
    return [NodeGroup(node=node, rows=groups[node]) for node in sorted(groups)]


def node_names(rows: Iterable[DeviceRow]) -> list[str]:
    return sorted({row.node for row in rows})


# ---- VMs and attachments ----------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentRow:
    """One USBAttachment: what it asks for, where it stands, and its counters."""

    name: str
    namespace: str
    vm: str
    wants: str
    phase: str
    message: str
    device: str
    node: str
    bytes_to_vm: int
    bytes_from_vm: int
    reconnects: int
    last_error: str
    since: str
    since_age: str
    created: str
    detaching: bool
    path: str = ""
    """Local (straight into the VM's slot socket on the device's node) or API, once streaming."""
    path_reason: str = ""
    path_message: str = ""
    slot: str = ""
    """The slot the agent took itself on the local path (`3 (Direct)`), else who handed it out."""

    @property
    def phase_tone(self) -> str:
        return "grey" if self.detaching else PHASE_TONE.get(self.phase, "grey")

    @property
    def shown_phase(self) -> str:
        return "Detaching" if self.detaching else self.phase

    @property
    def to_vm(self) -> str:
        return format_bytes(self.bytes_to_vm)

    @property
    def from_vm(self) -> str:
        return format_bytes(self.bytes_from_vm)


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def attachment_row(attachment: Obj, *, now: dt.datetime) -> AttachmentRow:
    meta, spec, status = _meta(attachment), _spec(attachment), _status(attachment)
    since = status.get("attachedSince") or meta.get("creationTimestamp")
    return AttachmentRow(
        name=printable(meta.get("name")),
        namespace=printable(meta.get("namespace")),
        vm=printable(spec.get("vm")),
        wants=selector_summary(spec.get("device")),
        phase=printable(status.get("phase") or "Pending", limit=32),
        message=printable(status.get("message"), limit=512),
        device=printable(status.get("device")),
        node=printable(status.get("node")),
        bytes_to_vm=_count(status.get("bytesToVM")),
        bytes_from_vm=_count(status.get("bytesFromVM")),
        reconnects=_count(status.get("reconnects")),
        last_error=printable(status.get("lastError"), limit=512),
        since=printable(since, limit=64),
        since_age=age(since, now=now),
        created=str(meta.get("creationTimestamp") or ""),
        detaching=bool(meta.get("deletionTimestamp")),
        path=printable(status.get("path"), limit=8),
        path_reason=printable(status.get("pathReason"), limit=64),
        path_message=printable(status.get("pathMessage"), limit=512),
        slot=_slot(status),
    )


def _slot(status: Obj) -> str:
    """The slot a running stream holds; none when no stream runs (a slot left in status is not
    held)."""
    if not models.is_streaming(status.get("phase")):
        return ""
    slot, kind = status.get("slot"), printable(status.get("slotKind"), limit=16)
    if isinstance(slot, int) and kind:
        return f"slot {slot} ({kind})"
    return kind


def attachment_rows(attachments: Iterable[Obj], *, now: dt.datetime,
                    vm: str | None = None) -> list[AttachmentRow]:
    """Rows for every attachment (of `vm`, when given), in the order they were made."""
    rows = [attachment_row(a, now=now) for a in attachments
            if vm is None or _spec(a).get("vm") == vm]
    return sorted(rows, key=lambda r: (r.vm, r.created, r.name))


@dataclass(frozen=True)
class SlotView:
    """One of the VM's four usbredir slots and the attachment holding it, if any.

    KubeVirt does not tell which of the four slots a stream landed in (virt-handler takes the
    lowest free one), so the slots are shown by use, not by number."""

    position: int
    attachment: AttachmentRow | None


def slots(rows: Iterable[AttachmentRow]) -> list[SlotView]:
    """The VM's four slots: first those held by its attachments (oldest first), then free ones."""
    holders = sorted((r for r in rows if r.phase in models.BOUND_PHASES and not r.detaching),
                     key=lambda r: (r.since or r.created, r.name))[:SLOTS]
    return [SlotView(position=i + 1, attachment=holders[i] if i < len(holders) else None)
            for i in range(SLOTS)]


@dataclass(frozen=True)
class VMRow:
    name: str
    namespace: str
    status: str
    node: str
    passthrough: bool
    attachments: int
    attached: int

    @property
    def status_tone(self) -> str:
        return "green" if self.status == "Running" else "grey"


def vm_row(vm: Obj, *, vmi: Obj | None, attachments: Sequence[AttachmentRow]) -> VMRow:
    name = str(_meta(vm).get("name") or "")
    template = (_spec(vm).get("template") or {}).get("spec") or {}
    devices = (template.get("domain") or {}).get("devices") or {}
    mine = [a for a in attachments if a.vm == name]
    return VMRow(
        name=printable(name), namespace=printable(_meta(vm).get("namespace")),
        status=printable(_status(vm).get("printableStatus") or "Unknown", limit=64),
        node=printable(_status(vmi).get("nodeName") if vmi else ""),
        passthrough="clientPassthrough" in devices,
        attachments=len(mine), attached=sum(1 for a in mine if a.phase == "Attached"))


def vm_rows(vms: Iterable[Obj], *, vmis: Iterable[Obj], attachments: Sequence[AttachmentRow]
            ) -> list[VMRow]:
    by_name = {str(_meta(v).get("name")): v for v in vmis}
    rows = [vm_row(vm, vmi=by_name.get(str(_meta(vm).get("name"))), attachments=attachments)
            for vm in vms]
    return sorted(rows, key=lambda r: r.name)


# ---- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRow:
    name: str
    namespaces: list[str]
    namespace_selector: str
    devices: str
    age: str
    resource_version: str


def _label_selector_summary(selector: Obj | None) -> str:
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for req in selector.get("matchExpressions") or []:
        values = ",".join(str(v) for v in req.get("values") or [])
        parts.append(f"{req.get('key')} {req.get('operator')} ({values})" if values
                     else f"{req.get('key')} {req.get('operator')}")
    return printable(", ".join(parts), limit=512)


def policy_rows(policies: Iterable[Obj], *, now: dt.datetime) -> list[PolicyRow]:
    rows = [PolicyRow(
        name=printable(_meta(p).get("name")),
        namespaces=[printable(ns, limit=63) for ns in _spec(p).get("namespaces") or []],
        namespace_selector=_label_selector_summary(_spec(p).get("namespaceSelector")),
        devices=selector_summary(_spec(p).get("devices"), empty="every device"),
        age=age(_meta(p).get("creationTimestamp"), now=now),
        resource_version=str(_meta(p).get("resourceVersion") or ""))
        for p in policies]
    return sorted(rows, key=lambda r: r.name)


# ---- the audit trail --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """One Kubernetes Event about a device, attachment or policy."""

    time: str
    age: str
    type: str
    reason: str
    object: str
    namespace: str
    message: str
    source: str
    count: int

    @property
    def tone(self) -> str:
        return "orange" if self.type == "Warning" else "blue"


def _event_time(event: Obj) -> str:
    meta = _meta(event)
    series = event.get("series") or {}
    return str(series.get("lastObservedTime") or event.get("lastTimestamp")
               or event.get("eventTime") or event.get("firstTimestamp")
               or meta.get("creationTimestamp") or "")


def is_ours(event: Obj) -> bool:
    """Whether an Event is about one of this project's objects."""
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return str(involved.get("apiVersion") or "") == API_VERSION


@dataclass(frozen=True)
class EventFilter:
    """Which events a view shows: of one kind and one object name set (empty: all ours)."""

    kind: str = ""
    names: frozenset[str] = field(default_factory=frozenset)

    def keep(self, event: Obj) -> bool:
        involved = event.get("involvedObject") or {}
        return (is_ours(event) and (not self.kind or involved.get("kind") == self.kind)
                and (not self.names or involved.get("name") in self.names))


def event_rows(events: Iterable[Obj], *, now: dt.datetime, keep: EventFilter | None = None,
               limit: int = 200) -> list[EventRow]:
    """The newest `limit` events of ours (passing `keep`), newest first."""
    chosen = [e for e in events if (keep or EventFilter()).keep(e)]
    chosen.sort(key=_event_time, reverse=True)
    rows = []
    for event in chosen[:limit]:
        involved = event.get("involvedObject") or {}
        source = event.get("source") or {}
        where = f"{involved.get('namespace')}/" if involved.get("namespace") else ""
        rows.append(EventRow(
            time=_event_time(event), age=age(_event_time(event), now=now),
            type=printable(event.get("type") or "Normal", limit=32),
            reason=printable(event.get("reason"), limit=128),
            object=printable(f"{involved.get('kind', '')} {where}{involved.get('name', '')}"),
            namespace=printable(_meta(event).get("namespace")),
            message=printable(event.get("message"), limit=1024),
            source=printable(event.get("reportingComponent") or source.get("component")),
            count=_count(event.get("count")) or 1))
    return rows
