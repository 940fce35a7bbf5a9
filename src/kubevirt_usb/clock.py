"""Time as Kubernetes writes it, and the wall-clock seam every component takes (tests inject
their own clock; the default is `utc_now`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

WallClock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default wall clock: now, in UTC."""
    return dt.datetime.now(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    """A Kubernetes Time: RFC 3339 in UTC with seconds, e.g. 2024-05-01T12:00:00Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: dt.datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds, as Leases use."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> dt.datetime:
    """A Kubernetes Time or MicroTime back as an aware datetime in UTC."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
