"""Which JSON value a Go API type cannot decode, in encoding/json's words.

A real server answers a body whose field has the wrong JSON type (`"spec": "x"`) with 400
`<Kind> in version "<v>" cannot be handled as a <Kind>: json: cannot unmarshal string into Go
struct field <Struct>.<path> of type <type>`. `type_error` finds the first such field for a shape
that describes only the fields the emulator reads; null is every field's zero value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Struct:
    """A Go struct: its name (e.g. `v1.ResourceAttributes`) and the fields that matter."""

    go_type: str
    fields: dict[str, Shape] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOf:
    item: Shape

    @property
    def go_type(self) -> str:
        return f"[]{go_type(self.item)}"


@dataclass(frozen=True)
class MapOf:
    value: Shape

    @property
    def go_type(self) -> str:
        return f"map[string]{go_type(self.value)}"


Shape = Struct | ListOf | MapOf | str
"""A struct, a slice, a map, or a scalar: "string", "int64", "int32", "bool"."""


def go_type(shape: Shape) -> str:
    return shape if isinstance(shape, str) else shape.go_type


def json_type(value: Any) -> str:
    """The JSON type of a decoded value as encoding/json names it in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def unmarshal_error(value: Any, *, field: str, of_type: str) -> str:
    """encoding/json's error for `value` in the Go struct field `field` of type `of_type`."""
    return (f"json: cannot unmarshal {json_type(value)} into Go struct field {field} "
            f"of type {of_type}")


def _fits(value: Any, shape: Shape) -> bool:
    if isinstance(shape, (Struct, MapOf)):
        return isinstance(value, dict)
    if isinstance(shape, ListOf):
        return isinstance(value, list)
    if shape == "string":
        return isinstance(value, str)
    if shape == "bool":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool)


def type_error(value: Any, root: Struct) -> str | None:
    """The encoding/json error decoding `value` (a JSON object) into `root`, or None."""
    return _struct_error(value, root, "")


def _struct_error(value: dict[str, Any], struct: Struct, path: str) -> str | None:
    owner = struct.go_type.rpartition(".")[2]
    for name, shape in struct.fields.items():
        child = value.get(name)
        where = f"{path}.{name}" if path else name
        problem = _value_error(child, shape, owner, where)
        if problem is not None:
            return problem
    return None


def _value_error(value: Any, shape: Shape, owner: str, where: str) -> str | None:
    if value is None:
        return None
    if not _fits(value, shape):
        return unmarshal_error(value, field=f"{owner}.{where}", of_type=go_type(shape))
    if isinstance(shape, Struct):
        return _struct_error(value, shape, where)
    if isinstance(shape, ListOf):
        for item in value:
            problem = _value_error(item, shape.item, owner, where)
            if problem is not None:
                return problem
    if isinstance(shape, MapOf):
        for item in value.values():
            problem = _value_error(item, shape.value, owner, where)
            if problem is not None:
                return problem
    return None


_STRINGS = ListOf("string")

OBJECT_META = Struct("v1.ObjectMeta", {
    **{name: "string" for name in ("name", "generateName", "namespace", "selfLink", "uid",
                                   "resourceVersion", "creationTimestamp", "deletionTimestamp")},
    "generation": "int64", "deletionGracePeriodSeconds": "int64",
    "labels": MapOf("string"), "annotations": MapOf("string"), "finalizers": _STRINGS,
    "ownerReferences": ListOf(Struct("v1.OwnerReference")),
    "managedFields": ListOf(Struct("v1.ManagedFieldsEntry"))})
_WITH_METADATA = Struct("v1.Object", {"metadata": OBJECT_META})


def metadata_type_error(meta: dict[str, Any]) -> str | None:
    """Why ObjectMeta cannot be decoded (the 400 a real server gives for `"name": 5`,
    `"labels": ["a"]`...), or None."""
    return type_error({"metadata": meta}, _WITH_METADATA)
_RESOURCE_ATTRIBUTES = Struct("v1.ResourceAttributes", {
    name: "string" for name in ("namespace", "verb", "group", "version", "resource",
                                "subresource", "name")})
_NON_RESOURCE_ATTRIBUTES = Struct("v1.NonResourceAttributes", {"path": "string",
                                                               "verb": "string"})


def _review(kind: str, *, user: bool) -> Struct:
    spec: dict[str, Shape] = {"resourceAttributes": _RESOURCE_ATTRIBUTES,
                              "nonResourceAttributes": _NON_RESOURCE_ATTRIBUTES}
    if user:
        spec |= {"user": "string", "groups": _STRINGS, "uid": "string",
                 "extra": MapOf(ListOf("string"))}
    return Struct(f"v1.{kind}", {"spec": Struct(f"v1.{kind.removeprefix('Local')}Spec"
                                                if user else f"v1.{kind}Spec", spec)})


_SCHEMA = Struct("v1.JSONSchemaProps", {"type": "string", "required": _STRINGS})
_SCHEMA.fields["properties"] = MapOf(_SCHEMA)  # a schema's properties are schemas

BODIES: dict[tuple[str, str], Struct] = {
    ("", "ConfigMap"): Struct("v1.ConfigMap", {"data": MapOf("string"), "immutable": "bool"}),
    ("authorization.k8s.io", "SubjectAccessReview"): _review("SubjectAccessReview", user=True),
    ("authorization.k8s.io", "LocalSubjectAccessReview"):
        _review("LocalSubjectAccessReview", user=True),
    ("authorization.k8s.io", "SelfSubjectAccessReview"):
        _review("SelfSubjectAccessReview", user=False),
    ("authorization.k8s.io", "SelfSubjectRulesReview"): Struct(
        "v1.SelfSubjectRulesReview", {"spec": Struct("v1.SelfSubjectRulesReviewSpec",
                                                     {"namespace": "string"})}),
    ("authentication.k8s.io", "TokenReview"): Struct(
        "v1.TokenReview", {"spec": Struct("v1.TokenReviewSpec", {"token": "string",
                                                                 "audiences": _STRINGS})}),
    ("authentication.k8s.io", "TokenRequest"): Struct(
        "v1.TokenRequest", {"spec": Struct("v1.TokenRequestSpec", {
            "audiences": _STRINGS, "expirationSeconds": "int64",
            "boundObjectRef": Struct("v1.BoundObjectReference", {
                "kind": "string", "apiVersion": "string", "name": "string", "uid": "string"})})}),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): Struct(
        "v1.CustomResourceDefinition", {"spec": Struct("v1.CustomResourceDefinitionSpec", {
            "group": "string", "scope": "string",
            "names": Struct("v1.CustomResourceDefinitionNames", {
                "plural": "string", "singular": "string", "kind": "string",
                "listKind": "string", "shortNames": _STRINGS, "categories": _STRINGS}),
            "versions": ListOf(Struct("v1.CustomResourceDefinitionVersion", {
                "name": "string", "served": "bool", "storage": "bool",
                "schema": Struct("v1.CustomResourceValidation", {"openAPIV3Schema": _SCHEMA}),
                "subresources": Struct("v1.CustomResourceSubresources"),
                "additionalPrinterColumns": ListOf(Struct("v1.CustomResourceColumnDefinition", {
                    "name": "string", "type": "string", "jsonPath": "string"})),
            }))})}),
}
"""The bodies whose fields the emulator reads without checking their JSON type itself."""


def body_type_error(group: str, kind: str, body: dict[str, Any]) -> str | None:
    """`type_error` for the kinds in BODIES (None for every other kind)."""
    shape = BODIES.get((group, kind))
    return None if shape is None else type_error(body, shape)
