"""What the soak's guest workloads print, read back: serial round trips, progress, log chunks."""

from __future__ import annotations

import shlex

from bench.soak_guest import (
    SerialTally,
    block_command,
    complete_lines,
    is_failed_write,
    is_progress,
    serial_command,
)


def test_serial_round_trips_are_counted_by_outcome() -> None:
    tally = SerialTally()
    for line in ("N", "S 0 ok 40", "S 1 lost", "S 2 garbled", "S 3 ok 41", "E 4 write"):
        tally.feed(line)
    assert (tally.ok, tally.lost, tally.garbled, tally.highest) == (2, 1, 1, 3)
    assert tally.bytes_echoed == 83  # with their newlines


def test_progress_is_a_verified_block_or_an_echoed_line() -> None:
    assert is_progress("V 3 17 ok")
    assert is_progress("S 9 ok 40")
    assert not is_progress("V 3 17 bad")
    assert not is_progress("A 3 17")
    assert not is_progress("S 9 lost")
    assert is_failed_write("F 3 17 dd: I/O error")


def test_a_half_written_last_line_is_left_for_the_next_read() -> None:
    assert complete_lines("T 0 0\nA 0 0\nV 0") == (["T 0 0", "A 0 0"], 12)
    assert complete_lines("") == ([], 0)


def test_commands_pass_the_serial_and_the_starting_generation() -> None:
    words = shlex.split(block_command(serial="AAA1", block_bytes=65536, slots=128, start=42))
    assert words[0:2] == ["sh", "-c"]
    assert words[3:] == ["soak", "AAA1", "65536", "128", "42"]
    assert shlex.split(serial_command(serial="FT0001", start=7))[3:] == ["soak", "FT0001", "7"]
