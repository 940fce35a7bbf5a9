"""PATCH: JSON merge patch, JSON patch, strategic merge patch on core kinds, and their errors."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import JSON_PATCH, MERGE, STRATEGIC, ContractCRD, status_of


def test_merge_patch_sets_and_removes_keys(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}})
        patched = http.patch(f"{path}/m", headers=MERGE,
                             json={"data": {"a": None, "c": "3"},
                                   "metadata": {"labels": {"l": "v"}}})
    assert patched.status_code == 200
    body = patched.json()
    assert body["data"] == {"b": "2", "c": "3"}
    assert body["metadata"]["labels"] == {"l": "v"}


def test_json_patch_operations(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "j"}, "data": {"a": "1", "b": "2"}})
        patched = http.patch(f"{path}/j", headers=JSON_PATCH, json=[
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "replace", "path": "/data/a", "value": "10"},
            {"op": "remove", "path": "/data/b"},
            {"op": "add", "path": "/data/c", "value": "3"},
            {"op": "copy", "from": "/data/c", "path": "/data/d"},
            {"op": "move", "from": "/data/d", "path": "/data/e"},
        ])
    assert patched.status_code == 200
    assert patched.json()["data"] == {"a": "10", "c": "3", "e": "3"}


def test_failed_json_patch_test_is_422(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "t"}, "data": {"a": "1"}})
        response = http.patch(f"{path}/t", headers=JSON_PATCH,
                              json=[{"op": "test", "path": "/data/a", "value": "2"}])
        unchanged = http.get(f"{path}/t").json()
    assert response.status_code == 422
    assert status_of(response)["reason"] == "Invalid"
    assert unchanged["data"] == {"a": "1"}


def test_json_patch_that_is_not_a_list_is_400(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "n"}})
        response = http.patch(f"{path}/n", headers=JSON_PATCH, json={"op": "add"})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_strategic_merge_patch_merges_lists_by_key(cluster: Cluster, namespace: str) -> None:
    """ServiceAccount.secrets merges by name; a JSON merge patch would replace the list."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "sa"},
                              "secrets": [{"name": "one"}, {"name": "two"}]}).raise_for_status()
        merged = http.patch(f"{path}/sa", headers=STRATEGIC,
                            json={"secrets": [{"name": "three"}]})
        assert merged.status_code == 200
        assert [s["name"] for s in merged.json()["secrets"]] == ["three", "one", "two"]
        deleted = http.patch(f"{path}/sa", headers=STRATEGIC,
                             json={"secrets": [{"name": "one", "$patch": "delete"}]})
        assert [s["name"] for s in deleted.json()["secrets"]] == ["three", "two"]
        replaced = http.patch(f"{path}/sa", headers=MERGE, json={"secrets": [{"name": "x"}]})
        assert [s["name"] for s in replaced.json()["secrets"]] == ["x"]


def test_strategic_merge_patch_of_maps(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "s", "labels": {"a": "1"}},
                              "data": {"x": "1"}})
        patched = http.patch(f"{path}/s", headers=STRATEGIC,
                             json={"metadata": {"labels": {"b": "2"}}, "data": {"x": None}})
    assert patched.status_code == 200
    assert patched.json()["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert "data" not in patched.json() or patched.json()["data"] == {}


def test_strategic_merge_patch_of_a_custom_resource_is_415(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("s", namespace=namespace))
        response = http.patch(widget_crd.path(namespace=namespace, name="s"), headers=STRATEGIC,
                              json={"spec": {"size": 2}})
    assert response.status_code == 415
    status = status_of(response)
    assert status["reason"] == "UnsupportedMediaType"
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_patch_with_an_unknown_content_type_is_415(cluster: Cluster, namespace: str,
                                                   content_type: str | None) -> None:
    """go-restful's route refuses a Content-Type the PATCH route does not consume, before the
    handler (and before looking for the object), with its own short message."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    headers = {"Content-Type": content_type} if content_type else {}
    with cluster.http() as http:
        response = http.patch(f"{path}/absent", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert status_of(response) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 415,
        "message": "415: Unsupported Media Type", "reason": "UnsupportedMediaType",
        "details": {}}


def test_patch_of_a_missing_object_is_404(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.patch(f"/api/v1/namespaces/{namespace}/configmaps/absent",
                              headers=MERGE, json={"data": {"a": "1"}})
    assert response.status_code == 404
    assert status_of(response)["message"] == 'configmaps "absent" not found'


def test_malformed_merge_patch_is_400(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "b"}})
        response = http.patch(f"{path}/b", headers=MERGE, content=b"{not json")
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_merge_patch_of_a_custom_resource_is_validated(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("v", namespace=namespace))
        response = http.patch(widget_crd.path(namespace=namespace, name="v"), headers=MERGE,
                              json={"spec": {"color": "purple"}})
    assert response.status_code == 422
    causes = status_of(response)["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [("FieldValueNotSupported",
                                                            "spec.color")]


def test_patch_of_the_status_subresource(cluster: Cluster, namespace: str,
                                         widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("st", namespace=namespace))
        patched = http.patch(widget_crd.path(namespace=namespace, name="st", subresource="status"),
                             headers=MERGE,
                             json={"status": {"phase": "Ready"}, "spec": {"size": 9}})
    assert patched.status_code == 200
    assert patched.json()["status"] == {"phase": "Ready"}
    assert patched.json()["spec"]["size"] == 1
