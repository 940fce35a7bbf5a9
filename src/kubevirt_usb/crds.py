"""The CustomResourceDefinitions, generated from the models in `kubevirt_usb.models`.

`kubevirt-usb crds` prints them; deploy/base/crds.yaml is that output (a test keeps them equal).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from kubevirt_usb import models

_DROP = ("title", "default")


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema as a Kubernetes structural schema: refs inlined, nullables marked."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) != len(node["anyOf"])
        base = _structural(options[0], defs) if len(options) == 1 else {
            "x-kubernetes-preserve-unknown-fields": True}
        merged = dict(base)
        if "description" in node:
            merged["description"] = node["description"]
        if nullable:
            merged["nullable"] = True
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


_MAP_LISTS = {"conditions": "type", "interfaces": "number"}


def _mark_map_lists(node: dict[str, Any]) -> dict[str, Any]:
    """Lists keyed by a field (conditions by type) merge per item under server-side apply."""
    for name, sub in (node.get("properties") or {}).items():
        if sub.get("type") == "array" and name in _MAP_LISTS:
            sub["x-kubernetes-list-type"] = "map"
            sub["x-kubernetes-list-map-keys"] = [_MAP_LISTS[name]]
            item = sub.get("items") or {}
            item["required"] = sorted({*item.get("required", []), _MAP_LISTS[name]})
        _mark_map_lists(sub)
        if isinstance(sub.get("items"), dict):
            _mark_map_lists(sub["items"])
    return node


def _column(name: str, path: str, *, kind: str = "string", priority: int = 0,
            description: str = "") -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    if description:
        column["description"] = description
    return column


def _object_schema(spec: type[BaseModel], status: type[BaseModel] | None,
                   *, spec_required: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": structural_schema(spec),
    }
    if status is not None:
        properties["status"] = structural_schema(status)
        properties["status"].pop("required", None)  # status is written piecewise
    out: dict[str, Any] = _mark_map_lists({"type": "object", "properties": properties})
    if spec_required:
        out["required"] = ["spec"]
    return out


def _crd(*, plural: str, kind: str, scope: str, short: list[str], schema: dict[str, Any],
         columns: list[dict[str, Any]], status: bool) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": models.VERSION, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": columns,
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{models.GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "kubevirt-usb"}},
        "spec": {
            "group": models.GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List", "shortNames": short,
                      "categories": ["kubevirt-usb"]},
            "versions": [version],
        },
    }


def usb_device_crd() -> dict[str, Any]:
    return _crd(plural="usbdevices", kind="USBDevice", scope="Cluster", short=["usbdev"],
                schema=_object_schema(models.USBDeviceSpec, models.USBDeviceStatus,
                                      spec_required=False),
                columns=[
                    _column("Node", ".status.node"),
                    _column("Vendor", ".status.vendorId"),
                    _column("Product", ".status.productId"),
                    _column("Name", ".status.productName"),
                    _column("Serial", ".status.serial"),
                    _column("Port", ".status.portPath"),
                    _column("State", ".status.state"),
                    _column("Used-By", ".spec.claimRef.vm",
                            description="the VM the device is bound to"),
                    _column("Namespace", ".spec.claimRef.namespace", priority=1),
                    _column("Identity", ".status.identity.tier", priority=1),
                    _column("Age", ".metadata.creationTimestamp", kind="date"),
                ], status=True)


def usb_attachment_crd() -> dict[str, Any]:
    schema = _object_schema(models.USBAttachmentSpec, models.USBAttachmentStatus,
                            spec_required=True)
    return _crd(plural="usbattachments", kind="USBAttachment", scope="Namespaced",
                short=["usba"], schema=schema,
                columns=[
                    _column("VM", ".spec.vm"),
                    _column("Phase", ".status.phase"),
                    _column("Device", ".status.device"),
                    _column("Node", ".status.node"),
                    _column("Message", ".status.message", priority=1),
                    _column("Age", ".metadata.creationTimestamp", kind="date"),
                ], status=True)


def usb_policy_crd() -> dict[str, Any]:
    return _crd(plural="usbpolicies", kind="USBPolicy", scope="Cluster", short=["usbpol"],
                schema=_object_schema(models.USBPolicySpec, None, spec_required=True),
                columns=[
                    _column("Namespaces", ".spec.namespaces"),
                    _column("Vendor", ".spec.devices.vendorId"),
                    _column("Product", ".spec.devices.productId"),
                    _column("Serial", ".spec.devices.serial"),
                    _column("Age", ".metadata.creationTimestamp", kind="date"),
                ], status=False)


def all_crds() -> list[dict[str, Any]]:
    return [usb_device_crd(), usb_attachment_crd(), usb_policy_crd()]


def render_yaml() -> str:
    header = "# Generated by `kubevirt-usb crds` from kubevirt_usb/models.py: do not edit.\n"
    return header + yaml.safe_dump_all(all_crds(), sort_keys=False, width=100)
