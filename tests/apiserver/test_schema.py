"""Custom objects are validated, pruned and defaulted, and CRD schemas checked, as upstream."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.apiserver.errors import Cause, invalid
from kubevirt_usb.apiserver.schema import (
    apply_defaults,
    check_structural,
    go_float,
    list_type_at,
    map_type_at,
    prune,
    unknown_fields,
    validate,
)

SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["vm"],
    "properties": {
        "vm": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "weight": {"type": "number", "exclusiveMinimum": True, "minimum": 0.5,
                   "maximum": 1000000},
        "step": {"type": "integer", "multipleOf": 2},
        "count": {"type": "integer", "format": "int32"},
        "mode": {"type": "string", "enum": ["a", "b"]},
        "level": {"type": "integer", "enum": [1, 2]},
        "port": {"x-kubernetes-int-or-string": True},
        "name": {"type": "string", "minLength": 2, "maxLength": 5},
        "note": {"type": "string", "nullable": True},
        "device": {"type": "object", "properties": {
            "vendorId": {"type": "string", "pattern": "^[0-9a-f]{4}$"}}},
        "devices": {"type": "array", "maxItems": 3, "minItems": 1,
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "bus": {"type": "integer", "default": 1}}}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["port", "protocol"],
                  "items": {"type": "object", "properties": {
                      "port": {"type": "integer"}, "protocol": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "labels": {"type": "object", "maxProperties": 2,
                   "additionalProperties": {"type": "string"}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                  "properties": {"known": {"type": "object", "properties": {
                      "a": {"type": "string"}}}}},
        "policy": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
            "mode": {"type": "string", "default": "auto"}}},
    },
}
SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
    "metadata": {"type": "object"}, "spec": SPEC,
    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "usb.example.io/v1", "kind": "Usb", "metadata": {"name": "u"},
            "spec": {"vm": "vm1", **spec}}


def check(**spec: Any) -> list[Cause]:
    return validate(obj(**spec), schema=SCHEMA, kind="Usb", group="usb.example.io")


def message(causes: list[Cause]) -> str:
    """The 422 message upstream builds from these causes (ErrorList.ToAggregate)."""
    texts = list(dict.fromkeys(f"{c.field}: {c.message}" for c in causes))
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return f'Usb.usb.example.io "u" is invalid: {summary}'


def test_single_cause_prints_through_errors_invalid() -> None:
    causes = check(replicas="x")
    assert invalid(kind="Usb", group="usb.example.io", name="u", causes=causes).message == \
        message(causes)


def test_valid_object_has_no_causes() -> None:
    assert check(replicas=3, weight=1.5, step=4, mode="a", port=80, name="abc",
                 device={"vendorId": "1d6b"}, devices=[{"name": "a"}, {"name": "b"}],
                 tags=["x", "y"], labels={"a": "b"}, note=None, level=2,
                 template={"apiVersion": "v1", "kind": "Pod", "spec": {}}) == []
    assert check(port="http") == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"replicas": "string"},
     'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: '
     '"string"'),
    ({"mode": "x"}, 'spec.mode: Unsupported value: "x": supported values: "a", "b"'),
    ({"count": True},
     'spec.count: Invalid value: "": spec.count in body must be of type int32: ""'),
    ({"level": 3}, 'spec.level: Unsupported value: 3: supported values: "1", "2"'),
    ({"device": {"vendorId": "zz"}},
     "spec.device.vendorId: Invalid value: \"zz\": spec.device.vendorId in body should match "
     "'^[0-9a-f]{4}$'"),
    ({"replicas": 0},
     "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal "
     "to 1"),
    ({"replicas": 11},
     "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
    ({"weight": 0.5},
     "spec.weight: Invalid value: 0.5: spec.weight in body should be greater than 0.5"),
    ({"weight": 2e6},
     "spec.weight: Invalid value: 2e+06: spec.weight in body should be less than or equal to "
     "1e+06"),
    ({"step": 3}, "spec.step: Invalid value: 3: spec.step in body should be a multiple of 2"),
    ({"name": "abcdef"}, "spec.name: Too long: may not be longer than 5"),
    ({"name": "a"}, 'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars '
                    "long"),
    ({"port": True},
     'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: '
     '"boolean"'),
    ({"devices": []},
     "spec.devices: Invalid value: 0: spec.devices in body should have at least 1 items"),
    ({"devices": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]},
     "spec.devices: Too many: 4: must have at most 3 items"),
    ({"labels": {"a": "1", "b": "2", "c": "3"}}, "spec.labels: Too many: 3: must have at most 2 "
                                                 "items"),
    ({"labels": {"a": 1}},
     'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: '
     '"integer"'),
    ({"device": None},
     'spec.device: Invalid value: "null": spec.device in body must be of type object: "null"'),
    ({"devices": [{"name": "a"}, {"name": "a"}]},
     'spec.devices[1]: Duplicate value: map[string]interface {}{"name":"a"}'),
    ({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"},
                {"port": 80, "protocol": "UDP"}]},
     'spec.ports[1]: Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}'),
    ({"devices": ["a"]},
     '[spec.devices[0]: Invalid value: "string": spec.devices[0] in body must be of type object: '
     '"string", spec.devices[0]: Invalid value: "a": must be an object for an array of '
     "list-type map]"),
    ({"tags": ["a", "b", "a", "a"]}, 'spec.tags[2]: Duplicate value: "a"'),
    ({"template": {"spec": {}}},
     "[spec.template.apiVersion: Required value, spec.template.kind: Required value]"),
    ({"template": {"apiVersion": "a/b/c", "kind": "Bad_Kind"}},
     '[spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c, '
     'spec.template.kind: Invalid value: "Bad_Kind": may have mixed case, but should otherwise '
     "match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
     "with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  "
     "or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]"),
])
def test_invalid_values_print_like_kube_apiserver(spec: dict[str, Any], expected: str) -> None:
    assert message(check(**spec)) == f'Usb.usb.example.io "u" is invalid: {expected}'


def test_required_fields() -> None:
    body = obj()
    del body["spec"]["vm"]
    causes = validate(body, schema=SCHEMA, kind="Usb", group="usb.example.io")
    assert causes == [Cause(type="FieldValueRequired", field="spec.vm",
                            message="Required value")]


def test_cause_types_follow_upstream() -> None:
    types = {c.field: c.type for c in check(replicas="x", mode="x", name="abcdef", tags=["a", "a"],
                                            labels={"a": "1", "b": "2", "c": "3"}, replicas2=1)}
    assert types == {"spec.replicas": "FieldValueTypeInvalid",
                     "spec.mode": "FieldValueNotSupported", "spec.name": "FieldValueTooLong",
                     "spec.tags[1]": "FieldValueDuplicate", "spec.labels": "FieldValueTooMany"}


def test_numbers_cross_integer_and_number() -> None:
    assert check(replicas=2.0) == []
    assert check(weight=3) == []
    assert [c.field for c in check(replicas=2.5)] == ["spec.replicas"]


def test_nullable_accepts_null_and_enum_rejects_it() -> None:
    assert check(note=None) == []
    schema = {"type": "object", "properties": {"m": {"type": "string", "nullable": True,
                                                    "enum": ["a"]}}}
    assert message(validate({"m": None}, schema=schema, kind="Usb", group="g")) == \
        'Usb.usb.example.io "u" is invalid: m: Unsupported value: "null": supported values: "a"'


def test_kind_must_match() -> None:
    body = {**obj(), "kind": "Other"}
    assert validate(body, schema=SCHEMA, kind="Usb", group="usb.example.io") == [
        Cause(type="FieldValueInvalid", field="kind",
              message='Invalid value: "Other": must be Usb')]


def test_any_of_reports_the_composite_failure() -> None:
    schema = {"type": "object", "properties": {"x": {
        "type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}}}
    causes = validate({"x": "c"}, schema=schema, kind="K", group="g")
    assert causes[0] == Cause(type="FieldValueInvalid", field="<nil>", message=(
        'Invalid value: []interface {}{"x"}: "x" must validate at least one schema (anyOf)'))
    assert causes[1].field == "x"
    assert validate({"x": "b"}, schema=schema, kind="K", group="g") == []


# ---- pruning -------------------------------------------------------------------------------------


def test_prune_drops_unknown_fields_and_keeps_what_the_schema_allows() -> None:
    body = obj(bogus=1, devices=[{"name": "a", "junk": True}],
               template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "anything": {"deep": 1}},
               extra={"free": 1, "known": {"a": "x", "b": "y"}})
    body["status"] = {"phase": "Ready", "junk": 1}
    body["topLevelJunk"] = 1
    pruned = prune(body, schema=SCHEMA)
    assert pruned["apiVersion"] == body["apiVersion"]
    assert pruned["metadata"] == {"name": "u"}
    assert "topLevelJunk" not in pruned
    assert "bogus" not in pruned["spec"]
    assert pruned["spec"]["devices"] == [{"name": "a"}]
    assert pruned["spec"]["template"] == body["spec"]["template"]
    assert pruned["spec"]["extra"] == {"free": 1, "known": {"a": "x"}}
    assert pruned["status"] == {"phase": "Ready"}
    assert body["spec"]["bogus"] == 1  # the input is left alone
    assert unknown_fields(body, schema=SCHEMA) == [
        "spec.bogus", "spec.devices[0].junk", "spec.extra.known.b", "status.junk",
        "topLevelJunk"]


def test_prune_drops_non_nullable_nulls_without_defaults() -> None:
    pruned = prune(obj(device=None, note=None), schema=SCHEMA)
    assert "device" not in pruned["spec"]
    assert pruned["spec"]["note"] is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["vm", "devices", "name", "x", "spec"]),
                                      inner, max_size=3), max_leaves=10))
def test_prune_is_idempotent_and_leaves_nothing_unknown(spec: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Usb", "metadata": {}, "spec": spec}
    once = prune(body, schema=SCHEMA)
    assert prune(once, schema=SCHEMA) == once
    assert unknown_fields(once, schema=SCHEMA) == []


# ---- defaulting ----------------------------------------------------------------------------------


def test_defaults_fill_missing_fields_inside_existing_objects() -> None:
    body = obj(devices=[{"name": "a"}, {"name": "b", "bus": 3}], policy={})
    defaulted = apply_defaults(body, schema=SCHEMA)
    assert defaulted["spec"]["devices"] == [{"name": "a", "bus": 1}, {"name": "b", "bus": 3}]
    assert defaulted["spec"]["policy"] == {"mode": "auto"}
    assert "policy" not in apply_defaults(obj(), schema=SCHEMA)["spec"]
    assert body["spec"]["policy"] == {}


def test_defaults_replace_non_nullable_nulls() -> None:
    defaulted = apply_defaults(obj(policy={"mode": None}), schema=SCHEMA)
    assert defaulted["spec"]["policy"] == {"mode": "auto"}
    maps = {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {
        "type": "string", "default": "d"}}}}
    assert apply_defaults({"m": {"k": None}}, schema=maps) == {"m": {"k": "d"}}


# ---- list and map types --------------------------------------------------------------------------


def test_list_and_map_types_at_paths() -> None:
    assert list_type_at(SCHEMA, ["spec", "devices"]) == ("map", ("name",))
    assert list_type_at(SCHEMA, ["spec", "ports"]) == ("map", ("port", "protocol"))
    assert list_type_at(SCHEMA, ["spec", "tags"]) == ("set", ())
    assert list_type_at(SCHEMA, ["spec", "name"]) == ("atomic", ())
    assert list_type_at(SCHEMA, ["spec", "nope", "deeper"]) == ("atomic", ())
    nested = {"type": "object", "properties": {"a": {"type": "array", "items": {
        "type": "object", "properties": {"b": {"type": "object", "additionalProperties": {
            "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}}}}}
    assert list_type_at(nested, ["a", "b", "anykey"]) == ("set", ())
    assert map_type_at(SCHEMA, ["spec", "policy"]) == "atomic"
    assert map_type_at(SCHEMA, ["spec"]) == "granular"


# ---- CRD schema checks ---------------------------------------------------------------------------


def test_a_structural_schema_passes() -> None:
    assert check_structural(SCHEMA) == []


def test_missing_types_are_reported_sorted_like_upstream() -> None:
    broken = {"properties": {"spec": {"properties": {"a": {"type": "array"},
                                                     "b": {"items": {"type": "string"}}}}}}
    causes = check_structural(broken, path="spec.versions[0].schema.openAPIV3Schema")
    root = "spec.versions[0].schema.openAPIV3Schema"
    assert [f"{c.field}: {c.message}" for c in causes] == [
        f"{root}.properties[spec].properties[a].items: Required value: must be specified",
        f"{root}.properties[spec].properties[b].type: Required value: must not be empty for "
        "specified object fields",
        f"{root}.properties[spec].type: Required value: must not be empty for specified object "
        "fields",
        f"{root}.type: Required value: must not be empty at the root",
    ]


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "string"}, 'type: Invalid value: "string": must be object at the root'),
    ({"type": "object", "nullable": True},
     "nullable: Forbidden: nullable cannot be true at the root"),
    ({"type": "object", "additionalProperties": {"type": "string"}},
     "additionalProperties: Forbidden: must not be used at the root"),
    ({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True,
                                             "items": {"type": "string"}}}},
     "properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
     "complexity becomes quadratic"),
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {
        "b": {"type": "string"}}, "additionalProperties": {"type": "string"}}}},
     "properties[a].additionalProperties: Forbidden: additionalProperties and properties are "
     "mutual exclusive"),
    ({"type": "object", "properties": {"a": {"type": "thing"}}},
     'properties[a].type: Unsupported value: "thing": supported values: "array", "boolean", '
     '"integer", "number", "object", "string"'),
    ({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                                             "items": {"type": "string"}}}},
     "properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if "
     "x-kubernetes-list-type is map, properties[a].items.type: Invalid value: \"string\": must "
     "be object if parent array's x-kubernetes-list-type is map"),
    ({"type": "object", "properties": {"a": {"type": "string",
                                             "x-kubernetes-list-type": "set"}}},
     'properties[a].type: Invalid value: "string": must be array if x-kubernetes-list-type is '
     "specified"),
    ({"type": "object", "properties": {"a": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": False}}},
     "properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or "
     "undefined"),
    ({"type": "object", "properties": {"a": {"x-kubernetes-embedded-resource": True}}},
     "properties[a].properties: Required value: must not be empty if "
     "x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields, "
     "properties[a].type: Required value: must be object if x-kubernetes-embedded-resource is "
     "true"),
    ({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}]}}},
     "properties[a].anyOf[0].type: Forbidden: must be empty to be structural"),
    ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "labels": {"type": "object"}}}}},
     "properties[metadata]: Forbidden: must not specify anything other than name and "
     "generateName, but metadata is implicitly specified"),
])
def test_broken_schemas(schema: dict[str, Any], expected: str) -> None:
    assert ", ".join(f"{c.field}: {c.message}" for c in check_structural(schema)) == expected


def test_int_or_string_and_preserve_unknown_need_no_type() -> None:
    schema = {"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True,
                 "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "free": {"x-kubernetes-preserve-unknown-fields": True},
        "metadata": {"type": "object", "properties": {"name": {"type": "string",
                                                               "maxLength": 10}}}}}
    assert check_structural(schema) == []


# ---- Go number formatting ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.5, "0.5"), (123456.0, "123456"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5e-7, "-2.5e-07"), (1e21, "1e+21"),
    (float("inf"), "+Inf"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_go_float_formats_like_go(value: float, text: str) -> None:
    assert go_float(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_round_trips(value: float) -> None:
    text = go_float(value)
    assert float(text) == value or (value == 0 and math.copysign(1, value) < 0)
