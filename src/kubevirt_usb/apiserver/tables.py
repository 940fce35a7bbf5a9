"""Server-side printing: the `Table` objects `kubectl get` asks for (printer columns, Age)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from kubevirt_usb.apiserver import printers
from kubevirt_usb.apiserver.resources import PrinterColumn, ResourceInfo

_CRD_AGE = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp",
                        description=printers.AGE_DESCRIPTION)
_PATH_TOKEN = re.compile(
    r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]|\[(\*)\]"
    r"|\[\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*('[^']*'|\"[^\"]*\"|[^)\s]+)\s*\)\]")
human_age = printers.human_age


def columns_for(info: ResourceInfo) -> tuple[printers.Column, ...]:
    """The columns of a resource's Table: a CRD's printer columns (Age when it has none) after
    Name, or the built-in printer's."""
    if not info.custom:
        return printers.builtin_columns(info.group, info.kind)
    return (printers.NAME, *(_custom_column(c) for c in info.printer_columns or (_CRD_AGE,)))


def _custom_column(column: PrinterColumn) -> printers.Column:
    def cell(obj: Any, now: dt.datetime) -> Any:
        value = json_path(obj, column.json_path)
        if value is None:
            return None
        if column.type == "date" and isinstance(value, str):
            return human_age(value, now=now)
        if isinstance(value, (dict, list)):
            return str(value)
        return value

    return printers.Column(name=column.name, type=column.type, format=column.format,
                           description=column.description, priority=column.priority, cell=cell)


def json_path(obj: Any, path: str) -> Any:
    """The first value at a printer column's JSONPath, or None: fields (`.status.phase`,
    `['x.y']`), indexes (`[0]`), `[*]` and filters (`[?(@.type=='Ready')]`, `==`/`!=`), as
    kube-apiserver prints the first result of a custom column."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    expr = expr.removeprefix("$")
    found = [obj]
    for match in _PATH_TOKEN.finditer(expr):
        found = [value for current in found for value in _step(current, match)]
        if not found:
            return None
    return found[0]


def _step(current: Any, match: re.Match[str]) -> list[Any]:
    key, index, quoted, star, filter_path, operator, literal = match.groups()
    if index is not None or star is not None or filter_path is not None:
        if not isinstance(current, list):
            return []
        if index is not None:
            return [current[int(index)]] if int(index) < len(current) else []
        if star is not None:
            return [item for item in current if item is not None]
        wanted = _literal(literal)
        return [item for item in current
                if (json_path(item, filter_path) == wanted) == (operator == "==")]
    if not isinstance(current, dict):
        return []
    value = current.get(key if key is not None else quoted)
    return [] if value is None else [value]


def _literal(text: str) -> Any:
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(info: ResourceInfo, objects: list[dict[str, Any]], *, now: dt.datetime,
          include_object: str = "Metadata", resource_version: str = "",
          continue_token: str = "", headers: bool = True) -> dict[str, Any]:
    columns = columns_for(info)
    rows = []
    for obj in objects:
        cells = [column.cell(obj, now) for column in columns]
        row: dict[str, Any] = {"cells": cells}
        row_obj = _row_object(obj, include_object)
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [column.definition() for column in columns]
        if headers else [],
        "rows": rows,
    }
    if continue_token:
        out["metadata"]["continue"] = continue_token
    return out


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table first."""
    first = accept.split(",")[0] if accept else ""
    return "as=Table" in first and "g=meta.k8s.io" in first
