"""YAML request bodies read as kube-apiserver reads them: converted to JSON by sigs.k8s.io/yaml.

sigs.k8s.io/yaml decodes with go-yaml v2, which speaks YAML 1.1: a plain `y`, `yes`, `on`, `n`,
`no`, `off` (and their `Y`/`Yes`/`YES` spellings) is a boolean, `0755` is octal, `1e3` is a
number, `~` is null. PyYAML's own resolver disagrees in places (it keeps `y` and `1e3` as strings
and reads `1:20` as base 60), so this module composes the document with PyYAML and then gives
every scalar the value go-yaml v2's `resolve` gives it, and every key the string
sigs.k8s.io/yaml makes of it (a null key is an error there, as here).

A body either becomes plain JSON data or is refused with a `YAMLBodyError` (the caller's 400):
timestamps stay the text they were, numbers become what Go's JSON round trip makes of them (an
integral float is an integer), nesting deeper than go-yaml's 10,000 levels, an alias that
contains itself, and excessive aliasing are errors.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Any

import yaml

MAX_DEPTH = 10_000
"""go-yaml's limit on nesting."""
_ALIAS_BUDGET = 1_000_000
"""Values a document may expand to beyond its own size (go-yaml: "excessive aliasing")."""

_TAG = "tag:yaml.org,2002:"
_STR, _BOOL, _INT, _FLOAT, _NULL = (_TAG + t for t in ("str", "bool", "int", "float", "null"))
_TIMESTAMP, _BINARY, _MERGE = _TAG + "timestamp", _TAG + "binary", _TAG + "merge"
_PLAIN = "tag:kubevirt-usb.io,2026:plain"
"""What an untagged plain scalar is composed as: its value is go-yaml's to resolve."""
_RESOLVABLE = ("", _STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP)

_WORDS: dict[str, tuple[str, Any]] = {
    **{w: (_BOOL, True) for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                  "on", "On", "ON")},
    **{w: (_BOOL, False) for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                   "off", "Off", "OFF")},
    **{w: (_NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (_FLOAT, math.nan) for w in (".nan", ".NaN", ".NAN")},
    **{w: (_FLOAT, math.inf) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (_FLOAT, -math.inf) for w in ("-.inf", "-.Inf", "-.INF")},
}
"""go-yaml v2's resolve table: the words it reads as booleans, nulls and special floats."""
_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"),
          **dict.fromkeys("yYnNtTfFoO~", "M"), ".": "."}
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TIMESTAMP_TEXT = re.compile(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"([Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}:[0-9]{2})"
    r"| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?)?$")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_INT64, _UINT64 = 2**63, 2**64


class YAMLBodyError(ValueError):
    """A body that is not a YAML document convertible to JSON; the message says why."""


class _Loader(yaml.SafeLoader):
    """Composes nodes only: untagged plain scalars get `_PLAIN`, quoted ones `!!str`."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


def load_yaml_as_json(raw: bytes | str) -> Any:
    """The first YAML document as JSON data (dicts with str keys, lists, str, int, float, bool,
    None), as sigs.k8s.io/yaml.YAMLToJSON converts it.

    Raises YAMLBodyError (never RecursionError or a type JSON cannot encode)."""
    try:
        node = next(yaml.compose_all(raw, Loader=_Loader), None)
    except yaml.YAMLError as exc:
        raise YAMLBodyError(" ".join(str(exc).split())) from None
    except RecursionError:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
    if node is None:
        return None
    budget = [len(raw) + _ALIAS_BUDGET]
    try:
        return _value(node, 0, budget, set())
    except RecursionError:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None


def _value(node: yaml.Node, depth: int, budget: list[int], open_ids: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise YAMLBodyError("yaml: document contains excessive aliasing")
    if depth > MAX_DEPTH:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}")
    if isinstance(node, yaml.ScalarNode):
        return _json_number(_scalar(node))
    if id(node) in open_ids:
        raise YAMLBodyError("yaml: an alias refers to the node that contains it")
    open_ids.add(id(node))
    try:
        if isinstance(node, yaml.SequenceNode):  # tags on collections mean nothing to go-yaml
            return [_value(item, depth + 1, budget, open_ids) for item in node.value]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                for source in _merge_sources(value_node):
                    out.update(_value(source, depth + 1, budget, open_ids))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise YAMLBodyError("yaml: invalid map key: a mapping or a sequence")
            value = _value(value_node, depth + 1, budget, open_ids)
            out[_key(_scalar(key_node), value)] = value
        return out
    finally:
        open_ids.discard(id(node))


def _is_merge(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == "<<" and \
        node.tag in (_PLAIN, _MERGE)


def _merge_sources(node: yaml.Node) -> list[yaml.Node]:
    """The mappings `<<: ...` merges, in the order go-yaml v2 applies them (each later one
    overwrites: a list's earlier entries win, so they come last)."""
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and \
            all(isinstance(item, yaml.MappingNode) for item in node.value):
        return list(reversed(node.value))
    raise YAMLBodyError("yaml: map merge requires map or sequence of maps as the value")


def _scalar(node: yaml.ScalarNode) -> Any:
    text = str(node.value)
    if node.tag == _BINARY:
        try:
            data = base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=True)
        except (binascii.Error, ValueError):
            raise YAMLBodyError("yaml: !!binary value contains invalid base64 data") from None
        return data.decode("utf-8", errors="replace")
    tag = "" if node.tag == _PLAIN else str(node.tag)
    if tag not in _RESOLVABLE:
        return text  # a tag go-yaml does not know: the text
    resolved_tag, value = resolve_scalar(text, tag=tag)
    if tag in ("", resolved_tag, _STR):
        return value
    if tag == _FLOAT and resolved_tag == _INT:
        return float(value)
    if tag == _TIMESTAMP and resolved_tag == _STR and _TIMESTAMP_TEXT.match(text):
        return text
    raise YAMLBodyError(f"yaml: cannot decode !!{resolved_tag.removeprefix(_TAG)} `{text}` as "
                        f"a !!{tag.removeprefix(_TAG)}")


