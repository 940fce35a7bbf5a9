"""The three patch documents a kube-apiserver accepts, applied to plain JSON data.

- JSON merge patch (RFC 7386, `application/merge-patch+json`),
- JSON patch (RFC 6902, `application/json-patch+json`),
- Kubernetes strategic merge patch (`application/strategic-merge-patch+json`).

Behaviour and error texts follow k8s.io/apiserver handlers/patch.go, gopkg.in/evanphx/json-patch.v4
and k8s.io/apimachinery/pkg/util/strategicpatch. Inputs are never mutated.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kubevirt_usb.apiserver.errors import APIError, bad_request

MAX_JSON_PATCH_OPERATIONS = 10000
_INVALID_PATCH = "the server rejected our request due to an error in our request"


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _unprocessable() -> APIError:
    """422 as `NewGenericServerResponse(422, ...)` builds it: the detail is not passed on."""
    return APIError(code=422, reason="Invalid", message=_INVALID_PATCH, empty_details=True)


def _unknown(message: str) -> APIError:
    """A plain Go error surfacing from the handler: 500 with an empty reason."""
    return APIError(code=500, reason="", message=message)


def _go_json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def _go_type(value: Any) -> str:
    """The Go type name `reflect.TypeOf` prints for a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "int64" if isinstance(value, int) else "float64"


def _go_fmt(value: Any) -> str:
    """Approximately what Go's `%v` prints for a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_fmt(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: booleans are not numbers, 1 equals 1.0, key order is ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _go_eq(a: Any, b: Any) -> bool:
    """Go interface equality between decoded JSON scalars (same dynamic type and value)."""
    return type(a) is type(b) and json_equal(a, b)


def _scalar_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


# ---------------------------------------------------------------------------------------------
# JSON merge patch
# ---------------------------------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: null deletes, objects merge recursively, the rest replaces.

    Like kube-apiserver, the patch document itself must be a JSON object (400 otherwise) and
    nulls inside newly added objects are dropped.
    """
    if patch is None:
        raise bad_request("Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise bad_request(
            "error decoding patch: json: cannot unmarshal "
            f"{_go_json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    return _merge_value(target, patch)


def _merge_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _prune_nulls(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_value(out.get(key), value)
    return out


def _prune_nulls(value: Any) -> Any:
    """What evanphx/json-patch does to values it inserts: drop null members of objects."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# JSON patch
# ---------------------------------------------------------------------------------------------


class _OpFailed(Exception):
    """One JSON patch operation did not apply; the server answers 422."""


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add/remove/replace/move/copy/test).

    A document that is not a list of operation objects is a 400; too many operations a 413; an
    operation that does not apply (missing path, failed test, unknown op) a 422 with the generic
    message kube-apiserver gives. Like kube-apiserver (json-patch v4), `replace` of a missing
    object member adds it, and negative array indices count from the end.
    """
    if not isinstance(operations, list):
        raise bad_request(
            f"json: cannot unmarshal {_go_json_kind(operations)} into Go value of type "
            "jsonpatch.Patch"
        )
    for op in operations:
        if op is not None and not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_go_json_kind(op)} into Go value of type "
                "jsonpatch.Operation"
            )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise APIError(
            code=413,
            reason="RequestEntityTooLarge",
            message="Request entity too large: The allowed maximum operations in a JSON patch "
            f"is {MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
        )
    doc = copy.deepcopy(target)
    try:
        for op in operations:
            doc = _apply_operation(doc, op or {})
    except _OpFailed:
        raise _unprocessable() from None
    return doc


_MISSING: Any = object()
_TOKEN = re.compile(r"~[01]")


def _decode_token(token: str) -> str:
    return _TOKEN.sub(lambda m: "/" if m.group(0) == "~1" else "~", token)


def _string_field(op: dict[str, Any], name: str) -> str:
    value = op.get(name)
    if not isinstance(value, str):
        raise _OpFailed(f"operation missing {name} field")
    return value


def _find_container(doc: Any, pointer: str) -> tuple[Any, str]:
    """The object or array holding the last token of `pointer`, and that token."""
    parts = pointer.split("/")
    if len(parts) < 2 or parts[0] != "":
        raise _OpFailed(f"doc is missing path: {pointer}")
    node = doc
    for raw in parts[1:-1]:
        node = _get(node, _decode_token(raw))
        if not isinstance(node, dict | list):
            raise _OpFailed(f"doc is missing path: {pointer}")
    if not isinstance(node, dict | list):
        raise _OpFailed(f"doc is missing path: {pointer}")
    return node, _decode_token(parts[-1])


