"""End-to-end fixtures: the cluster in a box, driven like a story.

    def test_...(sandbox):
        sandbox.unplug("AAA1", node="node1")
        ...
        sandbox.wait_vm_sees("default/vm1", "AAA2")

Modules marked `real_apiserver` (the story: attach by serial, the VM's kernel sees it, detach,
unplug and plug again) run against a real kube-apiserver when `KUBEVIRT_USB_TEST_KUBECONFIG` names
one (cluster-admin; see docs/real-apiserver.md), and against the API emulator otherwise. Every
other module always runs against the emulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevirt_usb.sandbox.harness import SandboxHarness

REAL_APISERVER_VARIABLE = "KUBEVIRT_USB_TEST_KUBECONFIG"


def real_apiserver_kubeconfig(request: pytest.FixtureRequest) -> Path | None:
    """The real API server's kubeconfig for a `real_apiserver` module, else None."""
    named = os.environ.get(REAL_APISERVER_VARIABLE)
    if not named or request.node.get_closest_marker("real_apiserver") is None:
        return None
    return Path(named)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHarness]:
    """A fresh default sandbox for one test module (node1 with AAA1, AAA2, FT0001; vm1, vm2)."""
    with SandboxHarness(state_dir=tmp_path_factory.mktemp("sandbox"),
                        apiserver_kubeconfig=real_apiserver_kubeconfig(request)) as harness:
        yield harness


def pytest_report_header(config: pytest.Config) -> str:
    named = os.environ.get(REAL_APISERVER_VARIABLE)
    target = f"the real API server in {named}" if named else "the API emulator"
    return f"e2e story modules (marked real_apiserver) run against {target}"
