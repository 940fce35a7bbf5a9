"""The project's resources in the user's vocabulary: USBDevice, USBAttachment, USBPolicy.

These pydantic models are the one source of truth: the CRDs (schemas, validation, printer columns)
are generated from them (`kubevirt_usb.crds`), and the agent, controller, CLI and web UI parse and
build objects with them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

GROUP = "usb.kubevirt-usb.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
USBREDIR_VERSION_ANNOTATION = f"{GROUP}/usbredir-version"
"""On a node agent's heartbeat Lease: the libusbredirhost it streams with ("0.13.0-2
(libusbredirhost.so.1.0.3)"), or why it has none ("not installed: ...")."""
USBREDIR_MISSING_PREFIX = "not installed"

HexId = Annotated[str, Field(pattern=r"^[0-9a-f]{4}$", description="4 lowercase hex digits")]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1123 label (namespaces; at most 63 characters)."""
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A DNS-1123 subdomain (most object names; at most 253 characters)."""
DNSLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
DNSSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


def is_dns_label(value: str) -> bool:
    """Whether `value` can name a namespace."""
    return len(value) <= 63 and re.fullmatch(DNS_LABEL, value) is not None


def is_dns_subdomain(value: str) -> bool:
    """Whether `value` can name an object whose names are DNS subdomains (VMs, attachments...)."""
    return len(value) <= 253 and re.fullmatch(DNS_SUBDOMAIN, value) is not None
PortPath = Annotated[str, Field(pattern=r"^[0-9]+-[0-9]+(\.[0-9]+)*$",
                                description="the kernel's port path, e.g. 3-1.4")]

IdentityTier = Literal["serial", "serial+descriptors", "port"]
AttachmentPhase = Literal["Pending", "WaitingForDevice", "NotAllowed", "VMNotReady", "NoFreeSlot",
                          "Bound", "Connecting", "Attached", "Failed"]
AGENT_PHASES: frozenset[str] = frozenset({"Connecting", "Attached", "Failed"})
"""Phases the node agent writes while a binding stands."""
STREAMING_PHASES: frozenset[str] = frozenset({"Connecting", "Attached"})
"""Phases in which a stream runs, and so holds the slot (`status.slot`, `slotKind`) it took."""
BOUND_PHASES: frozenset[str] = frozenset({"Bound"}) | AGENT_PHASES
"""Phases of an attachment that holds a device, and so one of its VM's four usbredir slots."""
DeviceState = Literal["Available", "Absent"]


def is_streaming(phase: object) -> bool:
    """Whether a phase read from an object (any JSON value, hostile ones too) is one in which a
    stream runs."""
    return isinstance(phase, str) and phase in STREAMING_PHASES


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


def selector_words(*, name: str | None = None, vendor_id: str | None = None,
                   product_id: str | None = None, product: str | None = None,
                   serial: str | None = None, node: str | None = None,
                   port: str | None = None) -> str:
    """A device selector in prose: `serial AAA1 on node1`, `id 0781:*`, `any device`."""
    out = []
    if name is not None:
        out.append(f"device {name}")
    if vendor_id is not None or product_id is not None:
        out.append(f"id {vendor_id or '*'}:{product_id or '*'}")
    if product is not None:
        out.append(f"product {product!r}")
    if serial is not None:
        out.append(f"serial {serial}")
    if node is not None:
        out.append(f"on {node}")
    if port is not None:
        out.append(f"port {port}")
    return " ".join(out) or "any device"


class DeviceSelector(_Model):
    """Which device: every field optional, all given fields must match."""

    name: DNSSubdomain | None = Field(default=None, description="a USBDevice name")
    vendor_id: HexId | None = Field(default=None, alias="vendorId")
    product_id: HexId | None = Field(default=None, alias="productId")
    serial: str | None = Field(default=None, max_length=256)
    product: str | None = Field(default=None, max_length=256,
                                description="the product string (descriptor or usb.ids name)")
    node: DNSSubdomain | None = None
    port: PortPath | None = None

    def words(self) -> str:
        return selector_words(name=self.name, vendor_id=self.vendor_id,
                              product_id=self.product_id, product=self.product,
                              serial=self.serial, node=self.node, port=self.port)


class ClaimRef(_Model):
    """The binding of a device to one attachment, written only by the controller."""

    namespace: DNSLabel
    attachment: DNSSubdomain
    vm: DNSSubdomain
    uid: str | None = Field(default=None, max_length=128,
                            description="the attachment's uid (a claim of an older attachment "
                            "of the same name is stale)")
    vmi_uid: str | None = Field(default=None, alias="vmiUID", max_length=128,
                                description="the VM instance to attach to; a new one (the VM "
                                "restarted) means: connect again")