def _index(token: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", token):
        raise _OpFailed(f"value was not a proper array index: '{token}'")
    return int(token)


def _get(node: Any, key: str) -> Any:
    """Like json-patch v4 `get`: a missing object member reads as null."""
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list):
        idx = _index(key)
        if idx < 0 or idx >= len(node):
            raise _OpFailed(f"Unable to access invalid index: {idx}")
        return node[idx]
    raise _OpFailed("not a container")


def _add(node: Any, key: str, value: Any) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    if key == "-":
        node.append(value)
        return
    idx = _index(key)
    size = len(node) + 1
    if idx >= size or idx < -size:
        raise _OpFailed(f"Unable to access invalid index: {idx}")
    node.insert(idx + size if idx < 0 else idx, value)


def _remove(node: Any, key: str) -> None:
    if isinstance(node, dict):
        if key not in node:
            raise _OpFailed(f"Unable to remove nonexistent key: {key}")
        del node[key]
        return
    idx = _index(key)
    if idx >= len(node) or idx < -len(node):
        raise _OpFailed(f"Unable to access invalid index: {idx}")
    del node[idx]


def _replace(node: Any, key: str, value: Any) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    idx = _index(key)
    if idx >= len(node) or idx < -len(node):
        raise _OpFailed(f"Unable to access invalid index: {idx}")
    node[idx] = value


def _apply_operation(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind in ("add", "replace", "test"):
        node, key = _find_container(doc, _string_field(op, "path"))
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            _add(node, key, value)
        elif kind == "replace":
            _get(node, key)
            _replace(node, key, value)
        elif not json_equal(_get(node, key), value):
            raise _OpFailed("test failed")
    elif kind == "remove":
        node, key = _find_container(doc, _string_field(op, "path"))
        _remove(node, key)
    elif kind in ("move", "copy"):
        node, key = _find_container(doc, _string_field(op, "from"))
        value = copy.deepcopy(_get(node, key))
        if kind == "move":
            _remove(node, key)
        dest, dest_key = _find_container(doc, _string_field(op, "path"))
        _add(dest, dest_key, value)
    else:
        raise _OpFailed(f"Unexpected kind: {kind}")
    return doc


# ---------------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------------

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

_ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


@dataclass(frozen=True)
class ListStrategy:
    """A field's `patchStrategy`/`patchMergeKey` tags.

    `merge` with a `merge_key` merges lists of objects by that key; `merge` without one merges
    lists of scalars as sets (like `metadata.finalizers`); `replace` replaces the whole list (or
    map). Fields without a strategy are replaced.
    """

    merge_key: str | None = None
    strategy: Literal["merge", "replace"] = "merge"


ListStrategyFn = Callable[[tuple[str, ...]], ListStrategy | None]
"""Strategy of the list at a path of field names from the root, list indices left out."""


def strategic_merge_patch(target: Any, patch: Any, *, list_strategy: ListStrategyFn) -> Any:
    """Apply a Kubernetes strategic merge patch to `target`.

    Supports null deletion, `$patch: replace|delete` in maps and list items,
    `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys`. Errors are
    the APIErrors kube-apiserver returns (400 for malformed directives, 422 for lists of lists,
    500 for other merge failures such as `$patch: merge` or a missing merge key).
    """
    if patch is None:
        return copy.deepcopy(target)
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {_go_json_kind(patch)} into Go value of type "
            "map[string]interface {}"
        )
    original = copy.deepcopy(target) if isinstance(target, dict) else {}
    return _StrategicMerge(list_strategy).merge_map(original, copy.deepcopy(patch), ())