def resolve_scalar(text: str, *, tag: str = "") -> tuple[str, Any]:
    """go-yaml v2's `resolve`: the tag and value of a scalar written as `text` (plain when `tag`
    is empty). Timestamps and everything else stay text (`!!str`)."""
    hint = _HINTS.get(text[0]) if text else "N"
    if hint is None or tag == _STR:
        return _STR, text
    if text in _WORDS:
        return _WORDS[text]
    if hint == ".":
        number = _go_float(text)
        if number is not None:
            return _FLOAT, number
    elif hint in ("D", "S"):
        plain = text.replace("_", "")
        integer = _go_int(plain)
        if integer is not None:
            return _INT, integer
        if _YAML_STYLE_FLOAT.match(plain):
            number = _go_float(plain)
            if number is not None:
                return _FLOAT, number
    return _STR, text


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), then ParseUint: `0x`, `0o`, `0b` and a leading `0`
    (octal) prefixes, an optional sign; None when it is no int64 or uint64."""
    signed = text[:1] in ("+", "-")
    negative = text[:1] == "-"
    body = text[1:] if signed else text
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:]
    elif body.startswith("0") and len(body) > 1:
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    value = -int(digits, base) if negative else int(digits, base)
    if -_INT64 <= value < _INT64 or (not signed and 0 <= value < _UINT64):
        return value
    return None


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) on the texts go-yaml hands it; None when out of range."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _json_number(value: Any) -> Any:
    """What Go's JSON round trip makes of a float: an integral one below 1e21 is written
    without a fraction, so the server reads it back as an integer when it fits an int64; NaN and
    infinities cannot be written at all."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise YAMLBodyError(f"json: unsupported value: {_go_special(value)}")
        if value.is_integer() and -_INT64 <= value < _INT64:
            return int(value)
    return value


def _go_special(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _key(key: Any, value: Any) -> str:
    """A map key as sigs.k8s.io/yaml's convertToJSONableObject writes it."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and -_INT64 <= key < _INT64:
        return str(key)
    if isinstance(key, float):
        return go_float32_g(key)
    kind = "uint64" if isinstance(key, int) else "%!s(<nil>)"
    shown = hex(key) if isinstance(key, int) else "<nil>"
    raise YAMLBodyError(f"unsupported map key of type: {kind}, key: {shown}, value: "
                        f"{_go_value(value)}")


def _go_value(value: Any) -> str:
    """A value roughly as Go's `%+#v` prints it, for the one error that shows it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (int, float)):
        return repr(value)
    return "map[interface {}]interface {}{...}" if isinstance(value, dict) \
        else "[]interface {}{...}"


def go_float32_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32) with go-yaml's names for the specials: how
    sigs.k8s.io/yaml writes a float map key (`2.5`, `1000`, `1e+06`, `.inf`)."""
    if math.isnan(value):
        return ".nan"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1.0, single) < 0 else "0"
    for precision in range(9):
        text = f"{single:.{precision}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, _, exponent = text.partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    point = int(exponent) + 1  # digits before the decimal point
    if point - 1 < -4 or point - 1 >= 6:
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        exp = point - 1
        return f"{sign}{digits[0]}{fraction}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
