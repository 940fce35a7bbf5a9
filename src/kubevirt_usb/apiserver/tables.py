"""Server-side printing: the `Table` objects `kubectl get` asks for (printer columns, Age)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from kubevirt_usb.apiserver.resources import PrinterColumn, ResourceInfo

_NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}
_AGE_COLUMN = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp",
                            description="CreationTimestamp is a timestamp representing the "
                            "server time when this object was created.")
_BUILTIN_COLUMNS: dict[str, tuple[PrinterColumn, ...]] = {
    "Namespace": (PrinterColumn(name="Status", type="string", json_path=".status.phase"),),
    "Node": (PrinterColumn(name="Status", type="string", json_path=".status.phase"),),
    "Pod": (PrinterColumn(name="Status", type="string", json_path=".status.phase"),
            PrinterColumn(name="Node", type="string", json_path=".spec.nodeName", priority=1)),
    "Lease": (PrinterColumn(name="Holder", type="string", json_path=".spec.holderIdentity"),),
    "Event": (PrinterColumn(name="Type", type="string", json_path=".type"),
              PrinterColumn(name="Reason", type="string", json_path=".reason"),
              PrinterColumn(name="Message", type="string", json_path=".message")),
}
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]")


def columns_for(info: ResourceInfo) -> tuple[PrinterColumn, ...]:
    if info.custom:
        return info.printer_columns or (_AGE_COLUMN,)
    return (*_BUILTIN_COLUMNS.get(info.kind, ()), _AGE_COLUMN)


def json_path(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath (`.status.phase`, `.spec.items[0].name`), or None."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    expr = expr.removeprefix("$")
    current = obj
    for match in _PATH_TOKEN.finditer(expr):
        key, index, quoted = match.groups()
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(key if key is not None else quoted)
        if current is None:
            return None
    return current


def human_age(timestamp: str, *, now: dt.datetime) -> str:
    """kubectl's short duration (`5s`, `3m`, `2d5h`...) since an RFC 3339 timestamp."""
    try:
        then = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<invalid>"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _cell(column: PrinterColumn, obj: Any, now: dt.datetime) -> Any:
    value = json_path(obj, column.json_path)
    if value is None:
        return None
    if column.type == "date" and isinstance(value, str):
        return human_age(value, now=now)
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def _column_definition(column: PrinterColumn) -> dict[str, Any]:
    return {"name": column.name, "type": "string" if column.type == "date" else column.type,
            "format": column.format, "description": column.description,
            "priority": column.priority}


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
        cells = [obj.get("metadata", {}).get("name", ""),
                 *(_cell(c, obj, now) for c in columns)]
        row: dict[str, Any] = {"cells": cells}
        row_obj = _row_object(obj, include_object)
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_NAME_COLUMN, *(_column_definition(c) for c in columns)]
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
