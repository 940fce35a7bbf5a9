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

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubevirt_usb.sandbox.datapath import FaultProxy, GuestAgent, Objects, plain_harness
from kubevirt_usb.sandbox.guest import BOOT_TIMEOUT
from kubevirt_usb.sandbox.harness import SandboxHarness, poll_until
from tests.e2e.console_support import REASON as CONSOLE_REASON

REAL_APISERVER_VARIABLE = "KUBEVIRT_USB_TEST_KUBECONFIG"


def real_apiserver_kubeconfig(request: pytest.FixtureRequest) -> Path | None:
    """The real API server's kubeconfig for a `real_apiserver` module, else None."""
    named = os.environ.get(REAL_APISERVER_VARIABLE)
    if not named or request.node.get_closest_marker("real_apiserver") is None:
        return None
    return Path(named)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An end-to-end test may include starting its module's sandbox, which itself waits up to
    BOOT_TIMEOUT + 900 s on a busy machine: the suite's 600 s hang guard would cut it first."""
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(BOOT_TIMEOUT + 1200))


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHarness]:
    """A fresh default sandbox for one test module (node1 with AAA1, AAA2, FT0001; vm1, vm2)."""
    with SandboxHarness(state_dir=tmp_path_factory.mktemp("sandbox"),
                        apiserver_kubeconfig=real_apiserver_kubeconfig(request)) as harness:
        yield harness


@dataclass
class StreamingBox:
    """A sandbox without the product's components, the streaming agent running in node1 and
    reaching the API emulator through a proxy that can fail the network (the data-path modules)."""

    harness: SandboxHarness
    proxy: FaultProxy
    objects: Objects
    agent: GuestAgent


@contextlib.contextmanager
def streaming_box(state_dir: Path, *, local_path: bool = True,
                  before_agent: Callable[[StreamingBox], None] | None = None,
                  ) -> Iterator[StreamingBox]:
    """Start the box, call `before_agent(box)` (publish sticks, create attachments), start the
    agent and wait for its spare engine worker; on the way out, print the agent's log and stop
    everything."""
    harness = plain_harness(state_dir=state_dir)
    harness.start()
    proxy = FaultProxy(target_port=harness.sandbox.api.port)
    agent = GuestAgent(harness, "node1")
    try:
        harness.run(proxy.start())
        box = StreamingBox(harness, proxy, Objects(harness), agent)
        if before_agent is not None:
            before_agent(box)
        agent.start(api_port=proxy.port, local_path=local_path)
        poll_until(lambda: "ready (libusb" in agent.log(), within=240,
                   what="the agent and its spare engine worker to start")
        yield box
    finally:
        print(f"\n--- streaming agent log (tail) ---\n{agent.log(80)}")
        agent.stop()
        with contextlib.suppress(Exception):
            harness.run(proxy.stop())
        harness.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once, visibly, why the real-console e2e did not run (it is opt-in)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if CONSOLE_REASON in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(f"console e2e skipped: {CONSOLE_REASON}")


def pytest_report_header(config: pytest.Config) -> str:
    named = os.environ.get(REAL_APISERVER_VARIABLE)
    target = f"the real API server in {named}" if named else "the API emulator"
    return f"e2e story modules (marked real_apiserver) run against {target}"
