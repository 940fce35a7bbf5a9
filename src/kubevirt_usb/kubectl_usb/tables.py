"""Text tables as kubectl prints them (upper-case headers, columns three blanks apart, no borders)
and the small formats in their cells: ages, byte counts, durations the user types.

Cells come from objects anyone with write access to them (or a device's descriptors) filled in, so
every cell is shown `printable`: a terminal escape sequence, a carriage return, a newline or a
bidi override is shown as an escape (`\x1b`), never acted on, and a cell longer than `MAX_CELL`
characters is cut, so one row stays one line and the columns line up (kubectl escapes ESC and CR
in its tables the same way)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kubevirt_usb.printable import printable

_GAP = "   "
MAX_CELL = 512
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


@dataclass(frozen=True)
class Table:
    """Headers and rows of cells (already text)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]

    def __post_init__(self) -> None:
        rows = [[printable(cell, limit=MAX_CELL) for cell in row] for row in self.rows]
        object.__setattr__(self, "rows", rows)

    def widths(self) -> list[int]:
        """Each column's width: its widest cell, header included."""
        lines = [list(self.headers), *(list(row) for row in self.rows)]
        return [max(len(line[i]) for line in lines) for i in range(len(self.headers))]

    def render(self, *, headers: bool = True, widths: Sequence[int] = ()) -> str:
        """The table as lines, columns padded to their widest cell (or to `widths`, if wider);
        the last column is not padded."""
        lines = [list(self.headers)] if headers else []
        lines += [list(row) for row in self.rows]
        if not lines:
            return ""
        own = [max(len(line[i]) for line in lines) for i in range(len(self.headers))]
        widths = [max(w, widths[i] if i < len(widths) else 0) for i, w in enumerate(own)]
        out = []
        for line in lines:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
            out.append(_GAP.join([*cells, line[-1]]).rstrip())
        return "\n".join(out) + "\n"


def human_age(since: dt.datetime | None, *, now: dt.datetime) -> str:
    """How long ago, as kubectl shows ages: 45s, 3m12s, 17m, 5h3m, 2d4h, 90d, 3y."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def parse_time(value: object) -> dt.datetime | None:
    """A Kubernetes timestamp (RFC 3339) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def human_bytes(count: object) -> str:
    """A byte count in binary units: 0, 512B, 1.5KiB, 64.0MiB."""
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        return "0"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_duration(text: str) -> float:
    """Seconds in a duration as kubectl takes them: `90`, `90s`, `2m`, `1h30m`, `1.5s`."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    match = _DURATION.match(value)
    if not value or match is None:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 2m or 1h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def human_duration(seconds: float) -> str:
    """A duration as `parse_duration` takes it: 45s, 2m, 2m30s, 1h5m."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{secs}s" if secs or not total else "")
