"""What the UI's forms ask for, turned into API objects without any I/O: attach (a device picked
from the list, or a typed selector), grant and revoke a namespace in a policy.

Input is checked against the same models the CRDs are generated from, so the user hears about a
mistyped selector before anything reaches the API.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from kubevirt_usb.models import API_VERSION, DeviceSelector, is_dns_label, is_dns_subdomain

MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 64
Obj = dict[str, Any]

_IDS = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")
_KEYS = {"name": "name", "serial": "serial", "vendor": "vendorId", "vendorid": "vendorId",
         "product": "productId", "productid": "productId", "productname": "product",
         "node": "node", "port": "port"}
SELECTOR_HELP = ("name=DEVICE, serial=S, vendor=VVVV, product=PPPP, productName=TEXT, node=N, "
                 "port=P, or VVVV:PPPP, separated by commas")


class FormError(ValueError):
    """The form asks for something that cannot be; the message tells the user what to fix."""


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the last value of each field wins)."""
    if len(body) > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:  # more fields than max_num_fields
        raise FormError(f"the form has more than {MAX_FORM_FIELDS} fields") from None


def _check_name(value: str, *, what: str,
                valid: Callable[[str], bool] = is_dns_subdomain) -> str:
    value = value.strip()
    if not value:
        raise FormError(f"say which {what}")
    if not valid(value):
        raise FormError(f"{what} {value!r} is not a valid name: lower-case letters, digits "
                        "and '-'")
    return value


def check_namespace(value: str) -> str:
    return _check_name(value, what="namespace", valid=is_dns_label)


def check_object_name(value: str, *, what: str) -> str:
    return _check_name(value, what=what)


def parse_selector(text: str) -> Obj:
    """A typed device selector (`serial=AAA1, node=node1` or `0781:5567`) as the API's
    `spec.device`; FormError naming what is wrong."""
    hidden = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if hidden is not None:
        raise FormError(f"the selector holds the control character {hidden!r}: type only "
                        "visible characters, or pick the device from the list")
    selector: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        ids = _IDS.match(part)
        if ids:
            selector["vendorId"], selector["productId"] = ids[1].lower(), ids[2].lower()
            continue
        key, sep, value = part.partition("=")
        field = _KEYS.get(key.strip().lower())
        if not sep or field is None:
            raise FormError(f"cannot read {part!r} in the selector: use {SELECTOR_HELP}")
        value = value.strip()
        if field in ("vendorId", "productId"):
            value = value.lower()
        selector[field] = value
    if not selector:
        raise FormError(f"the selector is empty: use {SELECTOR_HELP}")
    return checked_selector(selector)


def checked_selector(selector: Mapping[str, str]) -> Obj:
    try:
        model = DeviceSelector.model_validate(dict(selector))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise FormError(f"the selector is not valid: {problems}") from None
    dumped: Obj = model.model_dump(by_alias=True, exclude_none=True)
    return dumped


def attach_request(form: Mapping[str, str], *, namespace: str) -> Obj:
    """The USBAttachment that an attach form asks for: a device picked by name (`device`) or a
    typed selector (`selector`), for VM `vm`."""
    vm = check_object_name(form.get("vm", ""), what="VM")
    picked, typed = form.get("device", "").strip(), form.get("selector", "").strip()
    if picked and typed:
        raise FormError("pick a device or type a selector, not both")
    if picked:
        device = {"name": check_object_name(picked, what="device")}
    elif typed:
        device = parse_selector(typed)
    else:
        raise FormError("pick a device or type a selector")
    return {"apiVersion": API_VERSION, "kind": "USBAttachment",
            "metadata": {"generateName": f"{vm[:50]}-", "namespace": namespace,
                         "labels": {"kubevirt-usb.io/vm": vm[:63]}},
            "spec": {"vm": vm, "device": device}}


def new_policy(form: Mapping[str, str]) -> Obj:
    """A USBPolicy granting namespace `namespace` the devices the typed selector names (an empty
    selector: every device)."""
    namespace = check_namespace(form.get("namespace", ""))
    typed = form.get("selector", "").strip()
    devices = parse_selector(typed) if typed else {}
    name = form.get("name", "").strip()
    meta: Obj = {"name": check_object_name(name, what="policy")} if name else {
        "generateName": f"grant-{namespace[:40]}-"}
    return {"apiVersion": API_VERSION, "kind": "USBPolicy", "metadata": meta,
            "spec": {"namespaces": [namespace], "devices": devices}}


def granted_patch(policy: Mapping[str, Any], namespace: str) -> Obj | None:
    """The merge patch adding `namespace` to an existing policy (None: it is already there).
    It only applies to the version read, so a concurrent change is not lost."""
    current = list((policy.get("spec") or {}).get("namespaces") or [])
    if namespace in current:
        return None
    return _namespaces_patch(policy, [*current, namespace])


def revoked_patch(policy: Mapping[str, Any], namespace: str) -> Obj | None:
    """The merge patch removing `namespace` from a policy (None: it is not there)."""
    current = list((policy.get("spec") or {}).get("namespaces") or [])
    if namespace not in current:
        return None
    return _namespaces_patch(policy, [ns for ns in current if ns != namespace])


def _namespaces_patch(policy: Mapping[str, Any], namespaces: list[str]) -> Obj:
    version = (policy.get("metadata") or {}).get("resourceVersion")
    return {"metadata": {"resourceVersion": version},
            "spec": {"namespaces": sorted(set(namespaces))}}
