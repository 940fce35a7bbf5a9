"""Kubernetes time stamps and the default wall clock."""

from __future__ import annotations

import datetime as dt

from kubevirt_usb.clock import micro_time, parse_rfc3339, rfc3339, utc_now

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def test_times_are_written_in_utc_with_seconds_or_microseconds() -> None:
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, 250000, tzinfo=PLUS_TWO)
    assert rfc3339(moment) == "2024-05-01T12:00:00Z"
    assert micro_time(moment) == "2024-05-01T12:00:00.250000Z"


def test_the_default_clock_is_aware_and_in_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    now = utc_now()
    assert now.tzinfo is dt.UTC
    assert before <= now <= dt.datetime.now(dt.UTC)


def test_times_read_back_as_written() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, 7, 250000, tzinfo=dt.UTC)
    assert parse_rfc3339(rfc3339(moment)) == moment.replace(microsecond=0)
    assert parse_rfc3339(micro_time(moment)) == moment
