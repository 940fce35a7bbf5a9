"""Contract tests: every case runs against the API emulator and, when a real cluster is named,
against that real kube-apiserver too, unchanged.

Name a real cluster with `KUBEVIRT_USB_TEST_KUBECONFIG=/path/to/kubeconfig` (cluster-admin), or with
`KUBEVIRT_USB_TEST_APISERVER=https://host:6443` plus `KUBEVIRT_USB_TEST_TOKEN` (and optionally
`KUBEVIRT_USB_TEST_CA`, a CA bundle path). Without them the `real` variant is skipped with that
reason.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubevirt_usb.apiserver.server import BackgroundAPIServer, ServerOptions
from tests.contract.support import ContractCRD, install_crd, new_test_crd, remove_crd

REAL_REASON = ("no real cluster named: set KUBEVIRT_USB_TEST_KUBECONFIG (or "
               "KUBEVIRT_USB_TEST_APISERVER + KUBEVIRT_USB_TEST_TOKEN) to run against one")


@dataclass
class Cluster:
    """A Kubernetes API endpoint plus cluster-admin credentials, whatever serves it."""

    kind: str  # "emulator" | "real"
    server: str
    token: str
    kubeconfig: Path
    ca_path: Path | None
    scratch: Path  # per-user kubeconfigs; under pytest's own temporary directory
    emulator: BackgroundAPIServer | None = None

    @property
    def is_emulator(self) -> bool:
        return self.kind == "emulator"

    def _verify(self) -> ssl.SSLContext:
        if self.ca_path:
            return ssl.create_default_context(cafile=str(self.ca_path))
        return ssl.create_default_context()

    def http(self, *, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        verify = self._verify()
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        if token == "":
            headers = {}
        return httpx.Client(base_url=self.server, verify=verify, headers=headers,
                            timeout=timeout)

    def async_http(self, *, token: str | None = None) -> httpx.AsyncClient:
        verify = self._verify()
        return httpx.AsyncClient(base_url=self.server, verify=verify, timeout=30.0,
                                 headers={"Authorization": f"Bearer {token or self.token}"})

    def kubectl(self, *args: str, input: str | None = None, token: str | None = None,
                check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        config = self.kubeconfig if token is None else self.kubeconfig_for(token)
        env = {**os.environ, "KUBECONFIG": str(config)}
        done = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True,
                              env=env, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def kubeconfig_for(self, token: str) -> Path:
        config = yaml.safe_load(self.kubeconfig.read_text())
        name = f"user-{uuid.uuid4().hex[:8]}"
        config["users"] = [{"name": name, "user": {"token": token}}]
        for ctx in config["contexts"]:
            ctx["context"]["user"] = name
        path = self.scratch / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def service_account_token(self, *, namespace: str, name: str) -> str:
        """A token for a new ServiceAccount (TokenRequest): a user that works on any cluster."""
        with self.http() as http:
            http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                      json={"metadata": {"name": name}}).raise_for_status()
            answer = http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                               json={"apiVersion": "authentication.k8s.io/v1",
                                     "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
            answer.raise_for_status()
            return str(answer.json()["status"]["token"])


def _real_cluster(scratch: Path) -> Cluster | None:
    path = os.environ.get("KUBEVIRT_USB_TEST_KUBECONFIG")
    if path:
        config = yaml.safe_load(Path(path).read_text())
        current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"]
                       if c["name"] == current["context"]["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == current["context"]["user"])
        ca_path = None
        if cluster.get("certificate-authority-data"):
            ca_path = scratch / "ca.crt"
            ca_path.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        elif cluster.get("certificate-authority"):
            ca_path = Path(cluster["certificate-authority"])
        if not user.get("token"):
            raise pytest.UsageError(
                f"{path}: the contract tests talk to the cluster with a bearer token; name a "
                "kubeconfig whose user has `token:` (e.g. a cluster-admin ServiceAccount's)")
        return Cluster(kind="real", server=cluster["server"], token=user["token"],
                       kubeconfig=Path(path), ca_path=ca_path, scratch=scratch)
    url = os.environ.get("KUBEVIRT_USB_TEST_APISERVER")
    if url:
        token = os.environ["KUBEVIRT_USB_TEST_TOKEN"]
        ca = os.environ.get("KUBEVIRT_USB_TEST_CA")
        tmp = scratch / "kubeconfig"
        cluster_entry: dict[str, Any] = {"server": url}
        if ca:
            cluster_entry["certificate-authority"] = ca
        tmp.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "real",
            "clusters": [{"name": "real", "cluster": cluster_entry}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": "admin"}}]}))
        return Cluster(kind="real", server=url, token=token, kubeconfig=tmp,
                       ca_path=Path(ca) if ca else None, scratch=scratch)
    return None


@pytest.fixture(scope="session")
def emulator_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("apiserver")
    background = BackgroundAPIServer(ServerOptions(state_dir=state))
    server = background.start()
    kubeconfig = server.write_kubeconfig(state / "kubeconfig")
    yield Cluster(kind="emulator", server=server.url, token=server.admin_token,
                  kubeconfig=kubeconfig, ca_path=server.certificate.ca_path,
                  scratch=state, emulator=background)
    background.stop()


@pytest.fixture(scope="session", params=["emulator", "real"])
def cluster(request: pytest.FixtureRequest) -> Cluster:
    if request.param == "emulator":
        emulator: Cluster = request.getfixturevalue("emulator_cluster")
        return emulator
    real = _real_cluster(request.getfixturevalue("tmp_path_factory").mktemp("real-cluster"))
    if real is None:
        pytest.skip(REAL_REASON)
    return real


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"contract-{uuid.uuid4().hex[:10]}"
    with cluster.http() as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
    yield name
    with cluster.http() as http:
        http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def widget_crd(cluster: Cluster) -> Iterator[ContractCRD]:
    """A namespaced CRD (status subresource, printer columns, short name, schema)."""
    crd = new_test_crd(kind="Widget", plural="widgets", namespaced=True)
    with cluster.http() as http:
        install_crd(http, crd)
    yield crd
    with cluster.http() as http:
        remove_crd(http, crd)


@pytest.fixture(scope="session")
def gadget_crd(cluster: Cluster) -> Iterator[ContractCRD]:
    """A cluster-scoped CRD of the same shape."""
    crd = new_test_crd(kind="Gadget", plural="gadgets", namespaced=False)
    with cluster.http() as http:
        install_crd(http, crd)
    yield crd
    with cluster.http() as http:
        remove_crd(http, crd)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once, visibly, why the real-server half of the contract tests did not run."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if REAL_REASON in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(
            f"contract tests: {len(skipped)} real-server cases skipped: {REAL_REASON}")
