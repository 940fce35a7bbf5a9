"""USBPolicy: no policy granting a namespace a device, no claim.

A policy grants the namespaces it lists and those its `namespaceSelector` matches (either is
enough; a policy with neither grants none; an empty selector `{}` matches every namespace) the
devices its `devices` selector matches (empty: every device). When none grants it, the refusal
names the command a cluster admin runs to grant it: `kubectl usb allow --namespace NS <flags>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from kubevirt_usb import models
from kubevirt_usb.controller.matching import is_empty, matches
from kubevirt_usb.controller.model import Device, NamespaceSelector, Policy


def selector_matches(selector: NamespaceSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (all requirements must hold)."""
    if any(labels.get(key) != value for key, value in selector.match_labels):
        return False
    for req in selector.expressions:
        has = req.key in labels
        if req.operator == "In" and not (has and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and has and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not has:
            return False
        if req.operator == "DoesNotExist" and has:
            return False
    return True


def grants_namespace(policy: Policy, namespace: str, labels: Mapping[str, str]) -> bool:
    if namespace in policy.namespaces:
        return True
    return policy.namespace_selector is not None and selector_matches(
        policy.namespace_selector, labels)


def granting(policies: Iterable[Policy], device: Device, *, namespace: str,
             labels: Mapping[str, str]) -> list[str]:
    """Names of the policies that let `namespace` claim `device`, sorted."""
    return sorted(p.name for p in policies
                  if grants_namespace(p, namespace, labels) and matches(p.devices, device))


_PLAIN = re.compile(r"[\w.:/-]+")


def _quote(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else repr(value)


def selector_flags(selector: models.DeviceSelector) -> str:
    """The selector as `kubectl usb` flags: `--serial AAA1 --node node1` (a name is positional)."""
    pairs = [("", selector.name), ("--vendor", selector.vendor_id),
             ("--product", selector.product_id), ("--serial", selector.serial),
             ("--product-name", selector.product), ("--node", selector.node),
             ("--port", selector.port)]
    return " ".join(f"{flag} {_quote(value)}".strip() for flag, value in pairs
                    if value is not None)


def device_flags(device: Device) -> str:
    """Flags naming one device: its serial when it has one, else its name."""
    return f"--serial {_quote(device.serial)}" if device.serial else device.name


def grant_command(namespace: str, selector: models.DeviceSelector,
                  candidates: Iterable[Device]) -> str:
    """The admin command that would let `namespace` claim what `selector` names (for an empty
    selector: the first of `candidates`)."""
    flags = selector_flags(selector)
    if is_empty(selector):
        first = next(iter(candidates), None)
        flags = device_flags(first) if first is not None else ""
    return f"kubectl usb allow --namespace {namespace} {flags}".rstrip()
