"""Where the browser tests' screenshots go: never into the working tree unless asked."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SCREENSHOTS_VARIABLE, screenshots_directory

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def test_by_default_screenshots_go_under_pytests_temporary_directory(tmp_path: Path) -> None:
    found = screenshots_directory({}, basetemp=tmp_path)
    assert found == tmp_path / "screenshots"
    assert found != DOCS


def test_the_variable_names_the_directory(tmp_path: Path) -> None:
    assert screenshots_directory({SCREENSHOTS_VARIABLE: str(DOCS)}, basetemp=tmp_path) == DOCS


def test_a_relative_directory_is_taken_from_where_pytest_runs(tmp_path: Path) -> None:
    found = screenshots_directory({SCREENSHOTS_VARIABLE: "shots"}, basetemp=tmp_path)
    assert found == Path.cwd() / "shots"
