"""Which device the user means: the selector flags (`--serial`, `--vendor`, `--product`, `--id`,
`--product-name`, `--node`, `--port`, or a USBDevice name), matching them against USBDevice
objects, and the words for "none", "several" and "held by someone else".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, dig, name, slug, spec, status
from kubevirt_usb.models import selector_words
from kubevirt_usb.usb.model import port_sort_key

_HEX_ID = re.compile(r"^(?:0x)?([0-9a-fA-F]{4})$")
_PORT = re.compile(r"^[0-9]+-[0-9]+(\.[0-9]+)*$")
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class SelectorError(ValueError):
    """A selector flag with a value that cannot name a device; the message says which."""


@dataclass(frozen=True, kw_only=True)
class Selector:
    """What the user said about the device; every given field must match."""

    name: str | None = None
    vendor_id: str | None = None
    product_id: str | None = None
    serial: str | None = None
    product: str | None = None
    node: str | None = None
    port: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def to_spec(self) -> dict[str, str]:
        """The selector as a USBAttachment's or USBPolicy's `device` field."""
        wire = {"name": self.name, "vendorId": self.vendor_id, "productId": self.product_id,
                "serial": self.serial, "product": self.product, "node": self.node,
                "port": self.port}
        return {key: value for key, value in wire.items() if value is not None}

    @classmethod
    def from_spec(cls, device: Any) -> Selector:
        """The selector a USBAttachment's or USBPolicy's `device` field holds."""
        d = device if isinstance(device, dict) else {}

        def get(key: str) -> str | None:
            value = d.get(key)
            return None if value is None else str(value)

        return cls(name=get("name"), vendor_id=get("vendorId"), product_id=get("productId"),
                   serial=get("serial"), product=get("product"), node=get("node"),
                   port=get("port"))

    def flags(self) -> str:
        """The selector in the words of the command line, e.g. `--serial AAA1 --node node1`."""
        pairs = [("", self.name), ("--vendor", self.vendor_id), ("--product", self.product_id),
                 ("--serial", self.serial), ("--product-name", self.product),
                 ("--node", self.node), ("--port", self.port)]
        return " ".join(f"{flag} {_quote(value)}".strip() for flag, value in pairs
                        if value is not None) or "(any device)"

    def words(self) -> str:
        """The selector in prose, e.g. `serial AAA1 on node1`."""
        return selector_words(name=self.name, vendor_id=self.vendor_id,
                              product_id=self.product_id, product=self.product,
                              serial=self.serial, node=self.node, port=self.port)


def _quote(value: str) -> str:
    return value if value and re.fullmatch(r"[\w.:/-]+", value) else repr(value)


def _hex_id(flag: str, value: str | None) -> str | None:
    if value is None:
        return None
    match = _HEX_ID.match(value.strip())
    if match is None:
        raise SelectorError(f"{flag} {value!r}: expected 4 hex digits, e.g. 046d")
    return match.group(1).lower()


def selector_from_flags(*, device: str | None = None, vendor: str | None = None,
                        product: str | None = None, usb_id: str | None = None,
                        serial: str | None = None, product_name: str | None = None,
                        node: str | None = None, port: str | None = None) -> Selector:
    """The selector for the given flags, checked and normalized (ids in lower-case hex)."""
    if usb_id is not None:
        vid, sep, pid = usb_id.partition(":")
        if not sep or not _HEX_ID.match(vid.strip()) or not _HEX_ID.match(pid.strip()):
            raise SelectorError(f"--id {usb_id!r}: expected VENDOR:PRODUCT, 4 hex digits each, "
                                "e.g. 067b:2303")
        if vendor is not None or product is not None:
            raise SelectorError("--id already names vendor and product: drop --vendor/--product")
        vendor, product = vid, pid
    if port is not None and not _PORT.match(port):
        raise SelectorError(f"--port {port!r}: expected a port path such as 3-1.4")
    if device is not None and not _DNS.match(device):
        raise SelectorError(f"{device!r} is not a USBDevice name: give a NAME from "
                            "`kubectl usb list`")
    if serial == "" or product_name == "" or node == "":
        raise SelectorError("an empty selector value matches nothing")
    return Selector(name=device, vendor_id=_hex_id("--vendor", vendor),
                    product_id=_hex_id("--product", product), serial=serial,
                    product=product_name, node=node, port=port)


def matches(device: Obj, selector: Selector) -> bool:
    """Whether the USBDevice object fits every field of the selector."""
    st = status(device)
    checks: list[tuple[str | None, Iterable[Any]]] = [
        (selector.name, [name(device)]),
        (selector.vendor_id, [st.get("vendorId")]),
        (selector.product_id, [st.get("productId")]),
        (selector.serial, [st.get("serial")]),
        (selector.product, [st.get("product"), st.get("productName")]),
        (selector.node, [st.get("node")]),
        (selector.port, [st.get("portPath")]),
    ]
    return all(wanted is None or wanted in list(have) for wanted, have in checks)


def sort_devices(devices: Iterable[Obj]) -> list[Obj]:
    """Devices in the order people look for them: by node, then by port."""
    return sorted(devices, key=lambda d: (str(status(d).get("node") or ""),
                                          port_sort_key(str(status(d).get("portPath") or "")),
                                          name(d)))


def select(devices: Iterable[Obj], selector: Selector) -> list[Obj]:
    return sort_devices(d for d in devices if matches(d, selector))


# ---- one device, or why not --------------------------------------------------------------------


def describe_device(device: Obj) -> str:
    """`46f4-0001-aaa1 (QEMU USB HARDDRIVE, serial AAA1, node1 port 2-1)`."""
    st = status(device)
    details = [str(st.get("productName") or st.get("product") or
                   f"{st.get('vendorId', '?')}:{st.get('productId', '?')}")]
    if st.get("serial"):
        details.append(f"serial {st['serial']}")
    if st.get("node"):
        details.append(f"{st['node']} port {st.get('portPath') or '?'}")
    return f"{name(device)} ({', '.join(details)})"


def resolve(devices: Sequence[Obj], selector: Selector) -> Obj:
    """The one device the selector names; CLIError NOT_FOUND or AMBIGUOUS otherwise."""
    found = select(devices, selector)
    if len(found) == 1:
        return found[0]
    if not found:
        raise no_match(selector)
    listed = "; ".join(describe_device(d) for d in found)
    raise CLIError(f"{len(found)} devices match {selector.flags()}: {listed}; name one of them, "
                   "or add --serial, --node or --port", code=ExitCode.AMBIGUOUS)


def no_match(selector: Selector) -> CLIError:
    if selector.name is not None and selector.flags() == selector.name:
        return CLIError(f"no USB device named {selector.name!r}: see `kubectl usb list`",
                        code=ExitCode.NOT_FOUND)
    return CLIError(f"no USB device matches {selector.flags()}: see `kubectl usb list`",
                    code=ExitCode.NOT_FOUND)


@dataclass(frozen=True)
class Claim:
    """Who holds a device: the attachment and VM named by its `spec.claimRef`."""

    namespace: str
    attachment: str
    vm: str

    def holder(self) -> str:
        return (f"VM {self.namespace}/{self.vm} "
                f"(attachment {self.namespace}/{self.attachment})")


def claim_of(device: Obj) -> Claim | None:
    ref = spec(device).get("claimRef")
    if not isinstance(ref, dict) or not ref.get("attachment"):
        return None
    return Claim(namespace=str(ref.get("namespace") or ""),
                 attachment=str(ref.get("attachment") or ""), vm=str(ref.get("vm") or ""))


def held_elsewhere(device: Obj, claim: Claim) -> CLIError:
    """The refusal for a device that `claim` holds for another VM."""
    return CLIError(
        f"{describe_device(device)} is in use by {claim.holder()}; detach it there first: "
        f"kubectl usb detach -n {claim.namespace} {claim.attachment}", code=ExitCode.REFUSED)


def attachment_name(vm: str, *, device: str | None = None,
                    selector: Selector | None = None) -> str:
    """The name `attach` gives a USBAttachment: the VM's and the device's names joined, or the
    VM's name and the selector's values when no device is known yet."""
    if device is not None:
        return slug(vm, device, limit=253)
    values = [] if selector is None else [v for v in selector.to_spec().values()]
    return slug(vm, *values, limit=253)


def selected_device_name(attachment: Obj) -> str | None:
    """The device an attachment is bound to, or else the device it names."""
    bound = status(attachment).get("device")
    return str(bound) if bound else (dig(attachment, "spec", "device", "name") or None)
