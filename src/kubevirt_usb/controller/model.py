"""What the controller reads from each object, parsed once from the API's plain dicts into small
frozen views: devices, attachments, policies, VMs, VMIs and the agents' heartbeat Leases.

A view keeps only what the decisions use. Parsing never raises: an object the controller cannot
use says why in its view (`Attachment.problem`) or is left out (`None`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kubevirt_usb import models

Obj = Mapping[str, Any]
Key = tuple[str, str]
"""(namespace, name); the namespace is "" for cluster-scoped objects."""

FINALIZER = "usb.kubevirt-usb.io/unbind"
AGENT_PHASES = models.AGENT_PHASES


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def object_key(obj: Obj) -> Key:
    meta = _meta(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def resource_version(obj: Obj) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


@dataclass(frozen=True)
class Claim:
    """A device's `spec.claimRef`: which attachment (and VM, and VM instance) holds it."""

    namespace: str
    attachment: str
    vm: str
    uid: str | None = None
    vmi_uid: str | None = None

    @property
    def key(self) -> Key:
        return self.namespace, self.attachment

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "attachment": self.attachment,
                               "vm": self.vm}
        if self.uid:
            out["uid"] = self.uid
        if self.vmi_uid:
            out["vmiUID"] = self.vmi_uid
        return out


@dataclass(frozen=True)
class Device:
    """A USBDevice: where it is, what it is, whether it is plugged in, and who holds it."""

    name: str
    resource_version: str = ""
    uid: str = ""
    node: str | None = None
    vendor_id: str | None = None
    product_id: str | None = None
    serial: str | None = None
    product: str | None = None
    product_name: str | None = None
    vendor_name: str | None = None
    port_path: str | None = None
    present: bool = True
    published: bool = True
    """False while the agent has created the object but not yet written its status."""
    claim: Claim | None = None
    deleting: bool = False
    reachable: str | None = None
    """The controller's own Reachable condition on the device ("True"/"False"), if written."""

    def describe(self) -> str:
        """`46f4-0001-aaa1 (QEMU USB HARDDRIVE, serial AAA1, node1 port 2-1)`."""
        what = self.product_name or self.product or f"{self.vendor_id}:{self.product_id}"
        details = [what]
        if self.serial:
            details.append(f"serial {self.serial}")
        if self.node:
            details.append(f"{self.node} port {self.port_path or '?'}")
        return f"{self.name} ({', '.join(details)})"


def _claim(value: Any) -> Claim | None:
    ref = _dict(value)
    namespace, attachment = _str(ref.get("namespace")), _str(ref.get("attachment"))
    if namespace is None or attachment is None:
        return None
    return Claim(namespace=namespace, attachment=attachment, vm=str(ref.get("vm") or ""),
                 uid=_str(ref.get("uid")), vmi_uid=_str(ref.get("vmiUID")))


def _condition_status(conditions: Any, kind: str) -> str | None:
    for item in conditions if isinstance(conditions, list) else []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return _str(item.get("status"))
    return None


def parse_device(obj: Obj) -> Device | None:
    meta = _meta(obj)
    name = _str(meta.get("name"))
    if name is None:
        return None
    status = _dict(obj.get("status"))
    return Device(
        name=name, resource_version=str(meta.get("resourceVersion") or ""),
        uid=str(meta.get("uid") or ""), node=_str(status.get("node")),
        vendor_id=_str(status.get("vendorId")), product_id=_str(status.get("productId")),
        serial=_str(status.get("serial")), product=_str(status.get("product")),
        product_name=_str(status.get("productName")),
        vendor_name=_str(status.get("vendorName")), port_path=_str(status.get("portPath")),
        present=status.get("present") is not False and status.get("state") != "Absent",
        published=bool(status.get("node")),
        claim=_claim(_dict(obj.get("spec")).get("claimRef")),
        deleting=bool(meta.get("deletionTimestamp")),
        reachable=_condition_status(status.get("conditions"), "Reachable"))


