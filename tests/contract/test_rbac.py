"""Authentication (bearer tokens) and RBAC: verbs, resources, subresources, resourceNames,
namespace isolation, SelfSubjectAccessReview and SubjectAccessReview. Users are ServiceAccounts
with TokenRequest tokens, so every case also runs on a real cluster."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import MERGE, ContractCRD, status_of, unique
from tests.polling import wait_until

RBAC = "/apis/rbac.authorization.k8s.io/v1"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def _grant(http: httpx.Client, namespace: str, sa: str, rules: list[dict[str, Any]]) -> None:
    role = unique("role")
    http.post(f"{RBAC}/namespaces/{namespace}/roles",
              json={"metadata": {"name": role}, "rules": rules}).raise_for_status()
    http.post(f"{RBAC}/namespaces/{namespace}/rolebindings", json={
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    }).raise_for_status()


def _can(http: httpx.Client, **attributes: str) -> bool:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}
    response = http.post(SSAR, json=review)
    assert response.status_code == 201, response.text
    return bool(response.json()["status"]["allowed"])


def _wait_allowed(http: httpx.Client, **attributes: str) -> None:
    """RBAC changes reach a real server's authorizer through an informer: wait for them."""
    wait_until(lambda: _can(http, **attributes), what=f"permission {attributes}")


@pytest.fixture
def reader(cluster: Cluster, namespace: str) -> str:
    """A ServiceAccount token allowed get/list/watch on configmaps in `namespace` only."""
    token = cluster.service_account_token(namespace=namespace, name="reader")
    with cluster.http() as http:
        _grant(http, namespace, "reader", [{"apiGroups": [""], "resources": ["configmaps"],
                                            "verbs": ["get", "list", "watch"]}])
        http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                  json={"metadata": {"name": "visible"}}).raise_for_status()
    with cluster.http(token=token) as http:
        _wait_allowed(http, verb="list", resource="configmaps", namespace=namespace)
    return token


def test_unknown_token_is_401(cluster: Cluster) -> None:
    with cluster.http(token="not-a-token") as http:
        response = http.get("/api/v1/namespaces")
    assert response.status_code == 401
    status = status_of(response)
    assert status["reason"] == "Unauthorized"
    assert status["message"] == "Unauthorized"


def test_token_request_gives_a_working_token(cluster: Cluster, namespace: str) -> None:
    token = cluster.service_account_token(namespace=namespace, name="who")
    with cluster.http(token=token) as http:
        review = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review.status_code == 201
    user = review.json()["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:who"
    assert "system:serviceaccounts" in user["groups"]
    assert f"system:serviceaccounts:{namespace}" in user["groups"]
    assert "system:authenticated" in user["groups"]


def test_granted_verbs_are_allowed(cluster: Cluster, namespace: str, reader: str) -> None:
    with cluster.http(token=reader) as http:
        listed = http.get(f"/api/v1/namespaces/{namespace}/configmaps")
        got = http.get(f"/api/v1/namespaces/{namespace}/configmaps/visible")
    assert listed.status_code == 200
    assert got.status_code == 200


def test_other_verbs_are_403_with_the_upstream_sentence(cluster: Cluster, namespace: str,
                                                        reader: str) -> None:
    user = f"system:serviceaccount:{namespace}:reader"
    with cluster.http(token=reader) as http:
        create = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                           json={"metadata": {"name": "nope"}})
        delete = http.delete(f"/api/v1/namespaces/{namespace}/configmaps/visible")
    assert create.status_code == 403
    status = status_of(create)
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'configmaps is forbidden: User "{user}" cannot create resource "configmaps" in API '
        f'group "" in the namespace "{namespace}"')
    assert status["details"] == {"kind": "configmaps"}
    assert status_of(delete)["message"] == (
        f'configmaps "visible" is forbidden: User "{user}" cannot delete resource "configmaps" '
        f'in API group "" in the namespace "{namespace}"')
    assert status_of(delete)["details"] == {"name": "visible", "kind": "configmaps"}


def test_other_resources_are_403(cluster: Cluster, namespace: str, reader: str) -> None:
    with cluster.http(token=reader) as http:
        secrets = http.get(f"/api/v1/namespaces/{namespace}/secrets")
        leases = http.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
    assert secrets.status_code == 403
    assert leases.status_code == 403
    assert status_of(leases)["message"].endswith(
        f'cannot list resource "leases" in API group "coordination.k8s.io" in the namespace '
        f'"{namespace}"')


