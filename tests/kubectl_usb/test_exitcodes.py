"""Exit codes and one-line errors."""

from __future__ import annotations

from kubevirt_usb.kubectl_usb.exitcodes import (
    MAX_LINE,
    CLIError,
    ExitCode,
    exit_codes_epilog,
    one_line,
)


def test_every_exit_code_is_documented_in_the_epilog() -> None:
    epilog = exit_codes_epilog()
    for code in ExitCode:
        assert f"  {int(code):>3}  " in epilog


def test_exit_codes_are_distinct_and_stable() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130]


def test_a_cli_error_is_one_line() -> None:
    error = CLIError("first\n  second\tthird", code=ExitCode.NOT_FOUND)
    assert error.message == "first second third"
    assert error.code is ExitCode.NOT_FOUND
    assert one_line("  a \n b ") == "a b"


def test_an_error_line_shows_terminal_escapes_and_is_bounded() -> None:
    message = one_line("usbattachments \"a\x1b]0;pwned\x07\" is forbidden:\n\x1b[2J" + "x" * 5000)
    assert message.startswith('usbattachments "a\\x1b]0;pwned\\x07" is forbidden: \\x1b[2J')
    assert message.endswith("xxx…")
    assert len(message) < MAX_LINE + 20  # cut after MAX_LINE characters of the message
