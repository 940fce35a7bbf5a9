"""What a fresh cluster holds before anyone writes: the system namespaces and the bootstrap RBAC
policy (cluster-admin, the aggregated admin/edit/view roles, discovery and self-review rights).

The user-facing roles carry a representative subset of upstream's rules (enough to prove least
privilege and namespace isolation); everything else joins them through aggregation labels, as on a
real cluster.
"""

from __future__ import annotations

from typing import Any

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_AGG = "rbac.authorization.k8s.io/aggregate-to-"
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _cluster_role(name: str, rules: list[dict[str, Any]], *, labels: dict[str, str] | None = None,
                  aggregate_from: list[str] | None = None) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**_BOOTSTRAP_LABELS, **(labels or {})},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{_AGG}{target}": "true"}} for target in aggregate_from]}
    return role


def _cluster_role_binding(name: str, role: str, *groups: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(_BOOTSTRAP_LABELS),
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                     for group in groups],
    }


def namespaces() -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
            for n in SYSTEM_NAMESPACES]


def cluster_roles() -> list[dict[str, Any]]:
    view_core = ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "services",
                 "serviceaccounts", "events", "pods/log", "pods/status", "namespaces/status",
                 "replicationcontrollers", "resourcequotas"]
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]),
                                        {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _cluster_role("admin", [], aggregate_from=["admin"]),
        _cluster_role("edit", [], labels={f"{_AGG}admin": "true"}, aggregate_from=["edit"]),
        _cluster_role("view", [], labels={f"{_AGG}edit": "true"}, aggregate_from=["view"]),
        _cluster_role("system:aggregate-to-admin", [
            _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], _READ + _WRITE),
            _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
        ], labels={f"{_AGG}admin": "true"}),
        _cluster_role("system:aggregate-to-edit", [
            _rule([""], ["configmaps", "secrets", "serviceaccounts", "services", "pods",
                         "persistentvolumeclaims", "events"], _READ + _WRITE),
            _rule(["apps"], ["deployments", "daemonsets", "statefulsets", "replicasets"],
                  _READ + _WRITE),
            _rule(["coordination.k8s.io"], ["leases"], _READ + _WRITE),
            _rule(["policy"], ["poddisruptionbudgets"], _READ + _WRITE),
            _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _READ + _WRITE),
        ], labels={f"{_AGG}edit": "true"}),
        _cluster_role("system:aggregate-to-view", [
            _rule([""], view_core, _READ),
            _rule(["apps"], ["deployments", "daemonsets", "statefulsets", "replicasets"], _READ),
            _rule(["policy"], ["poddisruptionbudgets"], _READ),
            _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _READ),
        ], labels={f"{_AGG}view": "true"}),
        _cluster_role("system:basic-user", [
            _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews",
                                             "selfsubjectrulesreviews"], ["create"]),
            _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
        ]),
        _cluster_role("system:public-info-viewer", [{"nonResourceURLs": [
            "/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        _cluster_role("system:discovery", [{"nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
            "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _cluster_role_binding("cluster-admin", "cluster-admin", "system:masters"),
        _cluster_role_binding("system:basic-user", "system:basic-user", "system:authenticated"),
        _cluster_role_binding("system:discovery", "system:discovery", "system:authenticated"),
        _cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                              "system:authenticated", "system:unauthenticated"),
    ]
