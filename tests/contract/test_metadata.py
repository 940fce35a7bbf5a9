"""Object metadata semantics: uid, resourceVersion, generation, creationTimestamp, finalizers,
ownerReferences with garbage collection, and namespace deletion."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.contract.conftest import Cluster
from tests.contract.support import MERGE, ContractCRD, status_of, unique
from tests.polling import wait_until


def _rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def test_uid_creation_timestamp_and_resource_version(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        first = http.post(path, json={"metadata": {"name": "a"}}).json()
        second = http.post(path, json={"metadata": {"name": "b"}}).json()
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert len(first["metadata"]["uid"]) == 36
    created = dt.datetime.strptime(first["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert created.year >= 2024
    # one counter for the whole cluster: later writes carry larger versions
    assert _rv(second) > _rv(first)


def test_resource_version_is_cluster_wide(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        cm = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                       json={"metadata": {"name": "a"}}).json()
        secret = http.post(f"/api/v1/namespaces/{namespace}/secrets",
                           json={"metadata": {"name": "a"}}).json()
        lease = http.post(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
                          json={"metadata": {"name": "a"}, "spec": {}}).json()
    assert _rv(cm) < _rv(secret) < _rv(lease)


def test_server_owned_metadata_is_not_taken_from_the_client(cluster: Cluster,
                                                            namespace: str) -> None:
    body = {"metadata": {"name": "a", "uid": "00000000-0000-0000-0000-000000000000",
                         "resourceVersion": "0", "creationTimestamp": "2000-01-01T00:00:00Z"}}
    with cluster.http() as http:
        created = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["uid"] != "00000000-0000-0000-0000-000000000000"
    assert meta["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert meta["resourceVersion"] != "0"


def test_a_create_with_a_resource_version_is_refused_by_the_storage(cluster: Cluster,
                                                                     namespace: str) -> None:
    """etcd3's Create refuses a set resourceVersion with an error that is no Status of its own:
    500 without a reason (after validation, so an invalid object is still 422)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        refused = http.post(path, json={"metadata": {"name": "a", "resourceVersion": "5"}})
        invalid = http.post(path, json={"metadata": {"name": "B", "resourceVersion": "5"}})
        assert http.get(f"{path}/a").status_code == 404
    assert refused.status_code == 500
    assert refused.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "code": 500,
                              "message": "resourceVersion should not be set on objects to be "
                                         "created"}
    assert invalid.status_code == 422


def test_generation_counts_spec_changes_only(cluster: Cluster, namespace: str,
                                             widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("g", namespace=namespace)).json()
        assert created["metadata"]["generation"] == 1
        labelled = http.patch(widget_crd.path(namespace=namespace, name="g"), headers=MERGE,
                              json={"metadata": {"labels": {"x": "y"}}}).json()
        assert labelled["metadata"]["generation"] == 1
        assert _rv(labelled) > _rv(created)
        status = http.patch(widget_crd.path(namespace=namespace, name="g", subresource="status"),
                            headers=MERGE,
                            json={"status": {"phase": "Ready"}}).json()
        assert status["metadata"]["generation"] == 1
        assert status["status"] == {"phase": "Ready"}
        spec = http.patch(widget_crd.path(namespace=namespace, name="g"), headers=MERGE,
                          json={"spec": {"size": 7}}).json()
        assert spec["metadata"]["generation"] == 2
        same = http.patch(widget_crd.path(namespace=namespace, name="g"), headers=MERGE,
                          json={"spec": {"size": 7}}).json()
        assert same["metadata"]["generation"] == 2
        assert _rv(same) == _rv(spec)  # a write that changes nothing is not stored


def test_status_subresource_splits_spec_and_status(cluster: Cluster, namespace: str,
                                                   widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        with_status = {**widget_crd.obj("s", namespace=namespace), "status": {"phase": "X"}}
        created = http.post(widget_crd.path(namespace=namespace), json=with_status).json()
        assert "status" not in created  # status is dropped on create
        created["status"] = {"phase": "Set"}
        created["spec"]["size"] = 3
        via_status = http.put(widget_crd.path(namespace=namespace, name="s", subresource="status"),
                              json=created).json()
        assert via_status["status"] == {"phase": "Set"}
        assert via_status["spec"]["size"] == 1  # spec ignored on /status
        via_status["status"] = {"phase": "Ignored"}
        via_status["spec"]["size"] = 5
        via_main = http.put(widget_crd.path(namespace=namespace, name="s"), json=via_status).json()
        assert via_main["status"] == {"phase": "Set"}  # status ignored on the main resource
        assert via_main["spec"]["size"] == 5


def test_finalizers_hold_deletion_until_removed(cluster: Cluster, namespace: str,
                                                widget_crd: ContractCRD) -> None:
    path = widget_crd.path(namespace=namespace, name="f")
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace), json=widget_crd.obj(
            "f", namespace=namespace, finalizers=["contract.kubevirt-usb.io/hold"]))
        deleting = http.delete(path)
        assert deleting.status_code == 200
        body = deleting.json()
        assert body["kind"] == "Widget"
        assert body["metadata"]["deletionTimestamp"]
        assert body["metadata"]["deletionGracePeriodSeconds"] == 0
        assert body["metadata"]["generation"] == 2  # marking for deletion bumps generation
        still = http.get(path)
        assert still.status_code == 200
        assert still.json()["metadata"]["finalizers"] == ["contract.kubevirt-usb.io/hold"]
        again = http.delete(path)  # deleting again changes nothing
        assert again.json()["metadata"]["deletionTimestamp"] == \
            body["metadata"]["deletionTimestamp"]
        added = http.patch(path, headers=MERGE, json={"metadata": {"finalizers": [
            "contract.kubevirt-usb.io/hold", "contract.kubevirt-usb.io/new"]}})
        assert added.status_code == 422
        assert status_of(added)["details"]["causes"][0]["field"] == "metadata.finalizers"
        removed = http.patch(path, headers=MERGE, json={"metadata": {"finalizers": None}})
        assert removed.status_code == 200
        assert http.get(path).status_code == 404


