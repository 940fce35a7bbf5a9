"""Hypothesis settings for every property and fuzz test of the suite.

The default profile ("ci") is derandomized and keeps no example database: the same examples run
on every machine and every run, so a red test is red for everyone and a green run is not luck;
no deadline (the machine is shared and slow at times: timing is for bench/, not tests).
`HYPOTHESIS_PROFILE=explore` draws fresh random examples, more of them, to hunt for new findings;
a finding becomes an explicit regression test (or `@example`) before it is fixed.

Also: the `screenshots` directory of the browser tests (never docs/screenshots unless asked).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=1000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---- screenshots -------------------------------------------------------------------------------

SCREENSHOTS_VARIABLE = "KUBEVIRT_USB_SCREENSHOTS"
_SCREENSHOTS = pytest.StashKey[Path]()


def screenshots_directory(environ: Mapping[str, str], *, basetemp: Path) -> Path:
    """Where the browser tests put their screenshots: $KUBEVIRT_USB_SCREENSHOTS when set (`make
    screenshots` points it at docs/screenshots to refresh the committed ones), else a directory
    under pytest's temporary directory, so that a test run never changes the working tree."""
    named = environ.get(SCREENSHOTS_VARIABLE)
    return Path(named).resolve() if named else basetemp / "screenshots"


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory screenshots go to (named once at the end of the run)."""
    directory = screenshots_directory(os.environ, basetemp=tmp_path_factory.getbasetemp())
    directory.mkdir(parents=True, exist_ok=True)
    request.config.stash[_SCREENSHOTS] = directory
    return directory


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    directory = config.stash.get(_SCREENSHOTS, None)
    if directory is not None:
        terminalreporter.write_line(
            f"screenshots written to {directory} (choose with {SCREENSHOTS_VARIABLE}=DIR; "
            "`make screenshots` refreshes docs/screenshots)")
