"""A tiny kopf operator, run in-process with its own registry, reconciling a custom resource:
it adds its finalizer, writes status, and on delete removes the finalizer."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import (
    MERGE,
    ContractCRD,
    crd_manifest,
    new_test_crd,
    remove_crd,
)
from tests.polling import wait_until

FINALIZER = "contract.kubevirt-usb.io/kopf"


@pytest.fixture(scope="module")
def gizmo_crd(cluster: Cluster) -> Iterator[ContractCRD]:
    crd = new_test_crd(kind="Gizmo", plural="gizmos", namespaced=True)
    manifest = crd_manifest(crd)
    status = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["x-kubernetes-preserve-unknown-fields"] = True
    with cluster.http() as http:
        created = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                            json=manifest)
        created.raise_for_status()
        wait_until(lambda: http.get(crd.path()).status_code == 200, what="gizmos served")
    yield crd
    with cluster.http() as http:
        remove_crd(http, crd)


class Operator:
    """kopf.operator() on its own thread and event loop, stopped by a flag."""

    def __init__(self, cluster: Cluster, crd: ContractCRD, namespace: str) -> None:
        self.deleted: list[str] = []
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.registry = self._registry(cluster, crd)
        self.thread = threading.Thread(target=self._run, args=(namespace,), daemon=True)
        self.error: BaseException | None = None

    def _registry(self, cluster: Cluster, crd: ContractCRD) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.persistence.finalizer = FINALIZER
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
                prefix="contract.kubevirt-usb.io")
            settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
                prefix="contract.kubevirt-usb.io")
            settings.watching.server_timeout = 10
            settings.posting.enabled = False

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=cluster.server, token=cluster.token,
                                       scheme="Bearer",
                                       ca_path=str(cluster.ca_path) if cluster.ca_path else None)

        @kopf.on.create(crd.group, crd.version, crd.plural, registry=registry)
        def created(spec: kopf.Spec, patch: kopf.Patch, meta: kopf.Meta, **_: Any) -> None:
            patch.status["phase"] = f"Ready-{spec['color']}"
            patch.status["observedGeneration"] = meta["generation"]

        @kopf.on.delete(crd.group, crd.version, crd.plural, registry=registry)
        def deleted(name: str, **_: Any) -> None:
            self.deleted.append(name)

        return registry

    def _run(self, namespace: str) -> None:
        try:
            asyncio.run(kopf.operator(registry=self.registry, namespaces=[namespace],
                                      standalone=True, stop_flag=self.stop_flag,
                                      ready_flag=self.ready_flag))
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready_flag.set()

    def __enter__(self) -> Operator:
        self.thread.start()
        assert self.ready_flag.wait(30), "kopf did not become ready"
        assert self.error is None, self.error
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_flag.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "kopf did not stop"


def test_kopf_operator_reconciles_with_finalizer_and_status(
        cluster: Cluster, namespace: str, gizmo_crd: ContractCRD) -> None:
    logging.getLogger("kopf").setLevel(logging.WARNING)
    path = gizmo_crd.path(namespace=namespace, name="g1")
    with Operator(cluster, gizmo_crd, namespace) as operator, cluster.http() as http:
        http.post(gizmo_crd.path(namespace=namespace),
                  json=gizmo_crd.obj("g1", namespace=namespace, spec={"color": "blue"})
                  ).raise_for_status()
        reconciled = wait_until(
            lambda: (lambda o: o if (o.get("status") or {}).get("phase") else None)(
                http.get(path).json()), what="kopf to write status")
        assert reconciled["status"]["phase"] == "Ready-blue"
        assert reconciled["status"]["observedGeneration"] == 1
        assert FINALIZER in reconciled["metadata"]["finalizers"]
        assert http.delete(path).status_code == 200
        wait_until(lambda: http.get(path).status_code == 404,
                   what="kopf to run the delete handler and release the finalizer")
        assert operator.deleted == ["g1"]


def test_kopf_leaves_foreign_finalizers_alone(cluster: Cluster, namespace: str,
                                              gizmo_crd: ContractCRD) -> None:
    path = gizmo_crd.path(namespace=namespace, name="g2")
    other = "contract.kubevirt-usb.io/other"
    with Operator(cluster, gizmo_crd, namespace), cluster.http() as http:
        http.post(gizmo_crd.path(namespace=namespace), json=gizmo_crd.obj(
            "g2", namespace=namespace, finalizers=[other])).raise_for_status()
        wait_until(lambda: FINALIZER in (http.get(path).json()["metadata"].get("finalizers")
                                         or []), what="kopf's finalizer")
        http.delete(path).raise_for_status()
        remaining = wait_until(
            lambda: (lambda f: f if f == [other] else None)(
                http.get(path).json()["metadata"].get("finalizers")),
            what="kopf to remove only its own finalizer")
        assert remaining == [other]
        http.patch(path, headers=MERGE, json={"metadata": {"finalizers": None}}
                   ).raise_for_status()
        wait_until(lambda: http.get(path).status_code == 404, what="the gizmo to go")
