"""End-to-end fixtures: the cluster in a box, driven like a story.

    def test_...(sandbox):
        sandbox.unplug("AAA1", node="node1")
        ...
        sandbox.wait_vm_sees("default/vm1", "AAA2")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubevirt_usb.sandbox.harness import SandboxHarness
from tests.e2e.console_support import REASON as CONSOLE_REASON


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHarness]:
    """A fresh default sandbox for one test module (node1 with AAA1, AAA2, FT0001; vm1, vm2)."""
    with SandboxHarness(state_dir=tmp_path_factory.mktemp("sandbox")) as harness:
        yield harness


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once, visibly, why the real-console e2e did not run (it is opt-in)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if CONSOLE_REASON in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(f"console e2e skipped: {CONSOLE_REASON}")
