"""Fixtures of the controller's tests: `cluster` (a fresh API emulator per test, or the real
cluster named by KUBEVIRT_USB_TEST_KUBECONFIG) and `kit` (see tests/controller/cluster.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.controller.cluster import REAL_KUBECONFIG, Cluster, Kit, emulated_cluster, make_kit


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if REAL_KUBECONFIG:
        yield Cluster(kubeconfig=Path(REAL_KUBECONFIG))
        return
    with emulated_cluster(tmp_path / "apiserver") as emulated:
        yield emulated


@pytest.fixture
async def kit(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Kit]:
    async with make_kit(cluster, tmp_path) as made:
        yield made
