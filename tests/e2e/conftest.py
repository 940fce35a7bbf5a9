"""End-to-end fixtures: the cluster in a box, driven like a story.

    def test_...(sandbox):
        sandbox.unplug("AAA1", node="node1")
        ...
        sandbox.wait_vm_sees("default/vm1", "AAA2")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubevirt_usb.sandbox.guest import BOOT_TIMEOUT
from kubevirt_usb.sandbox.harness import SandboxHarness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An end-to-end test may include starting its module's sandbox, which itself waits up to
    BOOT_TIMEOUT + 900 s on a busy machine: the suite's 600 s hang guard would cut it first."""
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(BOOT_TIMEOUT + 1200))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHarness]:
    """A fresh default sandbox for one test module (node1 with AAA1, AAA2, FT0001; vm1, vm2)."""
    with SandboxHarness(state_dir=tmp_path_factory.mktemp("sandbox")) as harness:
        yield harness
