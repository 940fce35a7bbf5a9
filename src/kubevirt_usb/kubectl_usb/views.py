"""What `list`, `status` and `watch` print: table rows for devices and attachments, and the
`-o json|yaml|name` forms scripts read (the objects as the API returns them, like kubectl)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from kubevirt_usb import models
from kubevirt_usb.kubectl_usb.objects import (
    KIND_ATTACHMENT,
    KIND_DEVICE,
    Obj,
    dig,
    name,
    namespace,
    spec,
    status,
    text,
)
from kubevirt_usb.kubectl_usb.selection import Selector, claim_of
from kubevirt_usb.kubectl_usb.tables import Table, human_age, human_bytes, parse_time

OUTPUTS = ("table", "wide", "json", "yaml", "name")
Row = list[str]

DEVICE_HEADERS = ["NAME", "NODE", "ID", "PRODUCT", "SERIAL", "PORT", "IDENTITY", "STATE",
                  "USED-BY"]
DEVICE_WIDE = ["VENDOR", "MANUFACTURER", "BUS-DEV", "SPEED", "ATTACHMENT", "LAST-SEEN"]
ATTACHMENT_HEADERS = ["NAME", "VM", "PHASE", "DEVICE", "NODE", "PATH", "TO-VM", "FROM-VM",
                      "SINCE", "MESSAGE"]
ATTACHMENT_WIDE = ["RECONNECTS", "LAST-ERROR", "SELECTOR", "PATH-REASON", "SLOT"]
DEVICE_MIN_WIDTHS = [24, 8, 9, 24, 10, 7, 8, 9, 16]
ATTACHMENT_MIN_WIDTHS = [28, 10, 16, 24, 8, 5, 8, 8, 6]
"""Room for typical values, so `watch` lines printed later line up with the first table."""
_MESSAGE_WIDTH = 60


def device_state(device: Obj) -> str:
    """Available, InUse (attached to a VM), Absent (unplugged), or Unknown (no status yet)."""
    st = status(device)
    if not st:
        return "Unknown"
    if st.get("state") == "Absent" or st.get("present") is False:
        return "Absent"
    if claim_of(device) is not None:
        return "InUse"
    return str(st.get("state") or "Available")


def device_row(device: Obj, *, now: dt.datetime, wide: bool = False) -> Row:
    st = status(device)
    claim = claim_of(device)
    row = [name(device), text(st.get("node")),
           f"{st.get('vendorId') or '?'}:{st.get('productId') or '?'}",
           text(st.get("productName") or st.get("product")), text(st.get("serial")),
           text(st.get("portPath")), text(dig(st, "identity", "tier")), device_state(device),
           f"{claim.namespace}/{claim.vm}" if claim else "-"]
    if wide:
        bus, dev = st.get("busNumber"), st.get("deviceNumber")
        row += [text(st.get("vendorName")), text(st.get("manufacturer")),
                f"{bus}/{dev}" if bus is not None and dev is not None else "-",
                f"{st['speed']}M" if st.get("speed") else "-",
                f"{claim.namespace}/{claim.attachment}" if claim else "-",
                human_age(parse_time(st.get("lastSeen")), now=now)]
    return row


def device_table(devices: Sequence[Obj], *, now: dt.datetime, wide: bool = False) -> Table:
    headers = DEVICE_HEADERS + (DEVICE_WIDE if wide else [])
    return Table(headers, [device_row(d, now=now, wide=wide) for d in devices])


def attachment_message(attachment: Obj) -> str:
    """Why the attachment is not attached (its message), or, while it streams, its last error."""
    st = status(attachment)
    if models.is_streaming(st.get("phase")) and st.get("lastError"):
        return f"last error: {st['lastError']}"
    return str(st.get("message") or "")


def slot_text(st: Obj) -> str:
    """The slot a stream holds and who handed it out: `3 (Direct)`, `VirtHandler`, `-` (also
    when no stream runs: a slot left in status is not held)."""
    if not models.is_streaming(st.get("phase")):
        return "-"
    slot, kind = st.get("slot"), st.get("slotKind")
    if isinstance(slot, int) and kind:
        return f"{slot} ({kind})"
    return text(kind)


def _short(message: str, *, wide: bool) -> str:
    if wide or len(message) <= _MESSAGE_WIDTH:
        return text(message)
    return message[:_MESSAGE_WIDTH - 3] + "..."


def attachment_row(attachment: Obj, *, now: dt.datetime, wide: bool = False,
                   with_namespace: bool = False) -> Row:
    st = status(attachment)
    phase = str(st.get("phase") or "Pending")
    since = parse_time(st.get("attachedSince")) if models.is_streaming(phase) else None
    row = [name(attachment), text(spec(attachment).get("vm")), phase,
           text(st.get("device") or dig(attachment, "spec", "device", "name")),
           text(st.get("node")), text(st.get("path")), human_bytes(st.get("bytesToVM")),
           human_bytes(st.get("bytesFromVM")), human_age(since, now=now) if since else "-",
           _short(attachment_message(attachment), wide=wide)]
    if wide:
        row += [str(st.get("reconnects") or 0), text(st.get("lastError")),
                Selector.from_spec(spec(attachment).get("device")).flags(),
                text(st.get("pathReason")), slot_text(st)]
    return [namespace(attachment), *row] if with_namespace else row


def attachment_table(attachments: Sequence[Obj], *, now: dt.datetime, wide: bool = False,
                     with_namespace: bool = False) -> Table:
    headers = ATTACHMENT_HEADERS + (ATTACHMENT_WIDE if wide else [])
    if with_namespace:
        headers = ["NAMESPACE", *headers]
    return Table(headers, [attachment_row(a, now=now, wide=wide, with_namespace=with_namespace)
                           for a in attachments])


# ---- scripts' forms ---------------------------------------------------------------------------


def as_list(objects: Sequence[Obj]) -> dict[str, Any]:
    """Objects as the `List` kubectl prints for `-o json|yaml`."""
    return {"apiVersion": "v1", "kind": "List", "items": [dict(o) for o in objects],
            "metadata": {"resourceVersion": ""}}


def dump(document: Any, *, output: str) -> str:
    if output == "json":
        return json.dumps(document, indent=4, sort_keys=False) + "\n"
    return str(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


def qualified_name(kind: str, obj: Obj) -> str:
    """`usbdevice.usb.kubevirt-usb.io/46f4-0001-aaa1`, as `kubectl get -o name` prints it."""
    return f"{kind}/{name(obj)}"


def render(objects: Sequence[Obj], *, output: str, kind: str,
           table: Callable[[bool], Table], headers: bool = True) -> str:
    """`objects` in the chosen output form; `table(wide)` builds the table forms."""
    if output in ("json", "yaml"):
        return dump(as_list(objects), output=output)
    if output == "name":
        return "".join(qualified_name(kind, o) + "\n" for o in objects)
    return table(output == "wide").render(headers=headers)


def render_devices(devices: Sequence[Obj], *, output: str, now: dt.datetime,
                   headers: bool = True) -> str:
    return render(devices, output=output, kind=KIND_DEVICE, headers=headers,
                  table=lambda wide: device_table(devices, now=now, wide=wide))


def render_attachments(attachments: Sequence[Obj], *, output: str, now: dt.datetime,
                       with_namespace: bool = False, headers: bool = True) -> str:
    return render(attachments, output=output, kind=KIND_ATTACHMENT, headers=headers,
                  table=lambda wide: attachment_table(attachments, now=now, wide=wide,
                                                      with_namespace=with_namespace))


def render_object(obj: Obj, *, output: str, kind: str) -> str:
    """One object for `-o json|yaml|name`."""
    if output == "name":
        return qualified_name(kind, obj) + "\n"
    return dump(dict(obj), output=output)