@dataclass(frozen=True)
class Condition:
    """One status condition as the controller writes it."""

    type: str
    status: str
    reason: str
    message: str
    last_transition_time: str | None = None

    def same(self, other: Condition) -> bool:
        """Equal but for the transition time."""
        return (self.type, self.status, self.reason, self.message) == (
            other.type, other.status, other.reason, other.message)

    def to_dict(self, *, generation: int) -> dict[str, Any]:
        return {"type": self.type, "status": self.status, "reason": self.reason,
                "message": self.message, "lastTransitionTime": self.last_transition_time,
                "observedGeneration": generation}


@dataclass(frozen=True)
class AttachmentStatus:
    """The status fields the controller reads back."""

    phase: str = "Pending"
    message: str = ""
    device: str | None = None
    node: str | None = None
    vmi_uid: str | None = None
    conditions: tuple[Condition, ...] = ()
    observed_generation: int | None = None


def _conditions(value: Any) -> tuple[Condition, ...]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and _str(item.get("type")):
            out.append(Condition(type=str(item["type"]), status=str(item.get("status") or ""),
                                 reason=str(item.get("reason") or ""),
                                 message=str(item.get("message") or ""),
                                 last_transition_time=_str(item.get("lastTransitionTime"))))
    return tuple(out)


def _attachment_status(value: Any) -> AttachmentStatus:
    status = _dict(value)
    generation = status.get("observedGeneration")
    return AttachmentStatus(
        phase=str(status.get("phase") or "Pending"), message=str(status.get("message") or ""),
        device=_str(status.get("device")), node=_str(status.get("node")),
        vmi_uid=_str(status.get("vmiUID")), conditions=_conditions(status.get("conditions")),
        observed_generation=generation if isinstance(generation, int) else None)


@dataclass(frozen=True)
class OwnerRef:
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class Attachment:
    """A USBAttachment: the VM (same namespace), the device selector and what status says."""

    namespace: str
    name: str
    uid: str = ""
    resource_version: str = ""
    generation: int = 1
    created: str = ""
    vm: str = ""
    selector: models.DeviceSelector = field(default_factory=models.DeviceSelector)
    problem: str | None = None
    """Why the spec cannot be used (the CRD schema normally refuses such objects)."""
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    owners: tuple[OwnerRef, ...] = ()
    owner_refs: tuple[Mapping[str, Any], ...] = ()
    """The ownerReferences as stored (kept whole when one is added)."""
    status: AttachmentStatus = field(default_factory=AttachmentStatus)

    @property
    def key(self) -> Key:
        return self.namespace, self.name

    @property
    def order(self) -> tuple[str, str, str]:
        """Oldest first: who waited longest gets a device that frees up."""
        return self.created, self.namespace, self.name


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"spec.{where}: {first['msg']}" if where else str(first["msg"])


def parse_attachment(obj: Obj) -> Attachment | None:
    meta = _meta(obj)
    namespace, name = _str(meta.get("namespace")), _str(meta.get("name"))
    if namespace is None or name is None:
        return None
    spec = _dict(obj.get("spec"))
    problem = None
    selector = models.DeviceSelector()
    vm = str(spec.get("vm") or "")
    try:
        parsed = models.USBAttachmentSpec.model_validate(spec)
        selector, vm = parsed.device, parsed.vm
    except ValidationError as exc:
        problem = _problem(exc)
    refs = tuple(o for o in _list(meta.get("ownerReferences")) if isinstance(o, Mapping))
    owners = tuple(OwnerRef(kind=str(o.get("kind") or ""), name=str(o.get("name") or ""),
                            uid=str(o.get("uid") or "")) for o in refs)
    generation = meta.get("generation")
    return Attachment(
        namespace=namespace, name=name, uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        generation=generation if isinstance(generation, int) else 1,
        created=str(meta.get("creationTimestamp") or ""), vm=vm, selector=selector,
        problem=problem, deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(str(f) for f in _list(meta.get("finalizers"))), owners=owners,
        owner_refs=refs,
        status=_attachment_status(obj.get("status")))


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NamespaceSelector:
    """A label selector (matchLabels and matchExpressions) over namespaces."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[LabelRequirement, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A USBPolicy: which namespaces may claim which devices."""

    name: str
    namespaces: frozenset[str] = frozenset()
    namespace_selector: NamespaceSelector | None = None
    devices: models.DeviceSelector = field(default_factory=models.DeviceSelector)


