"""Helpers the contract tests share: waiting on conditions, reading watch streams, test CRDs.

Everything here talks plain HTTP to whichever cluster the test runs against, so the same case
passes on the API emulator and on a real kube-apiserver.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from kubevirt_usb.sandbox.controlplane import Resource
from tests.polling import wait_until

T = TypeVar("T")
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on a shared cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status_of(response: httpx.Response) -> dict[str, Any]:
    """The `Status` body of an error response, checked to be one."""
    body = response.json()
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == response.status_code, body
    return dict(body)


def watch_events(http: httpx.Client, path: str, **params: str) -> Iterator[dict[str, Any]]:
    """The events of one watch request, as they arrive; ends when the server ends the stream."""
    query = {"watch": "true", **params}
    with http.stream("GET", path, params=query) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def collect_events(http: httpx.Client, path: str, *, until: Callable[[list[dict[str, Any]]], bool],
                   **params: str) -> list[dict[str, Any]]:
    """Events of a watch (which must carry timeoutSeconds) until `until` holds or it ends."""
    assert "timeoutSeconds" in params, "watches in tests must end on their own"
    events: list[dict[str, Any]] = []
    for event in watch_events(http, path, **params):
        events.append(event)
        if until(events):
            break
    return events


@dataclass(frozen=True, kw_only=True)
class ContractCRD(Resource):
    """A CRD made for one test session: unique group, so it never meets another run's. Its
    paths are the sandbox's `Resource.path` (one way to spell a REST path in the project)."""

    kind: str
    short_name: str

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    def obj(self, name: str, *, namespace: str = "", spec: dict[str, Any] | None = None,
            **meta: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, **meta}
        if self.namespaced and namespace:
            metadata["namespace"] = namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata,
                "spec": spec if spec is not None else {"color": "red", "size": 1}}


def widget_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["color"],
                "properties": {
                    "color": {"type": "string", "enum": ["red", "green", "blue"]},
                    "size": {"type": "integer", "minimum": 0},
                    "label": {"type": "string", "pattern": "^[a-z]+$"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "phase": {"type": "string"},
                    "observedGeneration": {"type": "integer"},
                    "conditions": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"type": {"type": "string"},
                                       "status": {"type": "string"}}}},
                },
            },
        },
    }


def crd_manifest(crd: ContractCRD) -> dict[str, Any]:
    """The CRD: status subresource, printer columns, a short name, a structural schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd.name},
        "spec": {
            "group": crd.group,
            "scope": "Namespaced" if crd.namespaced else "Cluster",
            "names": {"plural": crd.plural, "singular": crd.kind.lower(), "kind": crd.kind,
                      "listKind": f"{crd.kind}List", "shortNames": [crd.short_name]},
            "versions": [{
                "name": crd.version,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Ready", "type": "string", "priority": 1,
                     "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": widget_schema()},
            }],
        },
    }


def new_test_crd(*, kind: str, plural: str, namespaced: bool) -> ContractCRD:
    tag = uuid.uuid4().hex[:8]
    return ContractCRD(group=f"c{tag}.contract.kubevirt-usb.io", version="v1", plural=plural,
                       kind=kind, short_name=f"{plural[:3]}{tag[:4]}", namespaced=namespaced)


def install_crd(http: httpx.Client, crd: ContractCRD) -> None:
    """Create the CRD and wait until it is Established and its resource answers."""
    created = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                        json=crd_manifest(crd))
    assert created.status_code == 201, created.text

    def established() -> bool:
        got = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}")
        conditions = (got.json().get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_until(established, what=f"CRD {crd.name} Established")
    wait_until(lambda: http.get(crd.path()).status_code == 200,
               what=f"{crd.plural}.{crd.group} served")


def remove_crd(http: httpx.Client, crd: ContractCRD) -> None:
    http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}")
