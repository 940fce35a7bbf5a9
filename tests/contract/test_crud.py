"""Create, get, list, update and delete of the core kinds the project uses, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import ContractCRD, status_of, unique


def test_configmap_round_trip(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        created = http.post(path, json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "one"}, "data": {"a": "1"}})
        assert created.status_code == 201
        body = created.json()
        assert body["kind"] == "ConfigMap"
        assert body["apiVersion"] == "v1"
        assert body["metadata"]["namespace"] == namespace
        got = http.get(f"{path}/one").json()
        assert got == body
        body["data"]["a"] = "2"
        updated = http.put(f"{path}/one", json=body)
        assert updated.status_code == 200
        assert updated.json()["data"] == {"a": "2"}
        assert int(updated.json()["metadata"]["resourceVersion"]) > \
            int(got["metadata"]["resourceVersion"])
        listed = http.get(path).json()
        assert listed["kind"] == "ConfigMapList"
        assert listed["apiVersion"] == "v1"
        assert [i["metadata"]["name"] for i in listed["items"]
                if i["metadata"]["name"] == "one"] == ["one"]
        deleted = http.delete(f"{path}/one")
        assert deleted.status_code == 200
        assert http.get(f"{path}/one").status_code == 404


def test_kind_and_api_version_may_be_left_out_on_create(cluster: Cluster,
                                                        namespace: str) -> None:
    with cluster.http() as http:
        created = http.post(f"/api/v1/namespaces/{namespace}/secrets",
                            json={"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert created.status_code == 201
    assert created.json()["kind"] == "Secret"
    assert created.json()["data"] == {"k": "dg=="}


def test_delete_of_a_configmap_answers_a_success_status(cluster: Cluster,
                                                        namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        uid = http.post(path, json={"metadata": {"name": "gone"}}).json()["metadata"]["uid"]
        body = http.delete(f"{path}/gone").json()
    assert body["kind"] == "Status"
    assert body["status"] == "Success"
    assert body["details"]["name"] == "gone"
    assert body["details"]["kind"] == "configmaps"
    assert body["details"]["uid"] == uid


def test_delete_of_a_custom_resource_answers_a_success_status(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("w", namespace=namespace))
        body = http.delete(widget_crd.path(namespace=namespace, name="w")).json()
    assert body["kind"] == "Status"
    assert body["status"] == "Success"
    assert body["details"] == {**body["details"], "name": "w", "group": widget_crd.group,
                               "kind": widget_crd.plural}


def test_delete_of_a_pod_answers_the_pod(cluster: Cluster, namespace: str) -> None:
    """Pods (like namespaces) return the deleted object rather than a Status."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeSelector": {"contract.kubevirt-usb.io/no-such-node": "true"},
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}
    path = f"/api/v1/namespaces/{namespace}/pods"
    with cluster.http() as http:
        assert http.post(path, json=pod).status_code == 201
        deleted = http.delete(f"{path}/p", params={"gracePeriodSeconds": "0"})
        assert deleted.status_code == 200
        assert deleted.json()["kind"] == "Pod"
        assert deleted.json()["metadata"]["name"] == "p"


def test_namespace_delete_answers_the_terminating_namespace(cluster: Cluster) -> None:
    name = unique("contract-ns")
    with cluster.http() as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        deleted = http.delete(f"/api/v1/namespaces/{name}")
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]


def test_missing_object_is_404_not_found(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.get(f"/api/v1/namespaces/{namespace}/configmaps/absent")
    assert response.status_code == 404
    status = status_of(response)
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "absent" not found'
    assert status["details"] == {"name": "absent", "kind": "configmaps"}


def test_missing_custom_resource_names_its_group(cluster: Cluster, namespace: str,
                                                 widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        response = http.get(widget_crd.path(namespace=namespace, name="absent"))
    status = status_of(response)
    assert status["message"] == f'{widget_crd.plural}.{widget_crd.group} "absent" not found'
    assert status["details"] == {"name": "absent", "group": widget_crd.group,
                                 "kind": widget_crd.plural}


def test_create_of_an_existing_name_is_409_already_exists(cluster: Cluster,
                                                          namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "twice"}}).raise_for_status()
        response = http.post(path, json={"metadata": {"name": "twice"}})
    assert response.status_code == 409
    status = status_of(response)
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'
    assert status["details"] == {"name": "twice", "kind": "configmaps"}


