"""Stable device identities and USBDevice object names, decided across the whole cluster.

Bus and device numbers change on every replug, so a device is known by the first of these tiers
that tells it apart from every other device of every node:

1. `serial`: vendor:product plus the serial number. A serial only has to be unique among devices
   with the same vendor:product (that is what USB asks of vendors), so that is the uniqueness
   domain: no other device in the cluster with this vendor:product has this serial. Such a device
   keeps its identity when it moves to another port or node.
2. `serial+descriptors`: vendor:product, manufacturer, product and serial strings, when the serial
   is shared but this combination is not (clones with a fixed serial but different strings).
3. `port`: node plus physical port path plus vendor:product, when nothing the device says about
   itself is unique (no serial, or identical twins). The same device replugged into the same
   port, or found there after a reboot, has the same identity; the vendor:product part keeps a
   different product plugged into that port from taking over the first one's claims.

Keys are `<tier>:<fields>` with the fields percent-encoded (so `:` only separates them; a missing
string is an empty field):
`serial:46f4:0001:AAA1`, `serial+descriptors:46f4:0001:QEMU:QEMU%20USB%20HARDDRIVE:AAA1`,
`port:node1:3-1.4:067b:2303`.

Stickiness (the rule least likely to surprise users): identities are computed from what is
plugged in now AND from the identities already published (`EstablishedIdentity`: the USBDevice
objects that exist, with where each device was last seen), in three steps:

1. in place: a device at the location where a published identity was last seen, and which still
   fits it, keeps it, so nothing that stays plugged in ever changes identity or name;
2. moved: a published `serial+descriptors` or `serial` identity that no device claimed in place
   goes to the device that fits it (the more specific tier first; among several, one on the
   identity's last node, then the first port), so a device that moved keeps its name;
3. new: every other device gets the best tier whose key no other device in the cluster shares
   and no published identity holds, else its port identity.

So when an identical twin appears somewhere, the device that was there first keeps its serial
identity and name, and the newcomer is identified by its descriptors or its port; nothing is
renamed. With no published identities the result depends only on what is plugged in. Identities
are always unique across the cluster. Two agents racing to publish twins both compute the same
serial name: the API server's name uniqueness lets one create win; the other re-runs with the
winner established.

Object names (`device_object_name`) are DNS-1123 subdomains of at most 63 characters (so they fit
in a label value too), derived from the identity alone:

- `serial` whose serial is only digits and capital letters: `46f4-0001-aaa1`;
- `port` on a well-formed node name and port path: `node1-067b-2303-3-1.4`;
- anything else (`serial+descriptors`, other serials, odd node names, over-long names) is
  sanitized (lowercase, runs of other characters become `-`, shortened) and gets `-` plus 8 hex
  digits of the SHA-256 of the identity: serial "aaa1" -> `46f4-0001-aaa1-46783596`.

Hashed names have at least three dashes and end in `-` plus 8 hex digits; readable serial names
have exactly two dashes, readable port names end in a port number of at most 3 digits or a dotted
chain, and a readable name parses back to its identity. So distinct identities get distinct names
(short of a 32-bit hash collision between two hashed names with the same prefix). The scheme is
pinned by tests: names outlive agent versions.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote

from kubevirt_usb.usb.model import (
    DeviceIdentity,
    EstablishedIdentity,
    IdentityTier,
    NodeDevice,
    PublishedDevice,
    port_sort_key,
)

Location = tuple[str, str]

MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_TIER_RANK: dict[IdentityTier, int] = {"serial": 0, "serial+descriptors": 1, "port": 2}
_FIELD_COUNT: dict[IdentityTier, int] = {"serial": 3, "serial+descriptors": 5, "port": 4}
_USB_ID = re.compile(r"[0-9a-f]{4}")
_PLAIN_SERIAL = re.compile(r"[A-Z0-9]+")
_PLAIN_PORT = re.compile(r"[0-9]{1,3}-[0-9]{1,3}(?:\.[0-9]{1,3})*")
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")


def _key(tier: IdentityTier, *fields: str | None) -> DeviceIdentity:
    return DeviceIdentity(tier, ":".join([tier, *(quote(f or "", safe="") for f in fields)]))


def serial_identity(vendor_id: str, product_id: str, serial: str) -> DeviceIdentity:
    """Tier 1: the device with this serial among devices of this vendor:product."""
    return _key("serial", vendor_id, product_id, serial)


def descriptor_identity(
    vendor_id: str, product_id: str, *, manufacturer: str | None, product: str | None, serial: str
) -> DeviceIdentity:
    """Tier 2: the device with this serial and these manufacturer/product strings."""
    return _key("serial+descriptors", vendor_id, product_id, manufacturer, product, serial)


def port_identity(node: str, port_path: str, vendor_id: str, product_id: str) -> DeviceIdentity:
    """Tier 3: the device of this vendor:product in this physical port of this node."""
    return _key("port", node, port_path, vendor_id, product_id)


def candidate_identities(device: NodeDevice) -> dict[IdentityTier, DeviceIdentity]:
    """Every identity the device could have, by tier (no serial: only the port tier)."""
    d = device.device
    found: dict[IdentityTier, DeviceIdentity] = {
        "port": port_identity(device.node, d.port_path, d.vendor_id, d.product_id)
    }
    if d.serial:
        found["serial"] = serial_identity(d.vendor_id, d.product_id, d.serial)
        found["serial+descriptors"] = descriptor_identity(
            d.vendor_id,
            d.product_id,
            manufacturer=d.manufacturer,
            product=d.product,
            serial=d.serial,
        )
    return found


def _location_order(location: Location) -> tuple[str, tuple[tuple[int, int | str], ...], str]:
    return (location[0], port_sort_key(location[1]), location[1])


def _by_location(devices: Iterable[NodeDevice]) -> dict[Location, NodeDevice]:
    located: dict[Location, NodeDevice] = {}
    for device in devices:
        if device.location in located:
            msg = f"two devices at node {device.node!r} port {device.device.port_path!r}"
            raise ValueError(msg)
        located[device.location] = device
    return located


def _by_key(established: Iterable[EstablishedIdentity]) -> dict[str, EstablishedIdentity]:
    """One entry per key; if a key is listed twice, the first location in port order wins."""
    known: dict[str, EstablishedIdentity] = {}
    order = sorted(
        established,
        key=lambda e: (_location_order((e.node, e.port_path)), e.identity.tier, e.identity.key),
    )
    for entry in order:
        known.setdefault(entry.identity.key, entry)
    return known


class _Assignment:
    """The identities handed out so far and the keys nobody new may take."""

    def __init__(self, devices: Sequence[NodeDevice], established: Sequence[EstablishedIdentity]):
        self.located = _by_location(devices)
        self.candidates = {loc: candidate_identities(d) for loc, d in self.located.items()}
        self.known = _by_key(established)
        self.assigned: dict[Location, DeviceIdentity] = {}

    def give(self, location: Location, identity: DeviceIdentity) -> None:
        self.assigned[location] = identity

    def unassigned(self) -> list[Location]:
        return sorted(
            (loc for loc in self.located if loc not in self.assigned), key=_location_order
        )

    def keep_in_place(self) -> None:
        last_seen: dict[Location, list[DeviceIdentity]] = {}
        for entry in self.known.values():
            last_seen.setdefault((entry.node, entry.port_path), []).append(entry.identity)
        for location, candidates in self.candidates.items():
            fits = [i for i in last_seen.get(location, []) if candidates.get(i.tier) == i]
            if fits:
                self.give(location, min(fits, key=lambda i: _TIER_RANK[i.tier]))

    def follow_moved(self) -> None:
        for tier in ("serial+descriptors", "serial"):
            wanting: dict[str, list[Location]] = {}
            for location in self.unassigned():
                if candidate := self.candidates[location].get(tier):
                    wanting.setdefault(candidate.key, []).append(location)
            claimed = {i.key for i in self.assigned.values()}
            for key, entry in sorted(self.known.items()):
                if entry.identity.tier == tier and key not in claimed and key in wanting:
                    location = min(
                        wanting[key], key=lambda loc: (loc[0] != entry.node, _location_order(loc))
                    )
                    self.give(location, entry.identity)

    def assign_new(self) -> None:
        shared = Counter(
            identity.key
            for candidates in self.candidates.values()
            for tier, identity in candidates.items()
            if tier != "port"
        )
        taken = set(self.known) | {i.key for i in self.assigned.values()}
        for location in self.unassigned():
            candidates = self.candidates[location]
            best = next(
                (
                    candidates[tier]
                    for tier in ("serial", "serial+descriptors")
                    if tier in candidates
                    and shared[candidates[tier].key] == 1
                    and candidates[tier].key not in taken
                ),
                candidates["port"],
            )
            self.give(location, best)


def assign_identities(
    devices: Sequence[NodeDevice], *, established: Sequence[EstablishedIdentity] = ()
) -> dict[Location, DeviceIdentity]:
    """The identity of every device in the cluster, keyed by (node, port path).

    `devices` are all devices plugged in now, on every node; `established` the identities
    already published. Raises ValueError if two devices claim the same node and port.
    """
    assignment = _Assignment(devices, established)
    assignment.keep_in_place()
    assignment.follow_moved()
    assignment.assign_new()
    return dict(sorted(assignment.assigned.items(), key=lambda item: _location_order(item[0])))


def _fields(identity: DeviceIdentity) -> list[str] | None:
    tier, _, rest = identity.key.partition(":")
    fields = [unquote(f) for f in rest.split(":")]
    if tier != identity.tier or len(fields) != _FIELD_COUNT[identity.tier]:
        return None
    return fields


def _readable_name(tier: IdentityTier, fields: list[str]) -> str | None:
    if tier == "serial":
        vid, pid, serial = fields
        if _USB_ID.fullmatch(vid) and _USB_ID.fullmatch(pid) and _PLAIN_SERIAL.fullmatch(serial):
            return f"{vid}-{pid}-{serial.lower()}"
    if tier == "port":
        node, port, vid, pid = fields
        if (
            _SUBDOMAIN.fullmatch(node)
            and _PLAIN_PORT.fullmatch(port)
            and _USB_ID.fullmatch(vid)
            and _USB_ID.fullmatch(pid)
        ):
            return f"{node}-{vid}-{pid}-{port}"
    return None


def _sanitize(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _fit(parts: list[str], budget: int) -> list[str]:
    """Shorten the longest part, one character at a time, until the joined parts fit."""
    while len("-".join(parts)) > budget:
        longest = max(range(len(parts)), key=lambda i: (len(parts[i]), -i))
        parts[longest] = parts[longest][:-1].rstrip("-") or "x"
    return parts


def _hashed_name(identity: DeviceIdentity, fields: list[str] | None) -> str:
    if fields is None:
        parts = ["usb", identity.key]
    elif identity.tier == "port":
        parts = [fields[0], fields[2], fields[3], fields[1]]
    else:
        parts = [fields[0], fields[1], fields[-1]]
    digest = hashlib.sha256(f"{identity.tier}\0{identity.key}".encode("utf-8", "surrogatepass"))
    budget = MAX_NAME_LENGTH - _HASH_LENGTH - 1
    prefix = "-".join(_fit([_sanitize(p) for p in parts], budget))
    return f"{prefix}-{digest.hexdigest()[:_HASH_LENGTH]}"


def device_object_name(identity: DeviceIdentity) -> str:
    """The USBDevice object name for an identity: readable, stable, DNS-1123, <= 63 chars."""
    fields = _fields(identity)
    readable = _readable_name(identity.tier, fields) if fields is not None else None
    if readable is not None and len(readable) <= MAX_NAME_LENGTH:
        return readable
    return _hashed_name(identity, fields)


def published_records(
    devices: Sequence[NodeDevice], *, established: Sequence[EstablishedIdentity] = ()
) -> tuple[PublishedDevice, ...]:
    """Identity and object name for every device (see `assign_identities`), sorted by name."""
    identities = assign_identities(devices, established=established)
    records = (
        PublishedDevice(
            name=device_object_name(identities[d.location]),
            node=d.node,
            identity=identities[d.location],
            device=d.device,
        )
        for d in devices
    )
    return tuple(sorted(records, key=lambda r: r.name))
