"""Server-side apply and `metadata.managedFields` bookkeeping, after structured-merge-diff.

Field paths are tuples of FieldsV1 path elements: `f:<name>` (object field), `k:<json>` (list
item by its key fields), `v:<json>` (set member), `i:<n>` (list index). A field set is a
frozenset of such paths; `fields_to_v1`/`fields_from_v1` convert it to and from the FieldsV1 trie
stored in managedFields. Semantics follow sigs.k8s.io/structured-merge-diff (merge, compare,
prune) and k8s.io/apimachinery/pkg/util/managedfields (manager identity, stripping, ordering,
conflict errors). Inputs are never mutated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from kubevirt_usb.apiserver.errors import APIError, Cause, bad_request
from kubevirt_usb.apiserver.patching import json_equal

PathElement: TypeAlias = str
FieldPath: TypeAlias = tuple[PathElement, ...]
FieldSet: TypeAlias = frozenset[FieldPath]
Names: TypeAlias = tuple[str, ...]

FIELD_MANAGER_MAX_LENGTH = 128
BEFORE_FIRST_APPLY = "before-first-apply"


@dataclass(frozen=True)
class ListType:
    """`x-kubernetes-list-type` of a list: atomic (replaced whole), set (of scalars) or map
    (items identified by `keys`, `x-kubernetes-list-map-keys`)."""

    kind: Literal["atomic", "set", "map"] = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults: tuple[tuple[str, Any], ...] = ()
    """Schema defaults of key fields an item may leave out (Pod ports: protocol TCP)."""


MapType: TypeAlias = Literal["granular", "atomic", "map"]
"""How an object is owned: `granular` (a struct: each declared field separately, the default),
`map` (free-form keys such as labels or `additionalProperties`: each key is an owned item) or
`atomic` (`x-kubernetes-map-type: atomic`: the whole object at once)."""

ListTypeFn: TypeAlias = Callable[[Names], ListType]
MapTypeFn: TypeAlias = Callable[[Names], MapType]

_ATOMIC = ListType()


def atomic_lists(path: Names) -> ListType:
    """Default list typing: every list is atomic (what a schema without list types means)."""
    return _ATOMIC


def default_map_type(path: Names) -> MapType:
    """Default map typing: objects are structs, except ObjectMeta's labels and annotations."""
    if path in (("metadata", "labels"), ("metadata", "annotations")):
        return "map"
    return "granular"


_MISSING: Any = object()

# Never owned by anyone (managedfields internal/stripmeta.go).
_STRIPPED: FieldSet = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", "f:" + name) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")),
})


class _SchemaError(Exception):
    """An applied configuration that does not fit its list types."""


class InvalidFields(ValueError):
    """A FieldsV1 trie or managedFields list that cannot be decoded."""


