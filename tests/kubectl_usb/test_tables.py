"""Tables, ages, byte counts and durations as kubectl shows and takes them."""

from __future__ import annotations

import datetime as dt

import pytest

from kubevirt_usb.kubectl_usb.tables import (
    Table,
    human_age,
    human_bytes,
    human_duration,
    parse_duration,
    parse_time,
)

NOW = dt.datetime(2025, 1, 10, 12, 0, 0, tzinfo=dt.UTC)


def test_columns_are_padded_and_three_blanks_apart() -> None:
    table = Table(["NAME", "STATE"], [["a", "Available"], ["long-name", "-"]])
    assert table.render() == ("NAME        STATE\n"
                              "a           Available\n"
                              "long-name   -\n")
    assert table.render(headers=False).splitlines()[0] == "a           Available"


def test_given_widths_keep_later_lines_aligned() -> None:
    first = Table(["A", "B"], [["xxxxx", "1"]])
    later = Table(["A", "B"], [["y", "2"]])
    assert later.render(headers=False, widths=first.widths()) == "y       2\n"


def test_an_empty_table_without_headers_is_empty() -> None:
    assert Table(["A"], []).render(headers=False) == ""
    assert Table(["A"], []).render() == "A\n"


@pytest.mark.parametrize(("seconds", "shown"), [
    (5, "5s"), (119, "119s"), (130, "2m10s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
    (9 * 3600, "9h"), (3 * 86400 + 3600, "3d1h"), (30 * 86400, "30d"), (800 * 86400, "2y"),
])
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    assert human_age(NOW - dt.timedelta(seconds=seconds), now=NOW) == shown


def test_no_time_and_future_times() -> None:
    assert human_age(None, now=NOW) == "-"
    assert human_age(NOW + dt.timedelta(seconds=5), now=NOW) == "0s"


def test_kubernetes_timestamps_parse() -> None:
    assert parse_time("2025-01-10T11:59:00Z") == NOW - dt.timedelta(minutes=1)
    assert parse_time("2025-01-10T11:59:00") == NOW - dt.timedelta(minutes=1)
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


@pytest.mark.parametrize(("count", "shown"), [
    (0, "0"), (None, "0"), (True, "0"), (512, "512B"), (1536, "1.5KiB"),
    (64 * 1024 * 1024, "64.0MiB"), (3 * 1024**4, "3.0TiB"),
])
def test_byte_counts(count: object, shown: str) -> None:
    assert human_bytes(count) == shown


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("1.5s", 1.5),
])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "m"])
def test_bad_durations_say_what_to_type(text: str) -> None:
    with pytest.raises(ValueError, match=r"use e\.g\. 30s, 2m or 1h"):
        parse_duration(text)


def test_durations_print_as_they_are_typed() -> None:
    assert human_duration(120) == "2m"
    assert human_duration(150) == "2m30s"
    assert human_duration(3900) == "1h5m"
    assert human_duration(0) == "0s"
