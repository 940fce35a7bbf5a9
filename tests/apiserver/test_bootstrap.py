"""What a fresh cluster holds: system namespaces and the bootstrap RBAC policy."""

from __future__ import annotations

from kubevirt_usb.apiserver import bootstrap


def test_system_namespaces() -> None:
    names = [ns["metadata"]["name"] for ns in bootstrap.namespaces()]
    assert names == ["default", "kube-system", "kube-public", "kube-node-lease"]


def test_cluster_roles_aggregate_like_upstream() -> None:
    roles = {r["metadata"]["name"]: r for r in bootstrap.cluster_roles()}
    assert roles["cluster-admin"]["rules"][0] == {"apiGroups": ["*"], "resources": ["*"],
                                                  "verbs": ["*"]}
    assert roles["admin"]["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]
    assert roles["edit"]["metadata"]["labels"][
        "rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert roles["system:public-info-viewer"]["rules"][0]["nonResourceURLs"] == [
        "/healthz", "/livez", "/readyz", "/version", "/version/"]


def test_bindings_give_anonymous_only_public_information() -> None:
    bindings = {b["metadata"]["name"]: b for b in bootstrap.cluster_role_bindings()}
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated", "system:unauthenticated"]
    assert [s["name"] for s in bindings["system:discovery"]["subjects"]] == [
        "system:authenticated"]
    assert bindings["cluster-admin"]["roleRef"]["name"] == "cluster-admin"
