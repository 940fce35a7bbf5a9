"""The controller's picture of the cluster: every object it reads, parsed into views, with the
indexes the decisions need (claims per attachment, slot holders per VM, devices by serial, ids
and node), and which objects to reconcile after each change.

Work keys name what to reconcile: `("attachment", namespace, name)` or `("device", "", name)`.
A change enqueues only the keys it can affect: an attachment itself; for a device, the
attachments its claim names, the waiting attachments it could serve, and (when a claim ends) the
other attachments of that VM waiting for a slot; for a VM or VMI, its attachments; for a policy,
every attachment; for a namespace, its attachments; for a node whose agent stops or resumes
heartbeating, that node's devices and the attachments they concern.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from kubevirt_usb import models
from kubevirt_usb.controller.decide import Situation
from kubevirt_usb.controller.matching import matches, ranked
from kubevirt_usb.controller.model import (
    VM,
    VMI,
    Attachment,
    Device,
    Key,
    Obj,
    Policy,
    namespace_labels,
    object_key,
    parse_agent_lease,
    parse_attachment,
    parse_device,
    parse_policy,
    parse_vm,
    parse_vmi,
)
from kubevirt_usb.controller.reachability import Heartbeat, observe, unreachable_nodes

WorkKey = tuple[str, str, str]
Monotonic = Callable[[], float]


def attachment_key(namespace: str, name: str) -> WorkKey:
    return "attachment", namespace, name


def device_key(name: str) -> WorkKey:
    return "device", "", name


class ClusterView:
    """See the module docstring. Change handlers take the object before and after (None: it was
    added / deleted) and return the work keys to enqueue."""

    def __init__(self, *, lease_prefix: str, clock: Monotonic) -> None:
        self.lease_prefix = lease_prefix
        self.clock = clock
        self.attachments: dict[Key, Attachment] = {}
        self.devices: dict[str, Device] = {}
        self.policies: dict[str, Policy] = {}
        self.vms: dict[Key, VM] = {}
        self.vmis: dict[Key, VMI] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.heartbeats: dict[str, Heartbeat] = {}
        self.unreachable: frozenset[str] = frozenset()
        self._by_vm: dict[Key, set[str]] = defaultdict(set)
        self._claims: dict[Key, set[str]] = defaultdict(set)
        self._holders: dict[Key, Counter[str]] = defaultdict(Counter)
        self._by_field: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._by_node: dict[str, set[str]] = defaultdict(set)
        self._lease_nodes: dict[str, str] = {}
        self._order_version = 0
        self._ordered: dict[str | None, tuple[int, list[str]]] = {}

    # ---- queries ---------------------------------------------------------------------------

    def all_keys(self) -> list[WorkKey]:
        """Every attachment (oldest first), the attachments claims name that do not exist,
        then every device."""
        ordered = sorted(self.attachments.values(), key=lambda a: a.order)
        orphans = sorted(k for k in self._claims if k not in self.attachments)
        return ([attachment_key(*a.key) for a in ordered]
                + [attachment_key(*k) for k in orphans]
                + [device_key(name) for name in sorted(self.devices)])

    def claims_of(self, key: Key) -> tuple[Device, ...]:
        return tuple(self.devices[n] for n in sorted(self._claims.get(key, ()))
                     if n in self.devices)

    def slot_holders(self, namespace: str, vm: str) -> set[str]:
        return set(self._holders.get((namespace, vm), ()))

    def devices_for(self, selector: models.DeviceSelector, *,
                    preferred_node: str | None = None) -> list[Device]:
        """The devices the selector can match, best first (on `preferred_node`, then by name),
        narrowed by its most selective indexed field (the decision checks every field)."""
        if selector.name is not None:
            found = self.devices.get(selector.name)
            return [found] if found is not None else []
        keyed = [(f, v) for f, v in (("serial", selector.serial),
                                      ("vendor", selector.vendor_id),
                                      ("product", selector.product_id),
                                      ("node", selector.node)) if v is not None]
        narrow = min((self._by_field.get(k, set()) for k in keyed), key=len) if keyed else None
        if narrow is not None and len(narrow) <= 16:
            return ranked((self.devices[n] for n in narrow if n in self.devices),
                          preferred_node=preferred_node)
        names = self._ordered_names(preferred_node)
        if narrow is None:
            return [self.devices[n] for n in names]
        return [self.devices[n] for n in names if n in narrow]

    def _ordered_names(self, node: str | None) -> list[str]:
        """Every device name best first for a VM on `node` (kept until devices come, go or
        move)."""
        cached = self._ordered.get(node)
        if cached is not None and cached[0] == self._order_version:
            return cached[1]
        names = [d.name for d in ranked(self.devices.values(), preferred_node=node)]
        self._ordered[node] = (self._order_version, names)
        return names

    def situation(self, key: Key, *, reserved_devices: Mapping[str, Key],
                  reserved_slots: Mapping[Key, set[str]], now: str) -> Situation:
        """What the decision for attachment `key` needs (reservations: binds in flight)."""
        a = self.attachments.get(key)
        claims = self.claims_of(key)
        if a is None:
            return Situation(key=key, attachment=None, claims=claims, now=now)
        vm_key = (a.namespace, a.vm)
        holders = self.slot_holders(*vm_key) | set(reserved_slots.get(vm_key, ()))
        holders.discard(a.name)
        vmi = self.vmis.get(vm_key)
        devices = self.devices_for(a.selector, preferred_node=vmi.node if vmi else None)
        return Situation(
            key=key, attachment=a, claims=claims, devices=devices, preordered=True,
            policies=tuple(self.policies.values()),
            namespace_labels=self.namespaces.get(a.namespace, {}),
            vm=self.vms.get(vm_key), vmi=vmi,
            unreachable_nodes=self.unreachable, slot_holders=frozenset(holders),
            reserved=frozenset(d for d, k in reserved_devices.items() if k != key), now=now)

    def _usable(self, device: Device) -> bool:
        return device.present and device.node not in self.unreachable

    def _hungry(self, keys: Iterable[Key]) -> list[WorkKey]:
        """Of these attachments, those holding no usable device, oldest first."""
        out = []
        for key in keys:
            a = self.attachments.get(key)
            if a is not None and not any(self._usable(d) for d in self.claims_of(key)):
                out.append(a)
        return [attachment_key(*a.key) for a in sorted(out, key=lambda a: a.order)]

    def _could_use(self, device: Device) -> list[WorkKey]:
        keys = [k for k, a in self.attachments.items() if matches(a.selector, device)]
        return self._hungry(keys)

    def _of_vm(self, namespace: str, vm: str) -> list[Key]:
        return [(namespace, n) for n in sorted(self._by_vm.get((namespace, vm), ()))]

    # ---- changes ---------------------------------------------------------------------------

    def attachment_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        key = object_key(new or old or {})
        before = self.attachments.pop(key, None)
        if before is not None:
            self._by_vm[(before.namespace, before.vm)].discard(before.name)
        after = parse_attachment(new) if new is not None else None
        if after is not None:
            self.attachments[key] = after
            self._by_vm[(after.namespace, after.vm)].add(after.name)
        return [attachment_key(*key)]

    def _index_device(self, device: Device, *, add: bool) -> None:
        fields = (("serial", device.serial), ("vendor", device.vendor_id),
                  ("product", device.product_id), ("node", device.node))
        for field, value in fields:
            if value is not None:
                bucket = self._by_field[(field, value)]
                bucket.add(device.name) if add else bucket.discard(device.name)
        if device.node is not None:
            nodes = self._by_node[device.node]
            nodes.add(device.name) if add else nodes.discard(device.name)
        if device.claim is not None:
            claims = self._claims[device.claim.key]
            holders = self._holders[(device.claim.namespace, device.claim.vm)]
            if add:
                claims.add(device.name)
                holders[device.claim.attachment] += 1
            else:
                claims.discard(device.name)
                if not claims:
                    del self._claims[device.claim.key]
                holders[device.claim.attachment] -= 1
                if holders[device.claim.attachment] <= 0:
                    del holders[device.claim.attachment]

    def device_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        name = object_key(new or old or {})[1]
        before = self.devices.pop(name, None)
        if before is not None:
            self._index_device(before, add=False)
        after = parse_device(new) if new is not None else None
        if after is not None:
            self.devices[name] = after
            self._index_device(after, add=True)
        if before is None or after is None or before.node != after.node:
            self._order_version += 1
        keys = [device_key(name)]
        for device in (before, after):
            if device is not None and device.claim is not None:
                keys.append(attachment_key(*device.claim.key))
        if before is not None and before.claim is not None and (
                after is None or after.claim != before.claim):
            keys += self._hungry(self._of_vm(before.claim.namespace, before.claim.vm))
        if after is not None and self._available(after) and (
                before is None or not self._available(before) or _identity(before)
                != _identity(after)):
            keys += self._could_use(after)
        return keys

    def _available(self, device: Device) -> bool:
        return (device.published and device.claim is None and not device.deleting
                and self._usable(device))

    def policy_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        name = object_key(new or old or {})[1]
        self.policies.pop(name, None)
        parsed = parse_policy(new) if new is not None else None
        if parsed is not None:
            self.policies[name] = parsed
        return [k for k in self.all_keys() if k[0] == "attachment"]

    def namespace_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        name = object_key(new or old or {})[1]
        before = self.namespaces.pop(name, None)
        labels = namespace_labels(new) if new is not None else None
        if labels is not None:
            self.namespaces[name] = labels
        if labels == before:
            return []
        return [attachment_key(*k) for k in self.attachments if k[0] == name]

    def vm_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        key = object_key(new or old or {})
        self.vms.pop(key, None)
        parsed = parse_vm(new) if new is not None else None
        if parsed is not None:
            self.vms[key] = parsed
        return [attachment_key(*k) for k in self._of_vm(*key)]

    def vmi_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        key = object_key(new or old or {})
        self.vmis.pop(key, None)
        parsed = parse_vmi(new) if new is not None else None
        if parsed is not None:
            self.vmis[key] = parsed
        return [attachment_key(*k) for k in self._of_vm(*key)]

    def lease_changed(self, old: Obj | None, new: Obj | None) -> list[WorkKey]:
        name = object_key(new or old or {})[1]
        lease = parse_agent_lease(new, prefix=self.lease_prefix) if new is not None else None
        previous_node = self._lease_nodes.pop(name, None)
        if previous_node is not None and (lease is None or lease.node != previous_node):
            self.heartbeats.pop(previous_node, None)
        if lease is not None:
            self._lease_nodes[name] = lease.node
            self.heartbeats[lease.node] = observe(self.heartbeats.get(lease.node), lease,
                                                  now=self.clock())
        return self.refresh_reachability()

    def refresh_reachability(self) -> list[WorkKey]:
        """Recompute which nodes are unreachable now; the keys affected by any change."""
        now_unreachable = unreachable_nodes(self.heartbeats.values(), now=self.clock())
        changed = now_unreachable ^ self.unreachable
        self.unreachable = now_unreachable
        if not changed:
            return []
        keys: list[WorkKey] = []
        holders: list[Key] = []
        for node in sorted(changed):
            for name in sorted(self._by_node.get(node, ())):
                keys.append(device_key(name))
                claim = self.devices[name].claim
                if claim is not None:
                    holders.append(claim.key)
        keys += [attachment_key(*k) for k in holders]
        keys += self._hungry(self.attachments)
        return keys

    def next_expiry(self) -> float | None:
        """When (monotonic clock) the next live heartbeat runs out, if any."""
        now = self.clock()
        pending = [h.expires_at for h in self.heartbeats.values() if h.alive(now)]
        return min(pending) if pending else None


def _identity(device: Device) -> tuple[object, ...]:
    return (device.node, device.vendor_id, device.product_id, device.serial, device.product,
            device.product_name, device.port_path)


def unique(keys: Sequence[WorkKey]) -> list[WorkKey]:
    """Keys without repeats, in first-seen order."""
    return list(dict.fromkeys(keys))
