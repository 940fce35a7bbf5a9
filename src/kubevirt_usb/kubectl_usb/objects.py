"""Reading the API's objects (plain dicts) without tripping over missing parts: an agent may have
created a USBDevice whose status is not written yet, a controller may not have seen an attachment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from kubevirt_usb.models import is_dns_label, is_dns_subdomain

Obj = Mapping[str, Any]

KIND_DEVICE = "usbdevice.usb.kubevirt-usb.io"
KIND_ATTACHMENT = "usbattachment.usb.kubevirt-usb.io"
KIND_POLICY = "usbpolicy.usb.kubevirt-usb.io"

_NOT_DNS = re.compile(r"[^a-z0-9]+")


def part(obj: Obj | None, key: str) -> dict[str, Any]:
    """`obj[key]` when it is a mapping, else an empty dict."""
    value = (obj or {}).get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def meta(obj: Obj | None) -> dict[str, Any]:
    return part(obj, "metadata")


def spec(obj: Obj | None) -> dict[str, Any]:
    return part(obj, "spec")


def status(obj: Obj | None) -> dict[str, Any]:
    return part(obj, "status")


def name(obj: Obj | None) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: Obj | None) -> str:
    return str(meta(obj).get("namespace") or "")


def text(value: Any) -> str:
    """A field value as table text: `-` for nothing."""
    if value is None or value == "":
        return "-"
    return str(value)


def dig(obj: Obj | None, *path: str) -> Any:
    """The value at `path` inside nested mappings, or None."""
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def name_problem(value: str, *, what: str = "name") -> str | None:
    """Why `value` cannot name a Kubernetes object (a namespace when `what` is "namespace"), or
    None. Checked before a request, so that a name never becomes another URL path (`vm1/status`
    would read the VM's status subresource)."""
    if what == "namespace":
        if is_dns_label(value):
            return None
        return (f"{value!r} is not a valid namespace: lowercase letters, digits and '-', at most "
                "63 characters")
    if is_dns_subdomain(value):
        return None
    return (f"{value!r} is not a valid {what}: lowercase letters, digits, '-' and '.', at most 253 "
            "characters")


def readable(*parts: str, limit: int = 63) -> str:
    """`parts` as a DNS-1123 name, possibly lossy: lower case, other characters as `-`, cut to
    `limit` characters."""
    raw = "-".join(p for p in parts if p)
    return (_NOT_DNS.sub("-", raw.lower()).strip("-") or "x")[:limit].rstrip("-")


def slug(*parts: str, limit: int = 63) -> str:
    """`parts` as a DNS-1123 name that tells different parts apart: `readable` when that loses
    nothing, else the readable prefix plus `-` and 8 hex digits of a hash of the parts."""
    raw = "-".join(p for p in parts if p)
    plain = readable(*parts, limit=limit)
    if plain == raw:
        return plain
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]
    return f"{readable(*parts, limit=limit - 9)}-{digest}"