def test_update_of_a_missing_object_is_404(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.put(f"/api/v1/namespaces/{namespace}/configmaps/nope",
                            json={"metadata": {"name": "nope"}})
    assert response.status_code == 404
    assert status_of(response)["reason"] == "NotFound"


def test_create_in_a_missing_namespace_is_404(cluster: Cluster) -> None:
    missing = unique("contract-missing")
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{missing}/configmaps",
                             json={"metadata": {"name": "x"}})
    assert response.status_code == 404
    assert status_of(response)["message"] == f'namespaces "{missing}" not found'


def test_generate_name(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        created = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                            json={"metadata": {"generateName": "gen-"}})
    assert created.status_code == 201
    name = created.json()["metadata"]["name"]
    assert name.startswith("gen-")
    assert len(name) == len("gen-") + 5


def test_unconditional_update_of_a_configmap(cluster: Cluster, namespace: str) -> None:
    """Built-in kinds accept a PUT without resourceVersion (last write wins)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "u"}, "data": {"a": "1"}}).raise_for_status()
        response = http.put(f"{path}/u", json={"metadata": {"name": "u"}, "data": {"a": "2"}})
    assert response.status_code == 200
    assert response.json()["data"] == {"a": "2"}


def test_custom_resource_update_requires_a_resource_version(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("w", namespace=namespace)).raise_for_status()
        response = http.put(widget_crd.path(namespace=namespace, name="w"),
                            json=widget_crd.obj("w", namespace=namespace))
    assert response.status_code == 422
    status = status_of(response)
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        f'{widget_crd.plural}.{widget_crd.group} "w" is invalid: metadata.resourceVersion: '
        "Invalid value: 0: must be specified for an update")
    assert status["details"]["kind"] == widget_crd.plural


def test_name_on_the_url_must_match_the_body(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "a"}}).raise_for_status()
        response = http.put(f"{path}/a", json={"metadata": {"name": "b"}})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"
    assert status_of(response)["message"] == \
        "the name of the object (b) does not match the name on the URL (a)"


def test_namespace_of_the_body_must_match_the_url(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"metadata": {"name": "a", "namespace": "default"}})
    assert response.status_code == 400
    assert status_of(response)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request")


@pytest.mark.parametrize("kind", ["nodes", "namespaces"])
def test_cluster_scoped_kinds_round_trip(cluster: Cluster, kind: str) -> None:
    name = unique("contract")
    with cluster.http() as http:
        # a Node nobody runs: unschedulable and tainted, so a real cluster puts nothing on it
        spec = {"unschedulable": True, "taints": [{"key": "contract.kubevirt-usb.io/fake",
                                                   "effect": "NoExecute"}]} \
            if kind == "nodes" else {}
        created = http.post(f"/api/v1/{kind}", json={"metadata": {"name": name,
                                                                 "labels": {"t": "x"}},
                                                    "spec": spec})
        assert created.status_code == 201
        assert "namespace" not in created.json()["metadata"]
        got = http.get(f"/api/v1/{kind}/{name}")
        assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]
        assert http.delete(f"/api/v1/{kind}/{name}").status_code == 200


def test_core_kinds_the_project_uses(cluster: Cluster, namespace: str) -> None:
    objects: dict[str, dict[str, Any]] = {
        f"/api/v1/namespaces/{namespace}/serviceaccounts": {"metadata": {"name": "sa"}},
        f"/api/v1/namespaces/{namespace}/events": {
            "metadata": {"name": "ev"}, "type": "Normal", "reason": "Tested",
            "message": "contract", "involvedObject": {"kind": "ConfigMap", "name": "x",
                                                      "namespace": namespace}},
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases": {
            "metadata": {"name": "lease"}, "spec": {"holderIdentity": "me",
                                                    "leaseDurationSeconds": 15}},
    }
    with cluster.http() as http:
        for path, body in objects.items():
            created = http.post(path, json=body)
            assert created.status_code == 201, (path, created.text)
            name = body["metadata"]["name"]
            assert http.get(f"{path}/{name}").status_code == 200
            assert http.delete(f"{path}/{name}").status_code == 200


def test_dry_run_create_stores_nothing(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        response = http.post(path, params={"dryRun": "All"}, json={"metadata": {"name": "dry"}})
        assert response.status_code == 201
        assert response.json()["metadata"]["name"] == "dry"
        assert http.get(f"{path}/dry").status_code == 404
