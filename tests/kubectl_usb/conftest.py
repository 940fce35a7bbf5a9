"""Fixtures for `kubectl usb`: a fresh emulated cluster per test (it starts in a fraction of a
second), with or without the field notes' devices and VMs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubectl_usb.cluster import Cluster


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_commands() -> Iterator[None]:
    """The commands these tests start get Ctrl-C (SIGINT) as from a terminal, also when the
    suite itself runs in the background: a shell without job control starts a background job
    with SIGINT ignored, and an ignored signal stays ignored in every child (a caught one is reset
    to the default on exec). Seen in a `bash .ci/run &`: the Ctrl-C tests waited for commands
    that never got the signal."""
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The CRDs, KubeVirt and two nodes; no device, no VM."""
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(empty_cluster: Cluster) -> Cluster:
    """The field notes' world: AAA1, AAA2 and FT0001 on node1; default/vm1 prepared for USB
    redirection, default/vm2 not."""
    empty_cluster.add_field_notes_devices()
    empty_cluster.add_vm("vm1")
    empty_cluster.add_vm("vm2", passthrough=False)
    return empty_cluster
