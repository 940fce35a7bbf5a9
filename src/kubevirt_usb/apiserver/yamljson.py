"""YAML request bodies read as kube-apiserver reads them: converted to JSON (sigs.k8s.io/yaml).

PyYAML alone yields values JSON has not (bytes, sets, dates, non-string keys), recurses on deep
or self-referencing documents and expands aliases without bound; stored, such values break every
later read of the object. Here a body either becomes plain JSON data or is refused with a
`YAMLBodyError` (the caller's 400): scalar keys become strings and timestamps stay the text they
were, as the Go converter does; nesting deeper than Go's 10,000 levels, an alias that contains
itself, and excessive aliasing are errors.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

MAX_DEPTH = 10_000
"""go-yaml's limit on nesting."""
_ALIAS_BUDGET = 1_000_000
"""Values a document may expand to beyond its own size (go-yaml: "excessive aliasing")."""


class YAMLBodyError(ValueError):
    """A body that is not a YAML document convertible to JSON; the message says why."""


class _Loader(yaml.SafeLoader):
    """The safe loader, with timestamps left as the strings they were written as."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml_as_json(raw: bytes | str) -> Any:
    """One YAML document as JSON data (dicts with str keys, lists, str, int, float, bool, None).

    Raises YAMLBodyError (never RecursionError or a type JSON cannot encode)."""
    try:
        data = yaml.load(raw, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise YAMLBodyError(" ".join(str(exc).split())) from None
    except RecursionError:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
    budget = [len(raw) + _ALIAS_BUDGET]
    try:
        return _plain(data, 0, budget, set())
    except RecursionError:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None


def _plain(value: Any, depth: int, budget: list[int], open_ids: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise YAMLBodyError("yaml: document contains excessive aliasing")
    if depth > MAX_DEPTH:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}")
    if isinstance(value, (dict, list, set)):
        if id(value) in open_ids:
            raise YAMLBodyError("yaml: an alias refers to the node that contains it")
        open_ids.add(id(value))
        try:
            if isinstance(value, dict):
                return {_key(k): _plain(v, depth + 1, budget, open_ids) for k, v in value.items()}
            if isinstance(value, set):  # !!set: a mapping to nulls
                return {_key(k): None for k in value}
            return [_plain(v, depth + 1, budget, open_ids) for v in value]
        finally:
            open_ids.discard(id(value))
    if isinstance(value, bytes):  # !!binary
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        raise YAMLBodyError(f"json: unsupported value: {_scalar(value)}")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return _scalar(key)
    raise YAMLBodyError(f"yaml: invalid map key: {key!r}")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)
