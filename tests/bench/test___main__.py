"""`python -m bench`: a soak asked for a fault kind it does not know says so in one line and
starts nothing."""

from __future__ import annotations

from bench.__main__ import main
from click.testing import CliRunner


def test_an_unknown_fault_kind_is_one_line_listing_the_kinds_and_starts_nothing() -> None:
    result = CliRunner().invoke(main, ["soak", "--minutes", "1", "--without", "agent-kil"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown fault kind agent-kil; the kinds are agent-kill, worker-kill, "
        "leader-kill, api-cut, api-refuse, vm-restart, replug, move-port, recreate, "
        "fifth-device, policy-toggle\n")