@pytest.mark.parametrize(("method", "path", "verb", "resource", "name", "admin_code"), [
    # a missing object: the reader may get configmaps, but not secrets
    ("GET", "/api/v1/namespaces/{ns}/secrets/missing", "get", "secrets", "missing", 404),
    # an unknown resource below a known group version, and an unknown group
    ("GET", "/apis/apps/v1/nosuch", "list", "nosuch", "", 404),
    ("GET", "/api/v1/namespaces/{ns}/nosuch", "list", "nosuch", "", 404),
    ("GET", "/apis/no-such-group.example/v1/things", "list", "things", "", 404),
    # verbs the resource does not serve: a list of reviews, a POST to a name
    ("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "list",
     "selfsubjectaccessreviews", "", 405),
    ("POST", "/api/v1/namespaces/{ns}/secrets/x", "create", "secrets", "x", 405),
])
def test_authorization_comes_before_routing(cluster: Cluster, namespace: str, reader: str,
                                            method: str, path: str, verb: str, resource: str,
                                            name: str, admin_code: int) -> None:
    """kube-apiserver asks RBAC before it looks for a handler or an object: a user without the
    right gets 403 where the cluster admin gets 404 or 405."""
    url = path.format(ns=namespace)
    body = {"json": {"metadata": {"name": "x"}}} if method == "POST" else {}
    with cluster.http(token=reader) as http:
        refused = http.request(method, url, **body)  # type: ignore[arg-type]
    with cluster.http() as http:
        admin = http.request(method, url, **body)  # type: ignore[arg-type]
    assert refused.status_code == 403, refused.text
    status = status_of(refused)
    user = f"system:serviceaccount:{namespace}:reader"
    group = url.split("/")[2] if url.startswith("/apis/") else ""
    qualified = f"{resource}.{group}" if group else resource
    who = f'{qualified} "{name}"' if name else qualified
    where = f' in the namespace "{namespace}"' if "/namespaces/" in url else \
        " at the cluster scope"
    assert status["message"] == (
        f'{who} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
        f'"{group}"{where}')
    assert admin.status_code == admin_code, admin.text


def test_an_unknown_subresource_is_403_before_404(cluster: Cluster, namespace: str,
                                                  reader: str) -> None:
    user = f"system:serviceaccount:{namespace}:reader"
    with cluster.http(token=reader) as http:
        refused = http.get(f"/api/v1/namespaces/{namespace}/configmaps/visible/nosub")
    assert refused.status_code == 403
    assert status_of(refused)["message"] == (
        f'configmaps "visible" is forbidden: User "{user}" cannot get resource '
        f'"configmaps/nosub" in API group "" in the namespace "{namespace}"')
    assert status_of(refused)["details"] == {"name": "visible", "kind": "configmaps"}


def test_namespace_isolation(cluster: Cluster, namespace: str, reader: str) -> None:
    user = f"system:serviceaccount:{namespace}:reader"
    with cluster.http(token=reader) as http:
        other = http.get("/api/v1/namespaces/default/configmaps")
        everywhere = http.get("/api/v1/configmaps")
    assert other.status_code == 403
    assert everywhere.status_code == 403
    assert status_of(everywhere)["message"] == (
        f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API '
        'group "" at the cluster scope')


def test_resource_names_restrict_to_named_objects(cluster: Cluster, namespace: str) -> None:
    token = cluster.service_account_token(namespace=namespace, name="named")
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        for name in ("mine", "theirs"):
            http.post(path, json={"metadata": {"name": name}}).raise_for_status()
        _grant(http, namespace, "named", [{"apiGroups": [""], "resources": ["configmaps"],
                                           "resourceNames": ["mine"],
                                           "verbs": ["get", "patch"]}])
    with cluster.http(token=token) as http:
        _wait_allowed(http, verb="get", resource="configmaps", namespace=namespace,
                      name="mine")
        assert http.get(f"{path}/mine").status_code == 200
        assert http.patch(f"{path}/mine", headers=MERGE, json={"data": {"a": "b"}}
                          ).status_code == 200
        assert http.get(f"{path}/theirs").status_code == 403
        assert http.get(path).status_code == 403  # a list names no object


