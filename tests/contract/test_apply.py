"""Server-side apply: field managers, conflicts between them, force, and managedFields."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from tests.contract.conftest import Cluster
from tests.contract.support import APPLY, MERGE, ContractCRD, status_of


def _apply(http: httpx.Client, path: str, body: dict[str, Any], manager: str,
           force: bool = False) -> httpx.Response:
    params = {"fieldManager": manager}
    if force:
        params["force"] = "true"
    return http.patch(path, params=params, headers=APPLY, content=yaml.safe_dump(body).encode())


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _managers(obj: dict[str, Any]) -> dict[str, str]:
    return {e["manager"]: e["operation"] for e in obj["metadata"]["managedFields"]}


def test_apply_creates_then_updates(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/applied"
    with cluster.http() as http:
        created = _apply(http, path, _cm("applied", a="1"), "alice")
        assert created.status_code == 201
        assert created.json()["data"] == {"a": "1"}
        entry = created.json()["metadata"]["managedFields"][0]
        assert entry["manager"] == "alice"
        assert entry["operation"] == "Apply"
        assert entry["fieldsType"] == "FieldsV1"
        assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
        updated = _apply(http, path, _cm("applied", a="2", b="3"), "alice")
        assert updated.status_code == 200
        assert updated.json()["data"] == {"a": "2", "b": "3"}


def test_apply_removes_fields_the_manager_stops_applying(cluster: Cluster,
                                                         namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/shrink"
    with cluster.http() as http:
        _apply(http, path, _cm("shrink", a="1", b="2"), "alice").raise_for_status()
        shrunk = _apply(http, path, _cm("shrink", a="1"), "alice")
    assert shrunk.json()["data"] == {"a": "1"}


def test_conflict_between_managers_is_409(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/contested"
    with cluster.http() as http:
        _apply(http, path, _cm("contested", key="alice"), "alice").raise_for_status()
        response = _apply(http, path, _cm("contested", key="bob"), "bob")
        assert response.status_code == 409
        status = status_of(response)
        assert status["reason"] == "Conflict"
        assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.key'
        assert status["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                                "message": 'conflict with "alice"',
                                                "field": ".data.key"}]
        assert http.get(path).json()["data"] == {"key": "alice"}


def test_same_value_is_shared_without_conflict(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/shared"
    with cluster.http() as http:
        _apply(http, path, _cm("shared", key="same"), "alice").raise_for_status()
        response = _apply(http, path, _cm("shared", key="same"), "bob")
    assert response.status_code == 200
    assert _managers(response.json()) == {"alice": "Apply", "bob": "Apply"}


def test_force_takes_ownership(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/forced"
    with cluster.http() as http:
        _apply(http, path, _cm("forced", key="alice", other="x"), "alice").raise_for_status()
        response = _apply(http, path, _cm("forced", key="bob"), "bob", force=True)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"key": "bob", "other": "x"}
    fields = {e["manager"]: e["fieldsV1"] for e in body["metadata"]["managedFields"]}
    assert fields["bob"] == {"f:data": {"f:key": {}}}
    assert fields["alice"] == {"f:data": {"f:other": {}}}


def test_an_update_by_another_manager_conflicts_with_apply(cluster: Cluster,
                                                           namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/mixed"
    with cluster.http() as http:
        _apply(http, path, _cm("mixed", key="alice"), "alice").raise_for_status()
        http.patch(path, params={"fieldManager": "editor"}, headers=MERGE,
                   json={"data": {"key": "edited"}}).raise_for_status()
        current = http.get(path).json()
        # an update takes the fields it changes; alice is left owning nothing
        assert _managers(current) == {"editor": "Update"}
        response = _apply(http, path, _cm("mixed", key="alice"), "alice")
    assert response.status_code == 409
    assert status_of(response)["message"] == \
        'Apply failed with 1 conflict: conflict with "editor" using v1: .data.key'


def test_apply_requires_a_field_manager(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.patch(f"/api/v1/namespaces/{namespace}/configmaps/nomanager",
                              headers=APPLY, content=yaml.safe_dump(_cm("nomanager")).encode())
    assert response.status_code == 422
    status = status_of(response)
    assert status["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                                 "value: is required for apply patch")
    assert status["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}


def test_force_is_only_for_apply(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "f"}}).raise_for_status()
        response = http.patch(f"{path}/f", params={"force": "true"}, headers=MERGE, json={})
    assert response.status_code == 422
    assert status_of(response)["message"] == ('PatchOptions.meta.k8s.io "" is invalid: force: '
                                              "Forbidden: may not be specified for non-apply "
                                              "patch")


def test_apply_of_a_custom_resource_and_its_status(cluster: Cluster, namespace: str,
                                                   widget_crd: ContractCRD) -> None:
    path = widget_crd.path(namespace=namespace, name="aw")
    body = widget_crd.obj("aw", namespace=namespace, spec={"color": "blue", "size": 2})
    with cluster.http() as http:
        created = _apply(http, path, body, "controller")
        assert created.status_code == 201
        status = {"apiVersion": widget_crd.api_version, "kind": "Widget",
                  "metadata": {"name": "aw", "namespace": namespace},
                  "status": {"phase": "Bound"}}
        status_path = widget_crd.path(namespace=namespace, name="aw", subresource="status")
        applied = _apply(http, status_path, status, "controller")
        assert applied.status_code == 200
        assert applied.json()["status"] == {"phase": "Bound"}
        assert applied.json()["spec"] == {"color": "blue", "size": 2}
        entries = [(e["manager"], e["operation"], e.get("subresource", ""))
                   for e in applied.json()["metadata"]["managedFields"]]
        assert ("controller", "Apply", "status") in entries
        assert ("controller", "Apply", "") in entries
        invalid = _apply(http, path, widget_crd.obj("aw", namespace=namespace,
                                                    spec={"color": "pink"}), "controller")
        assert invalid.status_code == 422


def test_apply_of_a_missing_kind_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = _apply(http, f"/api/v1/namespaces/{namespace}/configmaps/nokind",
                          {"metadata": {"name": "nokind"}, "data": {"a": "b"}}, "alice")
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"
