"""`watch`: the objects as watch events change them, shown as a table redrawn in place (on a
terminal) or as one line per change (for a pipe, like `kubectl get -w`)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb.kubectl_usb.objects import Obj, name, namespace
from kubevirt_usb.kubectl_usb.tables import Table

Key = tuple[str, str]
CLEAR = "\x1b[H\x1b[2J"


def key_of(obj: Obj) -> Key:
    return namespace(obj), name(obj)


def apply_event(state: Mapping[Key, Obj], kind: str, obj: Obj) -> dict[Key, Obj]:
    """The objects after one watch event (ADDED, MODIFIED, DELETED; BOOKMARK changes nothing)."""
    out = dict(state)
    if kind == "DELETED":
        out.pop(key_of(obj), None)
    elif kind in ("ADDED", "MODIFIED"):
        out[key_of(obj)] = obj
    return out


def sorted_objects(state: Mapping[Key, Obj]) -> list[Obj]:
    return [state[k] for k in sorted(state)]


def as_deleted(obj: Obj, *, field: str) -> dict[str, Any]:
    """A copy that reads as deleted in a table: status `field` (phase, state) is `Deleted`."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    status = dict(out.get("status") or {})
    status[field] = "Deleted"
    out["status"] = status
    return out


def frame(table: Table, *, title: str) -> str:
    """A whole screen: cleared, a title line, the table."""
    body = table.render() if table.rows else "(none)\n"
    return f"{CLEAR}{title}\n\n{body}"


@dataclass
class Lines:
    """One line per change, aligned with the table printed first: columns are at least
    `min_widths` wide (room for what usually comes), and only ever grow."""

    build: Callable[[Iterable[Obj]], Table]
    status_field: str
    min_widths: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)

    def _grow(self, table: Table) -> None:
        have = self.widths or self.min_widths
        self.widths = [max(w, have[i] if i < len(have) else 0)
                       for i, w in enumerate(table.widths())]

    def start(self, objects: Iterable[Obj]) -> str:
        table = self.build(list(objects))
        self._grow(table)
        return table.render(widths=self.widths)

    def change(self, kind: str, obj: Obj) -> str:
        shown = as_deleted(obj, field=self.status_field) if kind == "DELETED" else obj
        table = self.build([shown])
        self._grow(table)
        return table.render(headers=False, widths=self.widths)
