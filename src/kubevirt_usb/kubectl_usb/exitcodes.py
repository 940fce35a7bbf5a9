"""What `kubectl usb` exits with, and the one-line errors it prints.

Every failure becomes a `CLIError`: a message for people (one line, saying what to do) and an
exit code scripts can branch on (`session.from_kube_error` turns API failures into them).
"""

from __future__ import annotations

from enum import IntEnum

from kubevirt_usb.printable import printable

MAX_LINE = 2048
"""An error line longer than this is cut (a server may echo a whole hostile value)."""


class ExitCode(IntEnum):
    """The exit codes of `kubectl usb` (documented in docs/cli.md and `--help`)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    AMBIGUOUS = 4
    REFUSED = 5
    FORBIDDEN = 6
    UNREACHABLE = 7
    TIMEOUT = 8
    PROBLEMS = 9
    INTERRUPTED = 130


EXIT_CODE_HELP: dict[ExitCode, str] = {
    ExitCode.OK: "done (also: nothing to do, e.g. already attached)",
    ExitCode.FAILED: "the API server refused or failed the request for another reason",
    ExitCode.USAGE: "wrong flags or arguments",
    ExitCode.NOT_FOUND: "no such device, VM, attachment or namespace; or kubevirt-usb is not "
                        "installed",
    ExitCode.AMBIGUOUS: "the selector matches several devices (the candidates are listed)",
    ExitCode.REFUSED: "refused: device held by another VM, VM not prepared, attachment "
                      "NotAllowed/Failed",
    ExitCode.FORBIDDEN: "missing permission (the verb and resource are named), or credentials "
                        "not accepted",
    ExitCode.UNREACHABLE: "no cluster: no usable kubeconfig, or the API server cannot be reached",
    ExitCode.TIMEOUT: "--wait gave up after --timeout",
    ExitCode.PROBLEMS: "doctor found problems",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C) while waiting",
}


def exit_codes_epilog() -> str:
    """The exit-code table as `--help` shows it."""
    lines = ["Exit codes:"]
    lines += [f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()]
    return "\n".join(lines)


class CLIError(Exception):
    """A failure to report in one line, with the exit code that classifies it."""

    def __init__(self, message: str, *, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = one_line(message)
        self.code = code


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of blanks folded into single spaces, and any other
    control or invisible character (a terminal escape in a server's message) shown as an escape."""
    return printable(" ".join(text.split()), limit=MAX_LINE)