def parse_policy(obj: Obj) -> Policy | None:
    name = _str(_meta(obj).get("name"))
    if name is None:
        return None
    try:
        spec = models.USBPolicySpec.model_validate(_dict(obj.get("spec")))
    except ValidationError:
        return None  # a policy the schema would refuse grants nothing
    selector = None
    if spec.namespace_selector is not None:
        raw = spec.namespace_selector
        selector = NamespaceSelector(
            match_labels=tuple(sorted((raw.match_labels or {}).items())),
            expressions=tuple(LabelRequirement(key=e.key, operator=e.operator,
                                               values=frozenset(e.values))
                              for e in raw.match_expressions or []))
    return Policy(name=name, namespaces=frozenset(spec.namespaces),
                  namespace_selector=selector, devices=spec.devices)


@dataclass(frozen=True)
class VM:
    """A KubeVirt VirtualMachine: its uid and whether its template asks for USB redirection."""

    namespace: str
    name: str
    uid: str
    client_passthrough: bool
    deleting: bool = False


def _has_client_passthrough(domain_spec: Any) -> bool:
    devices = _dict(_dict(domain_spec).get("domain")).get("devices")
    return _dict(devices).get("clientPassthrough") is not None


def parse_vm(obj: Obj) -> VM | None:
    namespace, name = object_key(obj)
    if not namespace or not name:
        return None
    template = _dict(_dict(obj.get("spec")).get("template")).get("spec")
    return VM(namespace=namespace, name=name, uid=str(_meta(obj).get("uid") or ""),
              client_passthrough=_has_client_passthrough(template),
              deleting=bool(_meta(obj).get("deletionTimestamp")))


@dataclass(frozen=True)
class VMI:
    """A KubeVirt VirtualMachineInstance: one run of a VM, on one node."""

    namespace: str
    name: str
    uid: str
    phase: str
    node: str | None
    client_passthrough: bool
    deleting: bool = False

    @property
    def running(self) -> bool:
        return self.phase == "Running" and not self.deleting


def parse_vmi(obj: Obj) -> VMI | None:
    namespace, name = object_key(obj)
    if not namespace or not name:
        return None
    status = _dict(obj.get("status"))
    return VMI(namespace=namespace, name=name, uid=str(_meta(obj).get("uid") or ""),
               phase=str(status.get("phase") or "Pending"), node=_str(status.get("nodeName")),
               client_passthrough=_has_client_passthrough(obj.get("spec")),
               deleting=bool(_meta(obj).get("deletionTimestamp")))


@dataclass(frozen=True)
class AgentLease:
    """A node agent's heartbeat Lease: the node and how long a renewal counts."""

    node: str
    renew_time: str
    duration_seconds: float


def parse_agent_lease(obj: Obj, *, prefix: str) -> AgentLease | None:
    """The heartbeat of the node agent this Lease belongs to (named `<prefix><node>`)."""
    name = str(_meta(obj).get("name") or "")
    if not name.startswith(prefix):
        return None
    spec = _dict(obj.get("spec"))
    node = _str(spec.get("holderIdentity")) or name[len(prefix):]
    duration = spec.get("leaseDurationSeconds")
    if not node or not isinstance(duration, int | float) or duration <= 0:
        return None
    return AgentLease(node=node, renew_time=str(spec.get("renewTime") or ""),
                      duration_seconds=float(duration))


def namespace_labels(obj: Obj) -> dict[str, str]:
    labels = _meta(obj).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
