"""The protobuf wire format kubectl 1.33+ speaks for built-in kinds: bodies sent as
`application/vnd.kubernetes.protobuf` are decoded, and a client that accepts protobuf first gets
protobuf for built-in kinds (objects, lists, Status errors, also about custom resources) and
JSON for custom resources.

The bodies are read and written with the emulator's own codec, so on a real server these cases
also check that codec against kube-apiserver's."""

from __future__ import annotations

from typing import Any

import httpx

from kubevirt_usb.apiserver import protobuf
from tests.contract.conftest import Cluster
from tests.contract.support import ContractCRD, status_of

PROTOBUF = protobuf.MEDIA_TYPE
PROTOBUF_FIRST = {"Accept": f"{PROTOBUF},application/json"}


def _post_protobuf(http: httpx.Client, path: str, obj: dict[str, Any]) -> httpx.Response:
    return http.post(path, content=protobuf.encode(obj),
                     headers={"Content-Type": PROTOBUF, **PROTOBUF_FIRST})


def test_a_configmap_sent_as_protobuf_is_stored_and_answered_in_protobuf(
        cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    sent = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "pb", "labels": {"tier": "web"}},
            "data": {"a": "1", "yes": "no"}, "binaryData": {"bin": "AAEC"}}
    with cluster.http() as http:
        created = _post_protobuf(http, path, sent)
        assert created.status_code == 201, created.content
        assert created.headers["content-type"] == PROTOBUF
        answered = protobuf.decode(created.content)
        as_json = http.get(f"{path}/pb").json()
    assert answered["metadata"]["uid"] == as_json["metadata"]["uid"]
    for got in (answered, as_json):
        assert got["data"] == {"a": "1", "yes": "no"}
        assert got["binaryData"] == {"bin": "AAEC"}
        assert got["metadata"]["labels"] == {"tier": "web"}
        assert got["metadata"]["creationTimestamp"] == as_json["metadata"]["creationTimestamp"]


def test_rbac_objects_sent_as_protobuf(cluster: Cluster, namespace: str) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pb"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "pb"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "pb"},
               "subjects": [{"kind": "ServiceAccount", "name": "default",
                             "namespace": namespace}]}
    with cluster.http() as http:
        assert _post_protobuf(http, f"{rbac}/roles", role).status_code == 201
        assert _post_protobuf(http, f"{rbac}/rolebindings", binding).status_code == 201
        got_role = http.get(f"{rbac}/roles/pb").json()
        got_binding = http.get(f"{rbac}/rolebindings/pb").json()
    assert got_role["rules"] == role["rules"]
    assert got_binding["roleRef"] == binding["roleRef"]
    assert got_binding["subjects"] == binding["subjects"]


def test_a_list_and_an_error_are_protobuf_too(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "one"}}).raise_for_status()
        listed = http.get(path, headers=PROTOBUF_FIRST)
        missing = http.get(f"{path}/missing", headers=PROTOBUF_FIRST)
    assert listed.headers["content-type"] == PROTOBUF
    items = protobuf.decode(listed.content)
    assert items["kind"] == "ConfigMapList"
    assert "one" in [i["metadata"]["name"] for i in items["items"]]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROTOBUF
    status = protobuf.decode(missing.content)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)
    assert status["message"] == 'configmaps "missing" not found'


def test_json_first_is_json(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        listed = http.get(f"/api/v1/namespaces/{namespace}/configmaps",
                          headers={"Accept": f"application/json,{PROTOBUF}"})
    assert listed.headers["content-type"] == "application/json"


def test_custom_resources_answer_json_to_a_protobuf_first_client_but_errors_protobuf(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("pb", namespace=namespace),
                            headers=PROTOBUF_FIRST)
        missing = http.get(widget_crd.path(namespace=namespace, name="missing"),
                           headers=PROTOBUF_FIRST)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    assert created.json()["metadata"]["name"] == "pb"
    # an error is a Status, a built-in kind: protobuf
    assert missing.headers["content-type"] == PROTOBUF
    assert protobuf.decode(missing.content)["reason"] == "NotFound"


def test_a_body_that_is_not_protobuf_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b'{"metadata": {"name": "x"}}',
                             headers={"Content-Type": PROTOBUF})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"
