"""CRD structural schemas: validating, pruning and defaulting custom objects, and checking the
schema of a CRD itself, with the field paths and texts kube-apiserver 1.30 prints.

Validation follows kube-openapi's validators as apiextensions-apiserver runs them and converts
their results to field errors (`kubeOpenAPIResultToFieldErrors`), then the embedded-resource
and list-type checks. Known differences:
- `pattern` is run with Python `re` (search, like Go's MatchString); RE2 and `re` agree on the
  syntax CRDs use, but not on exotic constructs or on the text of compile errors.
- string `format`s (date-time, uuid, ...) are not checked, only how a format meets the type;
  `anyOf`/`oneOf`/`allOf`/`not` are evaluated, but when several alternatives fail, which
  one's errors are shown may differ from upstream.
- Upstream walks sibling properties in Go map order (random between runs when several fields
  are wrong); here they follow the schema's order.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from kubevirt_usb.apiserver.errors import Cause
from kubevirt_usb.apiserver.selectors import go_quote

Schema = Mapping[str, Any]

_META_FIELDS = ("apiVersion", "kind", "metadata")
_NIL = "<nil>"

# ---- Go value formatting ----------------------------------------------------------------------


def go_float(value: float) -> str:
    """A float64 as Go's `%v` prints it (shortest digits, exponent from 1e+06 and below 1e-04)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # position of the decimal point
    out = "-" if sign else ""
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{out}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{out}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return out + digits + "0" * (point - len(digits))
    return f"{out}{digits[:point]}.{digits[point:]}"


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else go_float(value)


def _sharp_v(value: Any) -> str:
    """A JSON value held in an `interface{}` as Go's `%#v` prints it."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{go_quote(k)}:{_sharp_v(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + items + "}"
    return "[]interface {}{" + ", ".join(_sharp_v(v) for v in value) + "}"


def _bad_value(value: Any) -> str:
    """How field.Error.ErrorBody prints a bad value."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return go_quote(value)
    return _sharp_v(value)