def _clean(value: Any) -> Any:
    """A patch value taken as is, as a typed decode would see it: no directives, no nulls."""
    if isinstance(value, dict):
        return {
            k: _clean(v) for k, v in value.items()
            if v is not None and not _is_directive_key(k)
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _is_directive_key(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith(
        (_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)
    )


def _extract_key(key: str, prefix: str, error: str) -> str:
    parts = key.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        raise bad_request(error)
    return parts[1]


def _no_merge_key(item: Any, merge_key: str) -> APIError:
    return _unknown(f"map: {_go_fmt(item)} does not contain declared merge key: {merge_key}")


def _bad_arg_type(expected: str, actual: Any) -> APIError:
    return _unknown(f"expected a {expected}, but received a {_go_type(actual)}")


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _bad_arg_type("[]interface {}", value)
    return value


def _element_kind(*lists: list[Any]) -> str:
    """`sliceElementType`: "map" or "scalar"; lists of lists and mixed lists are errors."""
    first: type | None = None
    for items in lists:
        for item in items:
            if first is None:
                first = type(item)
                if first is list:
                    raise _unprocessable()
            elif type(item) is not first:
                raise _unknown(
                    "list element types are not identical: " + _go_fmt(list(lists))
                )
    if first is None:
        raise _unknown("no elements in any of the given slices")
    return "map" if first is dict else "scalar"


def _merge_value_of(item: Any, merge_key: str) -> Any:
    if not isinstance(item, dict):
        raise _bad_arg_type("map[string]interface {}", item)
    if merge_key not in item:
        raise _no_merge_key(item, merge_key)
    return item[merge_key]


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for idx, item in enumerate(items):
        if not isinstance(item, dict):
            raise _unknown(f"value for key {idx} is not a map.")
        if merge_key in item and _go_eq(item[merge_key], value):
            return idx
    return -1


def _order_index(order: list[Any], item: Any, merge_key: str, kind: str) -> int:
    def val(v: Any) -> Any:
        if kind == "map":
            return v.get(merge_key) if isinstance(v, dict) else None
        return v

    wanted = val(item)
    for idx, candidate in enumerate(order):
        if _go_eq(val(candidate), wanted):
            return idx
    return -1


def _sort_by_order(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    to_delete: list[Any] = []
    if kind == "map":
        for item in [*items, *order]:
            _merge_value_of(item, merge_key)
        to_delete = [i for i in items if i.get(_DIRECTIVE) == "delete"]
        items = [i for i in items if i.get(_DIRECTIVE) != "delete"]
    indexed = [(_order_index(order, item, merge_key, kind), item) for item in items]
    unknown = [item for idx, item in indexed if idx < 0]
    known = sorted(((idx, n, item) for n, (idx, item) in enumerate(indexed) if idx >= 0),
                   key=lambda t: (t[0], t[1]))
    return [*unknown, *(item for _, _, item in known), *to_delete]


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """`normalizeElementOrder`: patch items in patch order, interleaved with server-only items."""
    right = _sort_by_order(patch_items, patch_order, merge_key, kind)
    left = _sort_by_order(server_only, server_order, merge_key, kind)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _order_index(server_order, left[i], merge_key, kind)
            ri = _order_index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str,
               kind: str) -> tuple[list[Any], list[Any]]:
    if kind == "map":
        present = [
            _find_by_key(by, merge_key, _merge_value_of(v, merge_key)) >= 0 for v in merged
        ]
    else:
        keys = {_scalar_key(v) for v in by}
        present = [_scalar_key(v) in keys for v in merged]
    return ([v for v, p in zip(merged, present, strict=True) if p],
            [v for v, p in zip(merged, present, strict=True) if not p])


def _dedupe(items: list[Any]) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        if _scalar_key(item) not in seen:
            seen.add(_scalar_key(item))
            out.append(item)
    return out


class _StrategicMerge:
    """One strategic merge: the field-strategy lookup and the recursive merge over it."""

    def __init__(self, list_strategy: ListStrategyFn) -> None:
        self._strategy = list_strategy

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any],
                  path: tuple[str, ...]) -> dict[str, Any]:
        if _DIRECTIVE in patch:
            return self._map_directive(patch)
        self._retain_keys(original, patch)
        self._set_element_orders(original, patch, path)
        for raw_key in list(patch):
            value = patch[raw_key]
            key, delete_list = raw_key, False
            if raw_key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
                key = _extract_key(raw_key, _DELETE_FROM_PRIMITIVE_LIST, _ERR_PRIMITIVE_LIST)
                delete_list = True
            if value is None:
                original.pop(key, None)
            elif key not in original:
                if not delete_list:
                    original[key] = _clean(value)
            elif type(original[key]) is not type(value):
                original[key] = _clean(value)
            elif isinstance(value, dict):
                original[key] = self._merge_map_field(original[key], value, (*path, key))
            elif isinstance(value, list):
                original[key] = self._merge_list_field(original[key], value, (*path, key),
                                                       delete_list)
            else:
                original[key] = value
        return original

    def _merge_map_field(self, original: dict[str, Any], patch: dict[str, Any],
                         path: tuple[str, ...]) -> dict[str, Any]:
        strategy = self._strategy(path)
        if strategy is not None and strategy.strategy == "replace":
            return dict(_clean(patch))
        return self.merge_map(original, patch, path)

    def _merge_list_field(self, original: list[Any], patch: list[Any], path: tuple[str, ...],
                          delete_list: bool) -> list[Any]:
        strategy = self._strategy(path)
        if delete_list:
            gone = {_scalar_key(v) for v in patch}
            return [v for v in original if _scalar_key(v) not in gone]
        if strategy is None or strategy.strategy != "merge":
            return list(_clean(patch))
        return self._merge_list(original, patch, strategy.merge_key or "", path)

    def _map_directive(self, patch: dict[str, Any]) -> dict[str, Any]:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            return dict(_clean({k: v for k, v in patch.items() if k != _DIRECTIVE}))
        if directive == "delete":
            return {}
        raise _unknown(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(patch)}")

    def _merge_list(self, original: list[Any], patch: list[Any], merge_key: str,
                    path: tuple[str, ...]) -> list[Any]:
        if not original and not patch:
            return original
        kind = _element_kind(original, patch)
        if kind != "map":
            merged = _dedupe([*original, *patch])
        else:
            if not merge_key:
                raise _unknown("cannot merge lists without merge key for type struct")
            original, patch = self._special_elements(original, patch, merge_key)
            merged = self._merge_items(original, patch, merge_key, path)
        patch_items, server_only = _partition(merged, patch, merge_key, kind)
        return _normalize_order(patch_items, server_only, patch, original, merge_key, kind)

    @staticmethod
    def _special_elements(original: list[Any], patch: list[Any],
                          merge_key: str) -> tuple[list[Any], list[Any]]:
        plain: list[Any] = []
        replace = False
        for item in patch:
            if _DIRECTIVE not in item:
                plain.append(item)
                continue
            directive = item[_DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise _no_merge_key(item, merge_key)
                original = [o for o in original
                            if not (isinstance(o, dict) and merge_key in o
                                    and _go_eq(o[merge_key], item[merge_key]))]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise _unknown("merging lists cannot yet be specified in the patch")
            else:
                raise _unknown(f"unknown patch type: {_go_fmt(directive)} in map: "
                               f"{_go_fmt(item)}")
        if replace:
            return [_clean(p) for p in plain], []
        return original, plain

    def _merge_items(self, original: list[Any], patch: list[Any], merge_key: str,
                     path: tuple[str, ...]) -> list[Any]:
        merged = list(original)
        for item in patch:
            idx = _find_by_key(merged, merge_key, _merge_value_of(item, merge_key))
            if idx >= 0:
                merged[idx] = self.merge_map(merged[idx], item, path)
            else:
                merged.append(_clean(item))
        return merged

    @staticmethod
    def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
        if _RETAIN_KEYS not in patch:
            return
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise bad_request(_ERR_RETAIN_KEYS)
        keep = {_scalar_key(k) for k in retain}
        for key, value in patch.items():
            if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
                continue
            if _scalar_key(key) not in keep:
                raise bad_request(_ERR_RETAIN_KEYS)
        for key in [k for k in original if _scalar_key(k) not in keep]:
            del original[key]

    def _set_element_orders(self, original: dict[str, Any], patch: dict[str, Any],
                            path: tuple[str, ...]) -> None:
        for raw_key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
            order = patch.pop(raw_key)
            if not isinstance(order, list):
                raise _bad_arg_type("[]interface {}", order)
            key = _extract_key(raw_key, _SET_ELEMENT_ORDER, _ERR_SET_ELEMENT_ORDER)
            in_original, in_patch = key in original, key in patch
            original_list = _as_list(original.get(key, []))
            patch_list = _as_list(patch.get(key, []))
            if not in_original and not in_patch:
                continue
            strategy = self._strategy((*path, key))
            merge_key = (strategy.merge_key or "") if strategy else ""
            if in_original and in_patch:
                merged = self._merge_list_field(original_list, patch_list, (*path, key), False)
            else:
                merged = list(original_list if in_original else _clean(patch_list))
            kind = _element_kind(original_list, patch_list)
            patch_items, server_only = _partition(merged, order, merge_key, kind)
            original[key] = _normalize_order(patch_items, server_only, order, original_list,
                                             merge_key, kind)
            patch.pop(key, None)


# ---------------------------------------------------------------------------------------------
# Built-in patch strategies (k8s.io/api core/v1 patchStrategy / patchMergeKey tags)
# ---------------------------------------------------------------------------------------------


def _by(key: str) -> ListStrategy:
    return ListStrategy(merge_key=key)


_SET = ListStrategy()

_OBJECT_META: dict[tuple[str, ...], ListStrategy] = {
    ("metadata", "finalizers"): _SET,
    ("metadata", "ownerReferences"): _by("uid"),
}

_CONTAINER_LISTS: dict[tuple[str, ...], ListStrategy] = {
    ("env",): _by("name"),
    ("ports",): _by("containerPort"),
    ("volumeMounts",): _by("mountPath"),
    ("volumeDevices",): _by("devicePath"),
}

_POD: dict[tuple[str, ...], ListStrategy] = {
    ("spec", "volumes"): _by("name"),
    ("spec", "imagePullSecrets"): _by("name"),
    ("spec", "hostAliases"): _by("ip"),
    ("spec", "schedulingGates"): _by("name"),
    ("spec", "resourceClaims"): _by("name"),
    ("status", "conditions"): _by("type"),
    ("status", "podIPs"): _by("ip"),
    ("status", "hostIPs"): _by("ip"),
    **{
        entry: strategy
        for containers in ("containers", "initContainers", "ephemeralContainers")
        for entry, strategy in [
            (("spec", containers), _by("name")),
            *((("spec", containers, *sub), s) for sub, s in _CONTAINER_LISTS.items()),
        ]
    },
}

_NODE: dict[tuple[str, ...], ListStrategy] = {
    ("spec", "podCIDRs"): _SET,
    ("status", "conditions"): _by("type"),
    ("status", "addresses"): _by("type"),
}

_SERVICE_ACCOUNT: dict[tuple[str, ...], ListStrategy] = {
    ("secrets",): _by("name"),
}

_SERVICE: dict[tuple[str, ...], ListStrategy] = {
    ("spec", "ports"): _by("port"),
    ("status", "conditions"): _by("type"),
}

# Workloads carry a pod template: its lists merge as a Pod's spec does.
_POD_TEMPLATE: dict[tuple[str, ...], ListStrategy] = {
    ("spec", "template", *path): strategy
    for path, strategy in _POD.items() if path[0] == "spec"
}
_WORKLOAD: dict[tuple[str, ...], ListStrategy] = {
    **_POD_TEMPLATE,
    ("status", "conditions"): _by("type"),
}
_WITH_CONDITIONS: dict[tuple[str, ...], ListStrategy] = {("status", "conditions"): _by("type")}

_BUILTIN: dict[tuple[str, str], dict[tuple[str, ...], ListStrategy]] = {
    ("", "Pod"): _POD,
    ("", "Node"): _NODE,
    ("", "ServiceAccount"): _SERVICE_ACCOUNT,
    ("", "Service"): _SERVICE,
    ("apps", "Deployment"): _WORKLOAD,
    ("apps", "DaemonSet"): _WORKLOAD,
    ("policy", "PodDisruptionBudget"): _WITH_CONDITIONS,
}


def builtin_list_strategies(group: str, kind: str) -> ListStrategyFn:
    """The strategic-merge list strategies of a built-in kind the emulator serves.

    ObjectMeta's (finalizers as a set, ownerReferences by uid) apply to every kind; Pod, Node,
    ServiceAccount, Service and the workloads (their pod template) add their own lists. Lists
    without tags (Pod tolerations, Node taints) are replaced, as upstream does.
    """
    table = {**_OBJECT_META, **_BUILTIN.get((group, kind), {})}
    return table.get