# ---------------------------------------------------------------------------------------------
# Path elements
# ---------------------------------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _go_value(value: Any) -> str:
    """`value.ToString` of structured-merge-diff."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_value(v)}" for k, v in value.items())
    return str(value)


def element_to_string(element: PathElement) -> str:
    """How structured-merge-diff prints one path element: `.name`, `[k="v"]`, `[=v]`, `[0]`."""
    kind, body = element[:2], element[2:]
    if kind == "f:":
        return "." + body
    if kind == "k:":
        keys = json.loads(body)
        return "[" + ",".join(f"{k}={_go_value(keys[k])}" for k in sorted(keys)) + "]"
    if kind == "v:":
        return "[=" + _go_value(json.loads(body)) + "]"
    return "[" + body + "]"


def path_to_string(path: FieldPath) -> str:
    """A field path as conflicts print it, e.g. `.spec.containers[name="app"].image`."""
    return "".join(element_to_string(e) for e in path)


def _names(path: FieldPath) -> Names:
    return tuple(e[2:] for e in path if e.startswith("f:"))


def _sort_value(value: Any) -> tuple[Any, ...]:
    """`value.Compare` order: numbers < strings < bools < lists < maps < null."""
    if value is None:
        return (5,)
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_sort_value(v) for v in value))
    return (4, tuple((k, _sort_value(value[k])) for k in sorted(value)))


def _element_sort_key(element: PathElement) -> tuple[Any, ...]:
    kind, body = element[:2], element[2:]
    if kind == "f:":
        return (0, body)
    if kind == "k:":
        keys = json.loads(body)
        return (1, tuple((k, _sort_value(keys[k])) for k in sorted(keys)))
    if kind == "v:":
        return (2, _sort_value(json.loads(body)))
    return (3, int(body))


# ---------------------------------------------------------------------------------------------
# FieldsV1
# ---------------------------------------------------------------------------------------------


def _trie(paths: Iterable[FieldPath]) -> dict[PathElement, Any]:
    """Paths as nested dicts; the key "." marks a path that is itself a member."""
    root: dict[PathElement, Any] = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return root


def _emit(node: dict[PathElement, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    children = sorted((k for k in node if k != "."), key=_element_sort_key)
    for element in children:
        child = node[element]
        grandchildren = [k for k in child if k != "."]
        if not grandchildren:
            out[element] = {}
        else:
            body = _emit(child)
            out[element] = {".": {}, **body} if "." in child else body
    return out


def fields_to_v1(fields: Iterable[FieldPath]) -> dict[str, Any]:
    """A field set as the FieldsV1 trie a managedFields entry stores."""
    return _emit(_trie(fields))


def _canonical_element(element: str) -> PathElement:
    kind, body = element[:2], element[2:]
    if kind == "f:":
        return element
    if kind in ("k:", "v:"):
        try:
            value = json.loads(body)
        except json.JSONDecodeError as err:
            raise InvalidFields(f"invalid path element {element!r}") from err
        if kind == "k:" and not isinstance(value, dict):
            raise InvalidFields(f"invalid key element {element!r}")
        return kind + _canon(value)
    if kind == "i:" and body.lstrip("-").isdigit():
        return "i:" + str(int(body))
    raise InvalidFields(f"unknown path element {element!r}")


def fields_from_v1(fields_v1: Any) -> FieldSet:
    """The field set a FieldsV1 trie describes; InvalidFields if it is not a valid trie."""
    out: set[FieldPath] = set()

    def walk(node: Any, prefix: FieldPath) -> None:
        if not isinstance(node, dict):
            raise InvalidFields("FieldsV1 nodes must be objects")
        if prefix and (not node or "." in node):
            out.add(prefix)
        for key, child in node.items():
            if key == ".":
                continue
            walk(child, (*prefix, _canonical_element(key)))

    walk(fields_v1, ())
    return frozenset(out)


# ---------------------------------------------------------------------------------------------
# Typed walking of plain objects
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Schema:
    list_type: ListTypeFn
    map_type: MapTypeFn

    def granular(self, value: Any, names: Names) -> bool:
        if isinstance(value, dict):
            return self.map_type(names) != "atomic"
        if isinstance(value, list):
            return self.list_type(names).kind != "atomic"
        return False

    def items(self, value: list[Any], names: Names, path: FieldPath, *, strict: bool,
              dedupe: bool = True) -> list[tuple[PathElement, Any]]:
        """The items of a set or map list with their path elements, first of duplicates kept
        (all of them when not `dedupe`)."""
        list_type = self.list_type(names)
        seen: set[PathElement] = set()
        out = []
        for index, item in enumerate(value):
            element = _item_element(list_type, index, item, path, strict=strict)
            if element in seen and dedupe:
                if strict:
                    raise _SchemaError(f"{path_to_string(path)}: duplicate entries for key "
                                       f"{element_to_string(element)}")
                continue
            seen.add(element)
            out.append((element, item))
        return out


def _item_element(list_type: ListType, index: int, item: Any, path: FieldPath,
                  *, strict: bool) -> PathElement:
    if list_type.kind == "set" or not list_type.keys:
        return "v:" + _canon(item)
    where = f"{path_to_string(path)}: element {index}: "
    if not isinstance(item, dict):
        if strict:
            raise _SchemaError(where + "associative list with keys may not have non-map "
                               "elements")
        return f"i:{index}"
    key = {**dict(list_type.key_defaults), **item}
    missing = [k for k in list_type.keys if k not in key]
    if missing and strict:
        raise _SchemaError(where + "associative list with keys has an element that omits key "
                           f'field "{missing[0]}" (and doesn\'t have default value)')
    key = {k: key[k] for k in list_type.keys if k in key}
    return "k:" + _canon(key) if key else f"i:{index}"


def field_set(obj: Any, *, list_type: ListTypeFn = atomic_lists,
              map_type: MapTypeFn = default_map_type) -> FieldSet:
    """The field paths an object (e.g. an apply configuration) sets: its leaves, list items,
    map-typed keys and atomic lists/maps (structured-merge-diff `ToFieldSet`)."""
    return _field_set(obj, _Schema(list_type, map_type), strict=False)


def _field_set(obj: Any, schema: _Schema, *, strict: bool) -> FieldSet:
    out: set[FieldPath] = set()

    def walk(value: Any, path: FieldPath, names: Names) -> None:
        if isinstance(value, dict) and (not path or schema.granular(value, names)):
            is_map = bool(path) and schema.map_type(names) == "map"
            for key, child in value.items():
                child_path = (*path, "f:" + key)
                walk(child, child_path, (*names, key))
                if is_map:
                    out.add(child_path)
        elif isinstance(value, list) and schema.granular(value, names):
            for element, item in schema.items(value, names, path, strict=strict):
                walk(item, (*path, element), names)
                out.add((*path, element))
        elif path:
            out.add(path)

    walk(obj, (), ())
    return frozenset(out)


def _merge(lhs: Any, rhs: Any, schema: _Schema, names: Names, path: FieldPath) -> Any:
    """Merge an applied configuration `rhs` into `lhs` (structured-merge-diff `Merge`)."""
    if rhs is _MISSING:
        return lhs
    if lhs is _MISSING:
        return copy.deepcopy(rhs)
    if rhs is None and schema.granular(lhs, names):
        return lhs
    if isinstance(lhs, dict) and isinstance(rhs, dict) and (
            not path or schema.granular(lhs, names)):
        out = {k: _merge(v, rhs.get(k, _MISSING), schema, (*names, k), (*path, "f:" + k))
               for k, v in lhs.items()}
        out.update({k: copy.deepcopy(v) for k, v in rhs.items() if k not in lhs})
        return out
    if (isinstance(lhs, list) and isinstance(rhs, list) and (lhs or rhs)
            and schema.granular(lhs, names)):
        return _merge_list(lhs, rhs, schema, names, path)
    return copy.deepcopy(rhs)


def _merge_list(lhs: list[Any], rhs: list[Any], schema: _Schema, names: Names,
                path: FieldPath) -> list[Any]:
    """The item order structured-merge-diff gives a merged set or map list."""
    left = schema.items(lhs, names, path, strict=False)
    right = schema.items(rhs, names, path, strict=True)
    lmap, rmap = dict(left), dict(right)
    shared = iter([e for e, _ in right if e in lmap])
    next_shared = next(shared, None)
    done: set[PathElement] = set()
    out: list[Any] = []

    def take(element: PathElement) -> None:
        out.append(_merge(lmap.get(element, _MISSING), rmap.get(element, _MISSING), schema,
                          names, (*path, element)))

    li = ri = 0
    while li < len(left) or ri < len(right):
        if li < len(left) and ri < len(right):
            element = left[li][0]
            if element == right[ri][0]:
                done.add(element)
                take(element)
                li, ri = li + 1, ri + 1
                next_shared = next(shared, None)
                continue
            if element in rmap and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(left):
            element = left[li][0]
            if element not in rmap:
                take(element)
                li += 1
                continue
            if element in done:
                li += 1
                continue
        if ri < len(right):
            element = right[ri][0]
            done.add(element)
            take(element)
            ri += 1
            if next_shared == element:
                next_shared = next(shared, None)
    return out


@dataclass
class _Comparison:
    added: set[FieldPath] = field(default_factory=set)
    removed: set[FieldPath] = field(default_factory=set)
    modified: set[FieldPath] = field(default_factory=set)

    def without(self, ignored: Collection[Names]) -> _Comparison:
        def keep(p: FieldPath) -> bool:
            return not _is_ignored(p, ignored)

        return _Comparison({p for p in self.added if keep(p)},
                           {p for p in self.removed if keep(p)},
                           {p for p in self.modified if keep(p)})


def _is_ignored(path: FieldPath, ignored: Collection[Names]) -> bool:
    names = _names(path)
    return any(names[:len(prefix)] == prefix for prefix in ignored if prefix)


def _compare(lhs: Any, rhs: Any, schema: _Schema) -> _Comparison:
    """Which field paths `rhs` adds, removes or modifies relative to `lhs` (`Compare`)."""
    result = _Comparison()

    def leaf(left: Any, right: Any, path: FieldPath) -> None:
        if left is _MISSING:
            result.added.add(path)
        elif right is _MISSING:
            result.removed.add(path)
        elif not json_equal(left, right):
            result.modified.add(path)

    def children(left: Any, right: Any, names: Names,
                 path: FieldPath) -> Iterator[tuple[Any, Any, Names, FieldPath]]:
        if isinstance(left, dict) or isinstance(right, dict):
            ld = left if isinstance(left, dict) else {}
            rd = right if isinstance(right, dict) else {}
            for key in [*ld, *(k for k in rd if k not in ld)]:
                yield (ld.get(key, _MISSING), rd.get(key, _MISSING), (*names, key),
                       (*path, "f:" + key))
            return
        lmap = dict(schema.items(left if isinstance(left, list) else [], names, path,
                                 strict=False))
        rmap = dict(schema.items(right if isinstance(right, list) else [], names, path,
                                 strict=False))
        for element in [*lmap, *(e for e in rmap if e not in lmap)]:
            yield lmap.get(element, _MISSING), rmap.get(element, _MISSING), names, (
                *path, element)

    def walk(left: Any, right: Any, names: Names, path: FieldPath) -> None:
        present = [v for v in (left, right) if v is not _MISSING]
        containers = {type(v) for v in present if v is not None}
        granular = bool(present) and all(
            v is None or (isinstance(v, dict | list)
                          and (not path or schema.granular(v, names))) for v in present)
        if not granular or len(containers) != 1:
            leaf(left, right, path)
            return
        if all(not v for v in present):
            leaf(left, right, path)
            return
        for child in children(left, right, names, path):
            walk(*child)
        if path and left is _MISSING:
            result.added.add(path)
        elif path and right is _MISSING:
            result.removed.add(path)

    walk(lhs, rhs, (), ())
    return result


def _remove_items(value: Any, paths: FieldSet, schema: _Schema) -> Any:
    """`value` without the subtrees at `paths` (structured-merge-diff `RemoveItems`)."""
    if not paths:
        return value
    prefixes = {p[:i] for p in paths for i in range(1, len(p))}

    def walk(node: Any, names: Names, path: FieldPath) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, child in node.items():
                child_path = (*path, "f:" + key)
                if child_path in paths:
                    continue
                out[key] = walk(child, (*names, key), child_path) if (
                    child_path in prefixes) else child
            return out
        if isinstance(node, list) and schema.granular(node, names):
            kept = []
            for element, item in schema.items(node, names, path, strict=False, dedupe=False):
                item_path = (*path, element)
                if item_path not in paths:
                    kept.append(walk(item, names, item_path) if item_path in prefixes else item)
            return kept
        return node

    return walk(value, (), ())


def _with_named_parents(fields: Iterable[FieldPath], schema: _Schema) -> set[FieldPath]:
    """`EnsureNamedFieldsAreMembers`: also count every struct field on the way to a path."""
    out = set(fields)
    for path in list(out):
        for i in range(1, len(path)):
            prefix = path[:i]
            if prefix[-1].startswith("f:") and (
                    i == 1 or schema.map_type(_names(prefix[:-1])) == "granular"):
                out.add(prefix)
    return out


def _has_prefix_in(path: FieldPath, paths: set[FieldPath]) -> bool:
    return any(path[:i] in paths for i in range(1, len(path) + 1))


def _prune(merged: dict[str, Any], last: FieldSet, owned: Iterable[FieldSet],
           schema: _Schema) -> dict[str, Any]:
    """Remove what the applier set last time, no longer sets, and nobody else owns."""
    if not last:
        return merged
    present = _with_named_parents(_field_set(merged, schema, strict=False), schema)
    last_e = _with_named_parents(last, schema)
    owned_e = _with_named_parents(frozenset().union(*owned), schema)
    unowned = {p for p in present if p not in owned_e and _has_prefix_in(p, last_e)}
    gone = frozenset(p for p in present & last_e if _has_prefix_in(p, unowned))
    result: dict[str, Any] = _remove_items(merged, gone, schema)
    return result


# ---------------------------------------------------------------------------------------------
# managedFields
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Manager:
    """Who owns a field set: upstream's manager identifier (time and fields left out)."""

    name: str
    operation: Literal["Apply", "Update"]
    api_version: str
    subresource: str = ""

    def identifier(self) -> str:
        entry: dict[str, str] = {"manager": self.name, "operation": self.operation}
        if self.operation == "Update" and self.api_version:
            entry["apiVersion"] = self.api_version
        if self.subresource:
            entry["subresource"] = self.subresource
        return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)

    def describe(self) -> str:
        """`printManager`: `"name"`, `"name" with subresource "s"`, `... using v1`."""
        text = json.dumps(self.name, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


@dataclass
class _Owned:
    fields: FieldSet
    api_version: str
    time: str | None


_Managed: TypeAlias = dict[_Manager, _Owned]


def _decode(entries: Any) -> _Managed:
    """managedFields as owned field sets; InvalidFields when an entry is malformed."""
    if not isinstance(entries, list):
        raise InvalidFields("managedFields must be a list")
    managed: _Managed = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidFields("managedFields entries must be objects")
        operation = entry.get("operation")
        api_version = entry.get("apiVersion")
        if operation not in ("Apply", "Update"):
            raise InvalidFields("operation must be `Apply` or `Update`")
        if not isinstance(api_version, str) or not api_version:
            raise InvalidFields("apiVersion must not be empty")
        if entry.get("fieldsType") != "FieldsV1":
            raise InvalidFields("invalid fieldsType")
        manager = _Manager(str(entry.get("manager", "")), operation,
                           "" if operation == "Apply" else api_version,
                           str(entry.get("subresource", "")))
        time = entry.get("time")
        managed[manager] = _Owned(fields_from_v1(entry.get("fieldsV1") or {}), api_version,
                                  time if isinstance(time, str) else None)
    return managed


def _decode_or_empty(entries: Any) -> _Managed:
    try:
        return _decode(entries)
    except ValueError:
        return {}


def _encode(managed: _Managed) -> list[dict[str, Any]]:
    rows = []
    for manager, owned in managed.items():
        entry: dict[str, Any] = {"manager": manager.name, "operation": manager.operation,
                                 "apiVersion": owned.api_version}
        if owned.time is not None:
            entry["time"] = owned.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = fields_to_v1(owned.fields)
        if manager.subresource:
            entry["subresource"] = manager.subresource
        rows.append(entry)
    rows.sort(key=lambda e: (e["operation"], e.get("time") or "", e["manager"],
                             e["apiVersion"], e.get("subresource", "")))
    return rows


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    out = copy.deepcopy(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return out


def _with_managed_fields(obj: dict[str, Any], managed: _Managed) -> dict[str, Any]:
    live = {m: o for m, o in managed.items() if o.fields}
    if not live and not isinstance(obj.get("metadata"), dict):
        return obj
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    if live:
        metadata["managedFields"] = _encode(live)
    return {**obj, "metadata": metadata}


def _managed_fields_of(obj: dict[str, Any] | None) -> Any:
    metadata = (obj or {}).get("metadata")
    return metadata.get("managedFields") if isinstance(metadata, dict) else None


def _drop_ignored(value: Any, ignored: Collection[Names]) -> Any:
    """An applied configuration without the fields the endpoint resets (e.g. status)."""
    if not ignored or not isinstance(value, dict):
        return value
    drop = {p[0] for p in ignored if len(p) == 1}
    deeper: dict[str, list[Names]] = {}
    for p in ignored:
        if len(p) > 1:
            deeper.setdefault(p[0], []).append(p[1:])
    return {k: _drop_ignored(v, deeper.get(k, ())) for k, v in value.items() if k not in drop}


# ---------------------------------------------------------------------------------------------
# Update bookkeeping and apply
# ---------------------------------------------------------------------------------------------


def _track_changes(managed: _Managed, comparison: _Comparison, actor: _Manager | None,
                   *, force: bool) -> dict[_Manager, FieldSet]:
    """`Updater.update`: take changed fields away from managers other than `actor`;
    return conflicts."""
    changed = comparison.modified | comparison.added
    conflicts = {}
    for manager, owned in managed.items():
        if manager == actor:
            continue
        clash = owned.fields & changed
        if clash:
            conflicts[manager] = frozenset(clash)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for manager, owned in managed.items():
        if manager != actor:
            owned.fields = owned.fields - changed - comparison.removed
    return conflicts


def _ordered_paths(paths: Iterable[FieldPath]) -> list[FieldPath]:
    """Paths in `fieldpath.Set.Iterate` order: a level's members before its children's."""
    trie = _trie(paths)
    out: list[FieldPath] = []

    def walk(node: dict[PathElement, Any], prefix: FieldPath) -> None:
        elements = sorted((k for k in node if k != "."), key=_element_sort_key)
        out.extend((*prefix, e) for e in elements if "." in node[e])
        for e in elements:
            walk(node[e], (*prefix, e))

    walk(trie, ())
    return out


def _conflict_error(conflicts: dict[_Manager, FieldSet]) -> APIError:
    ordered = sorted(conflicts.items(), key=lambda item: item[0].identifier())
    listed = [(m, p) for m, paths in ordered for p in _ordered_paths(paths)]
    causes = [Cause(type="FieldManagerConflict", message=f"conflict with {m.describe()}",
                    field=path_to_string(p)) for m, p in listed]
    if len(listed) == 1:
        manager, path = listed[0]
        message = (f"Apply failed with 1 conflict: conflict with {manager.describe()}: "
                   f"{path_to_string(path)}")
    else:
        lines = []
        for manager, paths in ordered:
            lines.append(f"conflicts with {manager.describe()}:")
            lines.extend(f"- {path_to_string(p)}" for p in _ordered_paths(paths))
        message = f"Apply failed with {len(listed)} conflicts: " + "\n".join(lines)
    return APIError(code=409, reason="Conflict", message=message, causes=causes)


def _record(managed: _Managed, old: dict[str, Any], new: dict[str, Any], actor: _Manager,
            *, now: str, api_version: str, schema: _Schema,
            ignored: Collection[Names]) -> None:
    """Update bookkeeping in place: `actor` owns what changed from `old` to `new`."""
    comparison = _compare(old, new, schema).without(ignored)
    _track_changes(managed, comparison, None, force=True)
    taken = frozenset(comparison.modified | comparison.added) - _STRIPPED
    if taken:
        previous = managed.get(actor)
        fields = taken | (previous.fields if previous else frozenset())
        managed[actor] = _Owned(fields, api_version, now)


def _manager_name(manager: str) -> str:
    return manager or "unknown"


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, now: str,
                  api_version: str, list_type: ListTypeFn = atomic_lists,
                  map_type: MapTypeFn = default_map_type,
                  ignored_fields: Collection[Names] = (), subresource: str = "") -> dict[str, Any]:
    """`new` with managedFields updated for an ordinary create/update/patch by `manager`.

    The fields that changed from `old` (None on create: every field set) become owned by
    `manager` with operation "Update" at `api_version` and leave every other manager's set.
    managedFields sent in `new` replace the stored ones when they decode (never on a
    subresource); `[]` or `[{}]` clears them, after which updates are not tracked, as upstream.
    `ignored_fields` are field-name paths the endpoint resets (e.g. `("status",)`).
    """
    schema = _Schema(list_type, map_type)
    sent = _managed_fields_of(new)
    if subresource:
        managed = _decode_or_empty(_managed_fields_of(old))
    elif isinstance(sent, list) and (sent == [] or sent == [{}]):
        managed = {}
    else:
        managed = _decode_or_empty(sent) or _decode_or_empty(_managed_fields_of(old))
    new_obj = _without_managed_fields(new)
    if not managed and old is not None and ((old.get("metadata") or {}).get("uid")):
        return new_obj
    actor = _Manager(_manager_name(manager), "Update", api_version, subresource)
    _record(managed, _without_managed_fields(old), new_obj, actor, now=now,
            api_version=api_version, schema=schema, ignored=ignored_fields)
    return _with_managed_fields(new_obj, managed)


def apply_config(live: dict[str, Any] | None, config: dict[str, Any], *, manager: str,
                 force: bool, now: str, api_version: str, list_type: ListTypeFn = atomic_lists,
                 map_type: MapTypeFn = default_map_type, ignored_fields: Collection[Names] = (),
                 subresource: str = "") -> dict[str, Any]:
    """Server-side apply `config` by `manager` onto `live` (None: the object is created).

    Returns the new object with managedFields updated: the configuration merged in, fields the
    manager applied before but no longer applies removed unless someone else owns them, the
    manager's "Apply" entry set to exactly the applied fields (stamped `now`). Changing a field
    another manager owns raises the upstream 409 Conflict unless `force`, which takes the field
    over. An apply that changes nothing but entry times returns `live` unchanged, as
    kube-apiserver then skips the write.
    """
    schema = _Schema(list_type, map_type)
    _check_config(config, api_version)
    live_obj = _without_managed_fields(live)
    managed = _decode_or_empty(_managed_fields_of(live))
    if live is not None and not managed:
        _record(managed, {}, live_obj, _Manager(BEFORE_FIRST_APPLY, "Update", api_version,
                                                 subresource),
                now=now, api_version=api_version, schema=schema, ignored=ignored_fields)
    applied = _drop_ignored(_without_managed_fields(config), ignored_fields)
    try:
        applied_fields = _field_set(applied, schema, strict=True)
        merged = _merge(live_obj, applied, schema, (), ())
    except _SchemaError as err:
        raise _typed_error(config, api_version, str(err)) from None
    actor = _Manager(_manager_name(manager), "Apply", "", subresource)
    previous = managed.get(actor)
    managed[actor] = _Owned(applied_fields, api_version, previous.time if previous else None)
    merged = _prune(merged, previous.fields if previous else frozenset(),
                    [o.fields for o in managed.values()], schema)
    _track_changes(managed, _compare(live_obj, merged, schema).without(ignored_fields), actor,
                   force=force)
    managed[actor].fields = managed[actor].fields - _STRIPPED
    managed[actor].time = now
    result = _with_managed_fields(merged, managed)
    if live is not None and json_equal(_without_times(result), _without_times(live)):
        return copy.deepcopy(live)
    return result


def _without_times(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kube-apiserver compares it to spot a no-op write: entry times left out."""
    entries = _managed_fields_of(obj)
    if not isinstance(entries, list):
        return obj
    metadata = {**obj["metadata"], "managedFields": [
        {k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
        for e in entries]}
    return {**obj, "metadata": metadata}


def _check_config(config: dict[str, Any], api_version: str) -> None:
    if config.get("apiVersion") != api_version:
        raise bad_request("Incorrect version specified in apply patch. Specified patch version: "
                          f"{config.get('apiVersion', '')}, expected: {api_version}")
    if _managed_fields_of(config) is not None:
        raise bad_request("metadata.managedFields must be nil")


def _typed_error(config: dict[str, Any], api_version: str, detail: str) -> APIError:
    group_version = api_version if "/" in api_version else "/" + api_version
    gvk = f"{group_version}, Kind={config.get('kind', '')}"
    return APIError(code=500, reason="",
                    message=f"failed to create typed patch object ({gvk}): {detail}")


def manager_from_user_agent(user_agent: str) -> str:
    """The field manager a request without `fieldManager` gets: its User-Agent up to the first
    "/", unprintable characters dropped, cut to 128 bytes ("" stays "": apply_config and
    record_update then record "unknown", as upstream)."""
    prefix = user_agent.split("/", 1)[0]
    out = ""
    for char in prefix:
        if not char.isprintable():
            continue
        if len((out + char).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        out += char
    return out


# ---------------------------------------------------------------------------------------------
# Built-in list types (k8s.io/api +listType / +listMapKey markers)
# ---------------------------------------------------------------------------------------------


def _keyed(*keys: str, **defaults: Any) -> ListType:
    return ListType(kind="map", keys=keys, key_defaults=tuple(defaults.items()))


_META_LISTS: dict[Names, ListType] = {
    ("metadata", "finalizers"): ListType(kind="set"),
    ("metadata", "ownerReferences"): _keyed("uid"),
}

_CONTAINER_LISTS: dict[Names, ListType] = {
    ("env",): _keyed("name"),
    ("ports",): _keyed("containerPort", "protocol", protocol="TCP"),
    ("volumeMounts",): _keyed("mountPath"),
    ("volumeDevices",): _keyed("devicePath"),
}

_BUILTIN_LISTS: dict[tuple[str, str], dict[Names, ListType]] = {
    ("", "Pod"): {
        ("spec", "volumes"): _keyed("name"),
        ("spec", "imagePullSecrets"): _keyed("name"),
        ("status", "conditions"): _keyed("type"),
        **{
            entry: list_type
            for containers in ("containers", "initContainers", "ephemeralContainers")
            for entry, list_type in [
                (("spec", containers), _keyed("name")),
                *((("spec", containers, *sub), t) for sub, t in _CONTAINER_LISTS.items()),
            ]
        },
    },
    ("", "Node"): {
        ("spec", "podCIDRs"): ListType(kind="set"),
        ("status", "conditions"): _keyed("type"),
    },
    ("", "ServiceAccount"): {("secrets",): _keyed("name")},
    ("", "Service"): {
        ("spec", "ports"): _keyed("port", "protocol", protocol="TCP"),
        ("status", "conditions"): _keyed("type"),
    },
}
_POD_SPEC_LISTS = {path: t for path, t in _BUILTIN_LISTS[("", "Pod")].items() if path[0] == "spec"}
for _workload in ("Deployment", "DaemonSet"):
    _BUILTIN_LISTS[("apps", _workload)] = {
        **{("spec", "template", *path): t for path, t in _POD_SPEC_LISTS.items()},
        ("status", "conditions"): _keyed("type"),
    }


def builtin_list_types(group: str, kind: str) -> ListTypeFn:
    """Server-side-apply list types of a built-in kind the emulator serves (ObjectMeta's for
    every kind; Pod, Node and ServiceAccount lists as their OpenAPI markers say)."""
    table = {**_META_LISTS, **_BUILTIN_LISTS.get((group, kind), {})}

    def lookup(path: Names) -> ListType:
        return table.get(path, _ATOMIC)

    return lookup