IDENTITY_KEY_MAX_LENGTH = 4608
"""Fits the longest key: `serial+descriptors` with three 126-character descriptor strings (the
most a USB string descriptor holds), each character percent-encoded from up to 4 UTF-8 bytes."""


class DeviceIdentity(_Model):
    tier: IdentityTier
    key: str = Field(max_length=IDENTITY_KEY_MAX_LENGTH)


class DeviceClass(_Model):
    class_code: str = Field(alias="class", pattern=r"^[0-9a-f]{2}$")
    subclass: str = Field(pattern=r"^[0-9a-f]{2}$")
    protocol: str = Field(pattern=r"^[0-9a-f]{2}$")
    name: str | None = None


class DeviceInterface(_Model):
    number: int = Field(ge=0, le=255)
    class_code: str = Field(alias="class", pattern=r"^[0-9a-f]{2}$")
    subclass: str = Field(pattern=r"^[0-9a-f]{2}$")
    protocol: str = Field(pattern=r"^[0-9a-f]{2}$")
    driver: str | None = None


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = Field(default=None, alias="lastTransitionTime")
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


class USBDeviceSpec(_Model):
    claim_ref: ClaimRef | None = Field(default=None, alias="claimRef")


class USBDeviceStatus(_Model):
    node: DNSSubdomain
    identity: DeviceIdentity
    port_path: PortPath = Field(alias="portPath")
    bus_number: int | None = Field(default=None, alias="busNumber", ge=0)
    device_number: int | None = Field(default=None, alias="deviceNumber", ge=0)
    vendor_id: HexId = Field(alias="vendorId")
    product_id: HexId = Field(alias="productId")
    vendor_name: str | None = Field(default=None, alias="vendorName")
    product_name: str | None = Field(default=None, alias="productName")
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    speed: str | None = Field(default=None, description="Mbit/s as the kernel reports it")
    usb_version: str | None = Field(default=None, alias="usbVersion")
    bcd_device: str | None = Field(default=None, alias="bcdDevice")
    device_class: DeviceClass | None = Field(default=None, alias="deviceClass")
    interfaces: list[DeviceInterface] = Field(default_factory=list)
    drivers: list[str] = Field(default_factory=list)
    present: bool = True
    state: DeviceState = "Available"
    last_seen: str | None = Field(default=None, alias="lastSeen")
    absent_since: str | None = Field(default=None, alias="absentSince")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="written by the controller: Reachable (the node's agent heartbeats)")


class USBAttachmentSpec(_Model):
    vm: DNSSubdomain = Field(description="the VirtualMachine, in this attachment's namespace")
    device: DeviceSelector = Field(default_factory=DeviceSelector)


class USBAttachmentStatus(_Model):
    phase: AttachmentPhase = "Pending"
    message: str = ""
    device: str | None = Field(default=None, description="the bound USBDevice")
    node: str | None = None
    vmi_uid: str | None = Field(default=None, alias="vmiUID",
                                description="the VM instance the binding serves")
    slot: int | None = Field(default=None, ge=0, le=3)
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    bytes_to_vm: int = Field(default=0, alias="bytesToVM", ge=0)
    bytes_from_vm: int = Field(default=0, alias="bytesFromVM", ge=0)
    reconnects: int = Field(default=0, ge=0)
    last_error: str | None = Field(default=None, alias="lastError")
    attached_since: str | None = Field(default=None, alias="attachedSince")
    path: Literal["Local", "API"] | None = Field(
        default=None, description="the way the stream takes into the VM: Local (straight into "
        "the virt-launcher's usb-redir slot socket on this node) or API (the VMI's usbredir "
        "subresource through the API server)")
    path_reason: str | None = Field(default=None, alias="pathReason",
                                    description="why the stream takes that path (CamelCase)")
    path_message: str | None = Field(default=None, alias="pathMessage")
    slot_kind: Literal["Direct", "VirtHandler"] | None = Field(
        default=None, alias="slotKind", description="who handed out the slot: the agent itself "
        "(Direct, from slot 3 down) or virt-handler (from slot 0 up)")


class LabelSelectorRequirement(_Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(_Model):
    match_labels: dict[str, str] | None = Field(default=None, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, alias="matchExpressions")


class USBPolicySpec(_Model):
    namespaces: list[DNSLabel] = Field(default_factory=list)
    namespace_selector: LabelSelector | None = Field(default=None, alias="namespaceSelector")
    devices: DeviceSelector = Field(default_factory=DeviceSelector,
                                    description="empty: every device")
