"""Fixtures of the deploy tests: a fresh API emulator per test module, with the platform kinds
(OpenShift's Route, ConsoleLink, SecurityContextConstraints, OAuthClient, Ingress config and
prometheus-operator's ServiceMonitor) registered as test CRDs, and kubectl pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from tests.deploy.support import Kubectl, platform_crds


@dataclass
class Emulator:
    server: APIServer
    kubectl: Kubectl


def _start(state: Path) -> Iterator[Emulator]:
    background = BackgroundAPIServer(ServerOptions(state_dir=state))
    server = background.start()
    try:
        kubectl = Kubectl(server.write_kubeconfig(state / "kubeconfig"))
        kubectl.establish(platform_crds())
        yield Emulator(server=server, kubectl=kubectl)
    finally:
        background.stop()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the tests of a module."""
    yield from _start(tmp_path_factory.mktemp("deploy-apiserver"))


@pytest.fixture
def fresh_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of its own, for a test that installs and removes things."""
    yield from _start(tmp_path_factory.mktemp("deploy-apiserver"))