def test_subresources_are_separate_permissions(cluster: Cluster, namespace: str,
                                               widget_crd: ContractCRD) -> None:
    token = cluster.service_account_token(namespace=namespace, name="statuswriter")
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("w", namespace=namespace)
                  ).raise_for_status()
        _grant(http, namespace, "statuswriter", [
            {"apiGroups": [widget_crd.group], "resources": [f"{widget_crd.plural}/status"],
             "verbs": ["get", "patch", "update"]}])
    with cluster.http(token=token) as http:
        _wait_allowed(http, verb="patch", group=widget_crd.group, resource=widget_crd.plural,
                      subresource="status", namespace=namespace, name="w")
        status = http.patch(widget_crd.path(namespace=namespace, name="w", subresource="status"),
                            headers=MERGE,
                            json={"status": {"phase": "Ok"}})
        main = http.patch(widget_crd.path(namespace=namespace, name="w"), headers=MERGE,
                          json={"spec": {"size": 2}})
    assert status.status_code == 200
    assert main.status_code == 403
    assert status_of(main)["message"].startswith(f'{widget_crd.plural}.{widget_crd.group} "w" '
                                                 "is forbidden")


def test_cluster_role_binding_grants_everywhere(cluster: Cluster, namespace: str) -> None:
    token = cluster.service_account_token(namespace=namespace, name="nodes")
    name = unique("contract-nodes")
    with cluster.http() as http:
        http.post(f"{RBAC}/clusterroles", json={"metadata": {"name": name}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
                  ).raise_for_status()
        http.post(f"{RBAC}/clusterrolebindings", json={
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "nodes", "namespace": namespace}],
        }).raise_for_status()
    try:
        with cluster.http(token=token) as http:
            _wait_allowed(http, verb="list", resource="nodes")
            assert http.get("/api/v1/nodes").status_code == 200
            assert http.get("/api/v1/nodes/any").status_code == 403
    finally:
        with cluster.http() as http:
            http.delete(f"{RBAC}/clusterrolebindings/{name}")
            http.delete(f"{RBAC}/clusterroles/{name}")


def test_self_subject_access_review(cluster: Cluster, namespace: str, reader: str) -> None:
    with cluster.http(token=reader) as http:
        yes = http.post(SSAR, json={"spec": {"resourceAttributes": {
            "verb": "list", "resource": "configmaps", "namespace": namespace}}})
        no = http.post(SSAR, json={"spec": {"resourceAttributes": {
            "verb": "list", "resource": "secrets", "namespace": namespace}}})
    assert yes.status_code == 201
    assert yes.json()["kind"] == "SelfSubjectAccessReview"
    assert yes.json()["status"]["allowed"] is True
    assert no.json()["status"]["allowed"] is False
    assert no.json()["status"].get("denied") is not True


def test_subject_access_review_by_an_admin(cluster: Cluster, namespace: str,
                                           reader: str) -> None:
    user = f"system:serviceaccount:{namespace}:reader"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
              "system:authenticated"]
    with cluster.http() as http:
        yes = http.post(SAR, json={"spec": {"user": user, "groups": groups,
                                             "resourceAttributes": {
                                                 "verb": "get", "resource": "configmaps",
                                                 "namespace": namespace}}})
        no = http.post(SAR, json={"spec": {"user": user, "groups": groups,
                                            "resourceAttributes": {
                                                "verb": "delete", "resource": "configmaps",
                                                "namespace": namespace}}})
    assert yes.status_code == 201
    assert yes.json()["status"]["allowed"] is True
    assert no.json()["status"]["allowed"] is False


def test_subject_access_review_needs_permission(cluster: Cluster, namespace: str,
                                                reader: str) -> None:
    with cluster.http(token=reader) as http:
        response = http.post(SAR, json={"spec": {"user": "someone", "resourceAttributes": {
            "verb": "get", "resource": "pods"}}})
    assert response.status_code == 403


def test_subject_access_review_without_a_subject_is_422(cluster: Cluster) -> None:
    with cluster.http() as http:
        response = http.post(SAR, json={"spec": {"resourceAttributes": {"verb": "get",
                                                                         "resource": "pods"}}})
    assert response.status_code == 422
    assert status_of(response)["reason"] == "Invalid"