def _go_json(value: Any) -> str:
    """encoding/json's rendering of an enum value that is not a string."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# ---- field errors ------------------------------------------------------------------------------


def _with_detail(text: str, detail: str) -> str:
    return f"{text}: {detail}" if detail else text


def _required(path: str, detail: str = "") -> Cause:
    return Cause(type="FieldValueRequired", field=path,
                 message=_with_detail("Required value", detail))


def _forbidden(path: str, detail: str) -> Cause:
    return Cause(type="FieldValueForbidden", field=path, message=_with_detail("Forbidden", detail))


def _invalid(path: str, value: Any, detail: str, *, kind: str = "FieldValueInvalid") -> Cause:
    return Cause(type=kind, field=path,
                 message=_with_detail(f"Invalid value: {_bad_value(value)}", detail))


def _not_supported(path: str, value: Any, supported: Sequence[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(s) for s in supported) if supported else ""
    return Cause(type="FieldValueNotSupported", field=path,
                 message=_with_detail(f"Unsupported value: {_bad_value(value)}", detail))


def _duplicate(path: str, value: Any) -> Cause:
    return Cause(type="FieldValueDuplicate", field=path,
                 message=f"Duplicate value: {_bad_value(value)}")


def _too_many(path: str, actual: int, maximum: int) -> Cause:
    return Cause(type="FieldValueTooMany", field=path,
                 message=f"Too many: {actual}: must have at most {maximum} items")


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---- kube-openapi validation ---------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


def _is_json_integer(value: float) -> bool:
    """swag.IsFloat64AJSONInteger."""
    if math.isnan(value) or math.isinf(value) or abs(value) > 2.0 ** 53:
        return False
    if value.is_integer():
        return True
    nearest = float(round(value))
    return abs(value - nearest) / (abs(value) + abs(nearest)) < 1e-9


def _types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    return [schema["type"]] if schema.get("type") else []


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | str:
    try:
        return re.compile(pattern)
    except re.error as exc:
        return f"error parsing regexp: {exc}"


def _same(value: Any, allowed: Any) -> bool:
    if isinstance(value, bool) != isinstance(allowed, bool):
        return False
    return bool(value == allowed)


class _OpenAPI:
    """One run of kube-openapi's SchemaValidator, collecting field errors as apiextensions does."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    @staticmethod
    def field(name: str) -> str:
        trimmed = name.removeprefix(".")
        return trimmed if trimmed else _NIL

    def add(self, cause: Cause) -> None:
        self.causes.append(cause)

    def value(self, value: Any, schema: Schema, path: str) -> None:
        if value is None:
            self.type_(value, schema, path)
            self.enum(value, schema, path)
            return
        self.type_(value, schema, path)
        self.combinators(value, schema, path)
        if isinstance(value, str):
            self.string(value, schema, path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.number(value, schema, path)
        if isinstance(value, list):
            self.array(value, schema, path)
        self.enum(value, schema, path)
        if isinstance(value, Mapping):
            self.object(value, schema, path)

    def type_(self, value: Any, schema: Schema, path: str) -> None:
        types = _types(schema)
        fmt = str(schema.get("format") or "")
        if not types and not fmt:
            return
        if value is None:
            if types and "null" not in types and not schema.get("nullable"):
                self.invalid_type(path, ",".join(types), "null")
            return
        actual = _json_type(value)
        float_int = actual == "number" and "integer" in types and _is_json_integer(value)
        int_float = actual == "integer" and "number" in types
        scalar = not isinstance(value, str | list)
        data_fmt = {"integer": "int64", "number": "float64"}.get(actual, "")
        if fmt and scalar and not (actual in types or data_fmt == fmt or float_int or int_float):
            self.invalid_type(path, fmt, data_fmt)
            return
        if fmt and not scalar and "number" not in types and "integer" not in types:
            return
        if actual not in types and not float_int and not int_float:
            self.invalid_type(path, ",".join(types), actual)

    def invalid_type(self, path: str, expected: str, actual: str) -> None:
        self.add(_invalid(self.field(path), actual,
                          f"{path} in body must be of type {expected}: {go_quote(actual)}",
                          kind="FieldValueTypeInvalid"))

    def combinators(self, value: Any, schema: Schema, path: str) -> None:
        any_of: Sequence[Schema] = schema.get("anyOf") or []
        if any_of:
            results = [self.sub(value, s, path) for s in any_of]
            if all(results):
                self.composite(path, f"{go_quote(path)} must validate at least one schema (anyOf)")
                self.causes.extend(_fewest(results))
        one_of: Sequence[Schema] = schema.get("oneOf") or []
        if one_of:
            results = [self.sub(value, s, path) for s in one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                self.composite(path, f"{go_quote(path)} must validate one and only one schema "
                               f"(oneOf). {extra}")
                if valid == 0:
                    self.causes.extend(_fewest(results))
        all_of: Sequence[Schema] = schema.get("allOf") or []
        if all_of:
            results = [self.sub(value, s, path) for s in all_of]
            for result in results:
                self.causes.extend(result)
            failed = sum(1 for r in results if r)
            if failed:
                extra = ". None validated" if failed == len(results) else ""
                self.composite(path, f"{go_quote(path)} must validate all the schemas "
                               f"(allOf){extra}")
        if isinstance(schema.get("not"), Mapping) and not self.sub(value, schema["not"], path):
            self.composite(path, f"{go_quote(path)} must not validate the schema (not)")

    def sub(self, value: Any, schema: Schema, path: str) -> list[Cause]:
        inner = _OpenAPI()
        inner.value(value, schema, path)
        return inner.causes

    def composite(self, path: str, message: str) -> None:
        # errors.New(...) has no name and carries its args as the value
        self.add(Cause(type="FieldValueInvalid", field=_NIL,
                       message=f"Invalid value: []interface {{}}{{{go_quote(path)}}}: {message}"))

    def string(self, value: str, schema: Schema, path: str) -> None:
        field = self.field(path)
        if schema.get("maxLength") is not None and len(value) > int(schema["maxLength"]):
            self.add(Cause(type="FieldValueTooLong", field=field,
                           message=f"Too long: may not be longer than {int(schema['maxLength'])}"))
            return
        if schema.get("minLength") is not None and len(value) < int(schema["minLength"]):
            self.add(_invalid(field, value, f"{path} in body should be at least "
                              f"{int(schema['minLength'])} chars long"))
            return
        pattern = schema.get("pattern")
        if pattern:
            compiled = _compiled(str(pattern))
            if isinstance(compiled, str):
                self.add(_invalid(field, value, f"{path} in body should match '{pattern}, but "
                                  f"pattern is invalid: {compiled}'"))
            elif not compiled.search(value):
                self.add(_invalid(field, value, f"{path} in body should match '{pattern}'"))

    def number(self, value: int | float, schema: Schema, path: str) -> None:
        field = self.field(path)
        factor = schema.get("multipleOf")
        if factor is not None:
            self.multiple_of(value, factor, field, path)
        for key, word in (("minimum", "greater"), ("maximum", "less")):
            bound = schema.get(key)
            if bound is None:
                continue
            exclusive = bool(schema.get("exclusiveMinimum" if key == "minimum" else
                                        "exclusiveMaximum"))
            limit: int | float = int(bound) if isinstance(value, int) else float(bound)
            below = value < limit if key == "minimum" else value > limit
            if below or (exclusive and value == limit):
                relation = f"{word} than" if exclusive else f"{word} than or equal to"
                self.add(_invalid(field, value,
                                  f"{path} in body should be {relation} {_number(limit)}"))

    def multiple_of(self, value: int | float, factor: int | float, field: str, path: str) -> None:
        if factor < 0:
            self.add(_invalid(field, factor, f"factor MultipleOf declared for {path} must be "
                              f"positive: {_number(factor)}"))
            return
        if isinstance(value, int) and float(factor).is_integer() and factor != 0:
            if value % int(factor):
                self.add(_invalid(field, value,
                                  f"{path} in body should be a multiple of {int(factor)}"))
            return
        if factor == 0:
            return
        ratio = (1 / factor * value) if factor < 1 else (value / factor)
        if not _is_json_integer(ratio):
            self.add(_invalid(field, value, f"{path} in body should be a multiple of "
                              f"{go_float(float(factor))}"))

    def array(self, value: list[Any], schema: Schema, path: str) -> None:
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                self.value(item, items, f"{path}[{index}]")
        field = self.field(path)
        if schema.get("minItems") is not None and len(value) < int(schema["minItems"]):
            self.add(_invalid(field, len(value), f"{path} in body should have at least "
                              f"{int(schema['minItems'])} items"))
        if schema.get("maxItems") is not None and len(value) > int(schema["maxItems"]):
            self.add(_too_many(field, len(value), int(schema["maxItems"])))
        if schema.get("uniqueItems") and _has_duplicates(value):
            self.add(_invalid(field, "", f"{path} in body shouldn't contain duplicates"))

    def enum(self, value: Any, schema: Schema, path: str) -> None:
        allowed: Sequence[Any] = schema.get("enum") or []
        if not allowed:
            return
        if value is not None and any(_same(value, a) for a in allowed):
            return
        shown = [a if isinstance(a, str) else _go_json(a) for a in allowed]
        self.add(_not_supported(self.field(path), value, shown))

    def object(self, value: Mapping[str, Any], schema: Schema, path: str) -> None:
        field = self.field(path)
        count = len(value)
        if schema.get("minProperties") is not None and count < int(schema["minProperties"]):
            self.add(_invalid(field, count, f"{path} in body should have at least "
                              f"{int(schema['minProperties'])} properties"))
            return
        if schema.get("maxProperties") is not None and count > int(schema["maxProperties"]):
            self.add(_too_many(field, count, int(schema["maxProperties"])))
            return
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                continue
            if additional is False:
                self.add(_invalid(field, key, f"{path}.{key} in body is a forbidden property"))
            elif isinstance(additional, Mapping):
                self.value(item, additional, f"{path}.{key}")
        for name, sub in properties.items():
            if name in value:
                self.value(value[name], sub, _child(path, name))
        for name in schema.get("required") or ():
            if name not in value:
                self.add(_required(self.field(f"{path}.{name}")))


def _fewest(results: Sequence[list[Cause]]) -> list[Cause]:
    """The failures of the alternative that came closest (upstream: the most checks passed)."""
    return sorted(results, key=lambda r: len(r))[0]


def _has_duplicates(values: Sequence[Any]) -> bool:
    seen: list[Any] = []
    for v in values:
        if any(_same(v, s) for s in seen):
            return True
        seen.append(v)
    return False


# ---- embedded resources and list types ---------------------------------------------------------


def _dns1035_errors(value: str) -> list[str]:
    errs = []
    if len(value.encode()) > 63:
        errs.append("must be no more than 63 characters")
    if not re.fullmatch("[a-z]([-a-z0-9]*[a-z0-9])?", value):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character "
                    "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
    return errs


def _embedded_type_meta(path: str, value: Mapping[str, Any]) -> list[Cause]:
    causes = []
    for key in ("apiVersion", "kind"):
        if key not in value:
            causes.append(_required(_child(path, key)))
    for key in ("apiVersion", "kind"):
        if key not in value:
            continue
        item, where = value[key], _child(path, key)
        if not isinstance(item, str):
            causes.append(_invalid(where, item, "must be a string"))
        elif not item:
            causes.append(_invalid(where, item, "must not be empty"))
        elif key == "apiVersion" and item.count("/") > 1:
            causes.append(_invalid(where, item, f"unexpected GroupVersion string: {item}"))
        elif key == "kind" and _dns1035_errors(item.lower()):
            causes.append(_invalid(where, item, "may have mixed case, but should otherwise "
                                   "match: " + ",".join(_dns1035_errors(item.lower()))))
    return causes


def _embedded(value: Any, schema: Schema | None, path: str) -> list[Cause]:
    """apiVersion/kind of x-kubernetes-embedded-resource objects (schema/objectmeta.Validate)."""
    if schema is None:
        return []
    causes: list[Cause] = []
    if isinstance(value, Mapping):
        if schema.get("x-kubernetes-embedded-resource"):
            causes.extend(_embedded_type_meta(path, value))
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                causes.extend(_embedded(item, properties[key], _child(path, key)))
            elif isinstance(additional, Mapping):
                causes.extend(_embedded(item, additional, f"{path}[{key}]"))
    elif isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            causes.extend(_embedded(item, items if isinstance(items, Mapping) else None,
                                    f"{path}[{index}]"))
    return causes


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _repeats(keys: Sequence[Any]) -> list[int]:
    """Indexes of the second occurrence of each repeated value (validateListSet)."""
    seen: dict[str, int] = {}
    repeated = []
    for index, key in enumerate(keys):
        marker = _json_key(key) if not isinstance(key, _Unspecified) else "\x00unspecified"
        seen[marker] = seen.get(marker, 0) + 1
        if seen[marker] == 2:
            repeated.append(index)
    return repeated


class _Unspecified:
    """A list-map entry without its key field."""


def _list_map_causes(path: str, schema: Schema, value: list[Any]) -> list[Cause]:
    for index, item in enumerate(value):
        if item is not None and not isinstance(item, Mapping):
            return [_invalid(f"{path}[{index}]", item,
                             "must be an object for an array of list-type map")]
    keys: Sequence[str] = schema.get("x-kubernetes-list-map-keys") or []
    if len(value) <= 1:
        return []
    if len(keys) == 1:
        single = [item.get(keys[0], _Unspecified()) if item is not None else _Unspecified()
                  for item in value]
        return [_duplicate(f"{path}[{i}]", {} if isinstance(single[i], _Unspecified)
                           else {keys[0]: single[i]}) for i in _repeats(single)]
    composite = [{k: item[k] for k in keys if k in item} if item is not None else {}
                 for item in value]
    return [_duplicate(f"{path}[{i}]", composite[i]) for i in _repeats(composite)]


def _list_types(value: Any, schema: Schema | None, path: str) -> list[Cause]:
    """Uniqueness of x-kubernetes-list-type set and map (listtype.ValidateListSetsAndMaps)."""
    if schema is None:
        return []
    causes: list[Cause] = []
    if isinstance(value, Mapping):
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if isinstance(additional, Mapping):
                causes.extend(_list_types(item, additional, f"{path}[{key}]"))
            if key in properties:
                causes.extend(_list_types(item, properties[key], _child(path, key)))
    elif isinstance(value, list):
        kind = schema.get("x-kubernetes-list-type")
        if kind == "set":
            causes.extend(_duplicate(f"{path}[{i}]", value[i]) for i in _repeats(value))
        elif kind == "map":
            causes.extend(_list_map_causes(path, schema, value))
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                causes.extend(_list_types(item, items, f"{path}[{index}]"))
    return causes


def _type_meta_causes(obj: Mapping[str, Any], kind: str, group: str) -> list[Cause]:
    causes = []
    if "kind" in obj and obj["kind"] != kind:
        causes.append(_invalid("kind", obj["kind"], f"must be {kind}"))
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str) and "/" in api_version:
        have, version = api_version.rsplit("/", 1)
        if have != group:
            causes.append(_invalid("apiVersion", api_version, f"must be {group}/{version}"))
    return causes


def validate(obj: Mapping[str, Any], *, schema: Schema, kind: str, group: str) -> list[Cause]:
    """Why `obj` (a custom object of `kind` in `group`) does not fit `schema`, as the causes of
    kube-apiserver's 422; empty when it fits. Metadata itself is the caller's to validate."""
    type_meta = _type_meta_causes(obj, kind, group)
    if type_meta:
        return type_meta
    openapi = _OpenAPI()
    openapi.value(obj, schema, "")
    return [*openapi.causes, *_embedded(obj, schema, ""), *_list_types(obj, schema, "")]


# ---- pruning and defaulting --------------------------------------------------------------------


class _Pruner:
    def __init__(self) -> None:
        self.unknown: list[str] = []

    def prune(self, value: Any, schema: Schema | None, path: str) -> None:
        if schema is not None and schema.get("x-kubernetes-preserve-unknown-fields"):
            self.skip(value, schema, path)
            return
        if isinstance(value, dict):
            for key in list(value):
                if schema is not None and schema.get("x-kubernetes-embedded-resource") and \
                        key in _META_FIELDS:
                    continue
                sub = _property_schema(schema, key)
                if sub is not None:
                    self.prune(value[key], sub, _child(path, key))
                else:
                    self.unknown.append(_child(path, key))
                    del value[key]
        elif isinstance(value, list):
            items = schema.get("items") if schema is not None else None
            for index, item in enumerate(value):
                self.prune(item, items if isinstance(items, Mapping) else None,
                           f"{path}[{index}]")

    def skip(self, value: Any, schema: Schema, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if schema.get("x-kubernetes-embedded-resource") and key in _META_FIELDS:
                    continue
                sub = _property_schema(schema, key)
                if sub is not None:
                    self.prune(item, sub, _child(path, key))
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    self.skip(item, items, f"{path}[{index}]")


def _property_schema(schema: Schema | None, key: str) -> Schema | None:
    if schema is None:
        return None
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _drop_nulls(value: Any, schema: Schema | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: a null where the schema allows none and has no
    default is removed, as if the field had not been sent."""
    if schema is None:
        return
    if isinstance(value, dict):
        for key in list(value):
            sub = _property_schema(schema, key)
            if sub is None:
                continue
            if value[key] is None and "default" not in sub and not sub.get("nullable"):
                del value[key]
            else:
                _drop_nulls(value[key], sub)
    elif isinstance(value, list):
        items = schema.get("items")
        for item in value:
            _drop_nulls(item, items if isinstance(items, Mapping) else None)


def _root(schema: Schema) -> dict[str, Any]:
    return {**schema, "x-kubernetes-embedded-resource": True}


def prune(obj: Mapping[str, Any], *, schema: Schema) -> dict[str, Any]:
    """A copy of `obj` without the fields `schema` does not know, as the CRD decoder stores it.

    x-kubernetes-preserve-unknown-fields keeps unknown fields (still pruning inside known ones),
    embedded resources and the top level keep apiVersion/kind/metadata, and non-nullable nulls
    without a default are dropped.
    """
    out = copy.deepcopy(dict(obj))
    _Pruner().prune(out, _root(schema), "")
    _drop_nulls(out, schema)
    return out


def unknown_fields(obj: Mapping[str, Any], *, schema: Schema) -> list[str]:
    """The paths `prune` drops (`spec.foo`, `spec.items[0].bar`), for upstream's
    `unknown field "<path>"` warnings and strict field validation."""
    pruner = _Pruner()
    pruner.prune(copy.deepcopy(dict(obj)), _root(schema), "")
    return pruner.unknown


def _is_non_nullable_null(value: Any, schema: Schema) -> bool:
    return value is None and not schema.get("nullable") and "default" in schema


def _default(value: Any, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        for key, sub in properties.items():
            if "default" in sub and (key not in value or _is_non_nullable_null(value[key], sub)):
                value[key] = copy.deepcopy(sub["default"])
        additional = schema.get("additionalProperties")
        for key in list(value):
            if key in properties:
                _default(value[key], properties[key])
            elif isinstance(additional, Mapping):
                if _is_non_nullable_null(value[key], additional):
                    value[key] = copy.deepcopy(additional["default"])
                _default(value[key], additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                if _is_non_nullable_null(item, items):
                    value[index] = copy.deepcopy(items["default"])
                _default(value[index], items)


def apply_defaults(obj: Mapping[str, Any], *, schema: Schema) -> dict[str, Any]:
    """A copy of `obj` with the schema's `default`s filled in where a field is missing (or a
    non-nullable null); defaults apply only inside objects that exist, as upstream."""
    out = copy.deepcopy(dict(obj))
    _default(out, schema)
    return out


# ---- list and map types for server-side apply ----------------------------------------------------


def _schema_at(schema: Schema, path: Sequence[str]) -> Schema | None:
    node: Schema | None = schema
    for name in path:
        while node is not None and node.get("type") == "array":
            items = node.get("items")
            node = items if isinstance(items, Mapping) else None
        node = _property_schema(node, name)
        if node is None:
            return None
    return node


def list_type_at(schema: Schema, path: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """("atomic"|"set"|"map", map keys) of the list at a field path (names, no indices)."""
    node = _schema_at(schema, path)
    if node is None or node.get("type") != "array":
        return ("atomic", ())
    kind = str(node.get("x-kubernetes-list-type") or "atomic")
    keys = tuple(node.get("x-kubernetes-list-map-keys") or ()) if kind == "map" else ()
    return (kind, keys)


def map_type_at(schema: Schema, path: Sequence[str]) -> str:
    """"granular" (merge field by field) or "atomic" (replace whole) for the object at a path."""
    node = _schema_at(schema, path)
    if node is None:
        return "granular"
    return str(node.get("x-kubernetes-map-type") or "granular")


# ---- checks of a CRD's schema ------------------------------------------------------------------

_OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_ROOT, _ITEM, _FIELD = "root", "item", "field"
_EMPTY_TYPE = {_ROOT: "must not be empty at the root",
               _ITEM: "must not be empty for specified array items",
               _FIELD: "must not be empty for specified object fields"}


def _error_text(cause: Cause) -> str:
    return f"{cause.field}: {cause.message}"


def _is_int_or_string_any_of(any_of: Any) -> bool:
    return isinstance(any_of, list) and len(any_of) == 2 and \
        [dict(s) for s in any_of] == [{"type": "integer"}, {"type": "string"}]


def _metadata_causes(schema: Schema, level: str, path: str) -> list[Cause]:
    causes = []
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    check = level == _ROOT or bool(schema.get("x-kubernetes-embedded-resource"))
    where = _child(path, "properties")
    for key, want in (("kind", "string"), ("apiVersion", "string"), ("metadata", "object")):
        if check and key in properties and properties[key].get("type", "") != want:
            causes.append(_invalid(f"{where}[{key}].type", properties[key].get("type", ""),
                                   f"must be {want}"))
    if level == _ROOT and "metadata" in properties:
        meta = properties["metadata"]
        names = set((meta.get("properties") or {}).keys())
        extra = {k for k, v in meta.items() if v not in (None, False, "", [], {})} - \
            {"type", "default", "properties", "example", "externalDocs"}
        if extra or (names and not names <= {"name", "generateName"}):
            causes.append(_forbidden(f"{where}[metadata]", "must not specify anything other "
                                     "than name and generateName, but metadata is implicitly "
                                     "specified"))
    return causes


_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
)


def _value_validation(schema: Schema, path: str, *, skip_any_of: bool = False,
                      skip_first_all_of_any_of: bool = False) -> list[Cause]:
    causes = []
    if not skip_any_of:
        for i, sub in enumerate(schema.get("anyOf") or ()):
            causes.extend(_nested(sub, f"{_child(path, 'anyOf')}[{i}]"))
    for i, sub in enumerate(schema.get("allOf") or ()):
        causes.extend(_nested(sub, f"{_child(path, 'allOf')}[{i}]",
                              skip_any_of=skip_first_all_of_any_of and i == 0))
    for i, sub in enumerate(schema.get("oneOf") or ()):
        causes.extend(_nested(sub, f"{_child(path, 'oneOf')}[{i}]"))
    if isinstance(schema.get("not"), Mapping):
        causes.extend(_nested(schema["not"], _child(path, "not")))
    pattern = schema.get("pattern")
    if pattern:
        compiled = _compiled(str(pattern))
        if isinstance(compiled, str):
            causes.append(_invalid(_child(path, "pattern"), pattern,
                                   f"must be a valid regular expression, but isn't: {compiled}"))
    return causes


def _nested(schema: Schema, path: str, *, skip_any_of: bool = False) -> list[Cause]:
    """A schema under anyOf/allOf/oneOf/not may only validate values, not declare structure."""
    causes = _value_validation(schema, path, skip_any_of=skip_any_of)
    if isinstance(schema.get("items"), Mapping):
        causes.extend(_nested(schema["items"], _child(path, "items")))
    for key, sub in (schema.get("properties") or {}).items():
        causes.extend(_nested(sub, f"{_child(path, 'properties')}[{key}]"))
    for key, detail in _NESTED_FORBIDDEN:
        if schema.get(key) not in (None, False, "", []):
            causes.append(_forbidden(_child(path, key), detail))
    if "metadata" in (schema.get("properties") or {}):
        causes.append(_forbidden(f"{_child(path, 'properties')}[metadata]",
                                 "must not be specified in a nested context"))
    return causes


def _structural(schema: Schema, level: str, path: str) -> list[Cause]:
    """validateStructuralInvariants."""
    causes: list[Cause] = []
    kind = schema.get("type", "")
    items = schema.get("items")
    if kind == "array" and items is None:
        causes.append(_required(_child(path, "items"), "must be specified"))
    if isinstance(items, Mapping):
        causes.extend(_structural(items, _ITEM, _child(path, "items")))
    for key, sub in (schema.get("properties") or {}).items():
        causes.extend(_structural(sub, _FIELD, f"{_child(path, 'properties')}[{key}]"))
    additional = schema.get("additionalProperties")
    if additional is not None:
        if level == _ROOT:
            causes.append(_forbidden(_child(path, "additionalProperties"),
                                     "must not be used at the root"))
        if isinstance(additional, Mapping):
            causes.extend(_structural(additional, _FIELD, _child(path, "additionalProperties")))
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        causes.append(_invalid(_child(path, "x-kubernetes-preserve-unknown-fields"), True,
                               "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        causes.append(_invalid(_child(path, "x-kubernetes-embedded-resource"), True,
                               "must be false if x-kubernetes-int-or-string is true"))
    all_of = schema.get("allOf")
    causes.extend(_value_validation(
        schema, path, skip_any_of=_is_int_or_string_any_of(schema.get("anyOf")),
        skip_first_all_of_any_of=isinstance(all_of, list) and bool(all_of)
        and isinstance(all_of[0], Mapping) and _is_int_or_string_any_of(all_of[0].get("anyOf"))))
    type_path = _child(path, "type")
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        causes.append(_required(type_path, detail) if not kind else
                      _invalid(type_path, kind, detail))
    elif not kind and not int_or_string and not preserve:
        causes.append(_required(type_path, _EMPTY_TYPE[level]))
    if embedded and additional is not None:
        causes.append(_forbidden(_child(path, "additionalProperties"),
                                 "must not be used if x-kubernetes-embedded-resource is set"))
    if level == _ROOT and kind and kind != "object":
        causes.append(_invalid(type_path, kind, "must be object at the root"))
    causes.extend(_metadata_causes(schema, level, path))
    if embedded and not preserve and not schema.get("properties"):
        causes.append(_required(_child(path, "properties"), "must not be empty if "
                                "x-kubernetes-embedded-resource is true without "
                                "x-kubernetes-preserve-unknown-fields"))
    return causes


def _openapi_schema(schema: Schema, path: str) -> list[Cause]:
    """ValidateCustomResourceDefinitionOpenAPISchema (the parts a v1 CRD can trip over)."""
    causes: list[Cause] = []
    kind = schema.get("type", "")
    if kind and kind not in _OPENAPI_TYPES:
        causes.append(_not_supported(_child(path, "type"), kind, _OPENAPI_TYPES))
    for key, detail in (("id", "id is not supported"),
                        ("additionalItems", "additionalItems is not supported"),
                        ("patternProperties", "patternProperties is not supported"),
                        ("definitions", "definitions is not supported"),
                        ("dependencies", "dependencies is not supported"),
                        ("$ref", "$ref is not supported")):
        if schema.get(key):
            causes.append(_forbidden(_child(path, key), detail))
    if kind == "null":
        causes.append(_forbidden(_child(path, "type"),
                                 "type cannot be set to null, use nullable as an alternative"))
    if isinstance(schema.get("items"), list):
        causes.append(_forbidden(_child(path, "items"),
                                 "items must be a schema object and not an array"))
    if schema.get("uniqueItems"):
        causes.append(_forbidden(_child(path, "uniqueItems"), "uniqueItems cannot be set to true "
                                 "since the runtime complexity becomes quadratic"))
    additional = schema.get("additionalProperties")
    if additional is not None and schema.get("properties") and additional is not True:
        causes.append(_forbidden(_child(path, "additionalProperties"),
                                 "additionalProperties and properties are mutual exclusive"))
    if isinstance(additional, Mapping):
        causes.extend(_openapi_schema(additional, _child(path, "additionalProperties")))
    for key, sub in (schema.get("properties") or {}).items():
        causes.extend(_openapi_schema(sub, f"{_child(path, 'properties')}[{key}]"))
    if isinstance(schema.get("not"), Mapping):
        causes.extend(_openapi_schema(schema["not"], _child(path, "not")))
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(junctor) or ()):
            causes.extend(_openapi_schema(sub, f"{_child(path, junctor)}[{i}]"))
    if isinstance(schema.get("items"), Mapping):
        causes.extend(_openapi_schema(schema["items"], _child(path, "items")))
    causes.extend(_extension_causes(schema, path))
    return causes


def _extension_causes(schema: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = schema.get("type", "")
    type_path = _child(path, "type")
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        causes.append(_invalid(_child(path, "x-kubernetes-preserve-unknown-fields"), False,
                               "must be true or undefined"))
    map_type = schema.get("x-kubernetes-map-type")
    if map_type is not None and kind != "object":
        detail = "must be object if x-kubernetes-map-type is specified"
        causes.append(_required(type_path, detail) if not kind else
                      _invalid(type_path, kind, detail))
    if map_type is not None and map_type not in ("atomic", "granular"):
        causes.append(_not_supported(_child(path, "x-kubernetes-map-type"), map_type,
                                     ["atomic", "granular"]))
    list_type = schema.get("x-kubernetes-list-type")
    if list_type is not None and kind != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        causes.append(_required(type_path, detail) if not kind else
                      _invalid(type_path, kind, detail))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        causes.append(_not_supported(_child(path, "x-kubernetes-list-type"), list_type,
                                     ["atomic", "set", "map"]))
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if keys and list_type is None:
        causes.append(_required(_child(path, "x-kubernetes-list-type"),
                                "must be map if x-kubernetes-list-map-keys is non-empty"))
    elif keys and list_type != "map":
        causes.append(_invalid(_child(path, "x-kubernetes-list-type"), list_type,
                               "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        causes.extend(_list_map_schema_causes(schema, path, keys))
    return causes


def _list_map_schema_causes(schema: Schema, path: str, keys: Sequence[str]) -> list[Cause]:
    causes: list[Cause] = []
    if not keys:
        causes.append(_required(_child(path, "x-kubernetes-list-map-keys"),
                                "must not be empty if x-kubernetes-list-type is map"))
    items = schema.get("items")
    if items is None:
        causes.append(_required(_child(path, "items"),
                                "must have a schema if x-kubernetes-list-type is map"))
        return causes
    if not isinstance(items, Mapping):
        return causes
    items_path = _child(path, "items")
    if items.get("type", "") != "object":
        causes.append(_invalid(_child(items_path, "type"), items.get("type", ""),
                               "must be object if parent array's x-kubernetes-list-type is map"))
        return causes
    properties: Mapping[str, Schema] = items.get("properties") or {}
    seen: set[str] = set()
    for key in keys:
        if key in properties:
            if properties[key].get("type") in ("array", "object"):
                causes.append(_invalid(f"{_child(items_path, 'properties')}[{key}].type",
                                       "object", "must be a scalar type if parent array's "
                                       "x-kubernetes-list-type is map"))
        else:
            causes.append(_invalid(_child(path, "x-kubernetes-list-map-keys"), list(keys),
                                   "entries must all be names of item properties"))
        if key in seen:
            causes.append(_invalid(_child(path, "x-kubernetes-list-map-keys"), list(keys),
                                   "must not contain duplicate entries"))
        seen.add(key)
    return causes


def check_structural(schema: Schema, *, path: str = "") -> list[Cause]:
    """Why a CRD version's openAPIV3Schema would be rejected (422) when the CRD is created.

    Field paths are relative to the schema unless `path` names it (upstream prints e.g.
    `spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not
    be empty for specified object fields`). Covers the structural-schema invariants (sorted as
    upstream sorts them) and the v1 OpenAPI restrictions; defaults are not validated against
    their schema, and CEL rules are not compiled.
    """
    causes = []
    if schema.get("nullable"):
        causes.append(_forbidden(_child(path, "nullable"), "nullable cannot be true at the root"))
    causes.extend(sorted(_structural(schema, _ROOT, path), key=_error_text))
    causes.extend(_openapi_schema(schema, path))
    return causes


__all__ = ["apply_defaults", "check_structural", "go_float", "list_type_at", "map_type_at",
           "prune", "unknown_fields", "validate"]