def _exists(http: httpx.Client, path: str) -> bool:
    return http.get(path).status_code == 200


def _owner_and_dependent(http: httpx.Client, namespace: str) -> tuple[str, str, str]:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = http.post(path, json={"metadata": {"name": "owner"}}).json()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    http.post(path, json={"metadata": {"name": "dependent", "ownerReferences": [ref]}}
              ).raise_for_status()
    return f"{path}/owner", f"{path}/dependent", owner["metadata"]["uid"]


def test_background_garbage_collection_of_dependents(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        owner, dependent, _uid = _owner_and_dependent(http, namespace)
        assert http.delete(owner).status_code == 200
        assert not _exists(http, owner)
        wait_until(lambda: not _exists(http, dependent), what="the dependent to be collected")


def test_orphan_deletion_keeps_dependents(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        owner, dependent, _uid = _owner_and_dependent(http, namespace)
        response = http.request("DELETE", owner, json={"propagationPolicy": "Orphan"})
        assert response.status_code == 200
        wait_until(lambda: not _exists(http, owner), what="the owner to be removed")
        kept = http.get(dependent).json()
        assert not kept["metadata"].get("ownerReferences")


def test_foreground_deletion_removes_dependents_first(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        owner, dependent, _uid = _owner_and_dependent(http, namespace)
        response = http.request("DELETE", owner, json={"propagationPolicy": "Foreground"})
        assert response.status_code == 200
        assert "foregroundDeletion" in response.json()["metadata"]["finalizers"]
        wait_until(lambda: not _exists(http, dependent), what="the dependent to be deleted")
        wait_until(lambda: not _exists(http, owner), what="the owner to be removed")


def test_delete_preconditions(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        created = http.post(path, json={"metadata": {"name": "p"}}).json()
        stale = http.request("DELETE", f"{path}/p",
                             json={"preconditions": {"resourceVersion": "1"}})
        assert stale.status_code == 409
        assert status_of(stale)["reason"] == "Conflict"
        assert status_of(stale)["message"] == (
            'Operation cannot be fulfilled on ConfigMap "p": the ResourceVersion in the '
            f"precondition (1) does not match the ResourceVersion in record "
            f"({created['metadata']['resourceVersion']}). The object might have been modified")
        wrong_uid = http.request("DELETE", f"{path}/p", json={"preconditions": {
            "uid": "00000000-0000-0000-0000-000000000000"}})
        assert wrong_uid.status_code == 409
        status = status_of(wrong_uid)
        assert status["message"] == (
            'Operation cannot be fulfilled on ConfigMap "p": the UID in the precondition '
            f"(00000000-0000-0000-0000-000000000000) does not match the UID in record "
            f"({created['metadata']['uid']}). The object might have been deleted and then "
            "recreated")
        assert status["details"] == {"name": "p", "kind": "ConfigMap"}
        ok = http.request("DELETE", f"{path}/p", json={"preconditions": {
            "uid": created["metadata"]["uid"],
            "resourceVersion": created["metadata"]["resourceVersion"]}})
        assert ok.status_code == 200


def test_namespace_deletion_removes_its_objects(cluster: Cluster, widget_crd: ContractCRD) -> None:
    name = unique("contract-ns")
    hold = "contract.kubevirt-usb.io/hold"
    cm_path = f"/api/v1/namespaces/{name}/configmaps"
    with cluster.http() as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        http.post(cm_path, json={"metadata": {"name": "plain"}}).raise_for_status()
        http.post(widget_crd.path(namespace=name), json=widget_crd.obj(
            "held", namespace=name, finalizers=[hold])).raise_for_status()
        http.delete(f"/api/v1/namespaces/{name}").raise_for_status()
        wait_until(lambda: not _exists(http, f"{cm_path}/plain"), what="the configmap removed")
        held = wait_until(
            lambda: http.get(widget_crd.path(namespace=name, name="held")).json()["metadata"].get(
                "deletionTimestamp"), what="the held widget marked for deletion")
        assert held
        ns = http.get(f"/api/v1/namespaces/{name}").json()
        assert ns["status"]["phase"] == "Terminating"
        refused = http.post(cm_path, json={"metadata": {"name": "late"}})
        assert refused.status_code == 403
        status = status_of(refused)
        assert status["reason"] == "Forbidden"
        assert status["message"] == (f'configmaps "late" is forbidden: unable to create new '
                                     f"content in namespace {name} because it is being terminated")
        http.patch(widget_crd.path(namespace=name, name="held"), headers=MERGE,
                   json={"metadata": {"finalizers": None}}).raise_for_status()
        wait_until(lambda: http.get(f"/api/v1/namespaces/{name}").status_code == 404,
                   what="the namespace to be removed", timeout=120)
