"""RBAC decisions, aggregation and reviews match a kube-apiserver's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.errors import APIError
from kubevirt_usb.apiserver.rbac import (
    Authorizer,
    Decision,
    RequestAttributes,
    access_review,
    aggregate_cluster_roles,
    rules_review,
)

ALICE = UserInfo(name="alice", groups=("devs", "system:authenticated"))
BOB = UserInfo(name="bob", groups=("system:authenticated",))
ADMIN = UserInfo(name="root", groups=("system:masters",))
AGENT = UserInfo.service_account(namespace="usb", name="agent")


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def cluster_role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
                 aggregation: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}},
                           "rules": list(rules)}
    if aggregation is not None:
        out["aggregationRule"] = {"clusterRoleSelectors": aggregation}
    return out


def role(namespace: str, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}


def binding(name: str, role_kind: str, role_name: str, *subjects: dict[str, str],
            namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": role_kind, "name": role_name},
            "subjects": list(subjects)}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def sa(name: str, namespace: str = "") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace
                                                       else {})}


def get(resource: str, *, group: str = "", namespace: str = "", name: str = "",
        subresource: str = "", verb: str = "get") -> RequestAttributes:
    return RequestAttributes(verb=verb, api_group=group, resource=resource,
                             subresource=subresource, namespace=namespace, name=name)


AUTHZ = Authorizer(
    cluster_roles=[
        cluster_role("pod-reader", rule([""], ["pods", "pods/log"], ["get", "list", "watch"])),
        cluster_role("usb-admin", rule(["usb.kubevirt.io"], ["*"], ["*"])),
        cluster_role("vmi-usbredir", rule(["subresources.kubevirt.io"],
                                          ["virtualmachineinstances/usbredir"], ["get"])),
        cluster_role("status-writer", rule(["*"], ["*/status"], ["update", "patch"])),
        cluster_role("one-node", rule([""], ["nodes"], ["get", "update"],
                                      resourceNames=["node-1"])),
        cluster_role("metrics", {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}),
    ],
    roles=[role("usb", "lease-holder", rule(["coordination.k8s.io"], ["leases"], ["*"]))],
    cluster_role_bindings=[
        binding("readers", "ClusterRole", "pod-reader", group("devs")),
        binding("metrics", "ClusterRole", "metrics", user("bob")),
        binding("agents-nodes", "ClusterRole", "one-node", sa("agent", "usb")),
        binding("status", "ClusterRole", "status-writer", user("alice")),
    ],
    role_bindings=[
        binding("usb-admins", "ClusterRole", "usb-admin", user("alice"), namespace="usb"),
        binding("leases", "Role", "lease-holder", sa("agent"), namespace="usb"),
        binding("redir", "ClusterRole", "vmi-usbredir", user("bob"), namespace="vms"),
    ],
)


def test_cluster_role_binding_allows_everywhere_with_upstream_reason() -> None:
    decision = AUTHZ.authorize(ALICE, get("pods", namespace="anywhere", verb="list"))
    assert decision == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to '
              'Group "devs"')


def test_denied_decisions_have_no_reason() -> None:
    assert AUTHZ.authorize(BOB, get("pods", namespace="x")) == Decision(False, "")
    assert not AUTHZ.authorize(ALICE, get("pods", namespace="x", verb="delete")).allowed


def test_role_binding_to_cluster_role_grants_only_in_its_namespace() -> None:
    allowed = AUTHZ.authorize(ALICE, get("usbdevices", group="usb.kubevirt.io",
                                         namespace="usb", verb="create"))
    assert allowed == Decision(
        True, 'RBAC: allowed by RoleBinding "usb-admins/usb" of ClusterRole "usb-admin" to '
              'User "alice"')
    assert not AUTHZ.authorize(ALICE, get("usbdevices", group="usb.kubevirt.io",
                                          namespace="other")).allowed
    assert not AUTHZ.authorize(ALICE, get("usbdevices", group="usb.kubevirt.io")).allowed


def test_service_account_subject_defaults_to_the_binding_namespace() -> None:
    decision = AUTHZ.authorize(AGENT, get("leases", group="coordination.k8s.io",
                                          namespace="usb", verb="update"))
    assert decision == Decision(
        True, 'RBAC: allowed by RoleBinding "leases/usb" of Role "lease-holder" to '
              'ServiceAccount "agent/usb"')
    other = UserInfo.service_account(namespace="other", name="agent")
    assert not AUTHZ.authorize(other, get("leases", group="coordination.k8s.io",
                                          namespace="usb")).allowed


def test_resource_names_restrict_to_named_objects() -> None:
    assert AUTHZ.authorize(AGENT, get("nodes", name="node-1", verb="update")).allowed
    assert not AUTHZ.authorize(AGENT, get("nodes", name="node-2")).allowed
    assert not AUTHZ.authorize(AGENT, get("nodes", verb="list")).allowed
    assert AUTHZ.authorize(AGENT, get("nodes", name="node-1", verb="get")).reason.endswith(
        'to ServiceAccount "agent/usb"')


def test_subresources_need_their_own_rule() -> None:
    assert AUTHZ.authorize(ALICE, get("pods", subresource="log", namespace="x")).allowed
    assert not AUTHZ.authorize(ALICE, get("pods", subresource="exec", namespace="x")).allowed
    assert AUTHZ.authorize(BOB, get("virtualmachineinstances", subresource="usbredir",
                                    group="subresources.kubevirt.io", namespace="vms")).allowed
    assert not AUTHZ.authorize(BOB, get("virtualmachineinstances",
                                        group="subresources.kubevirt.io",
                                        namespace="vms")).allowed


def test_star_slash_subresource_matches_any_resource() -> None:
    assert AUTHZ.authorize(ALICE, get("usbdevices", subresource="status", group="x",
                                      verb="patch")).allowed
    assert not AUTHZ.authorize(ALICE, get("usbdevices", group="x", verb="patch")).allowed


def test_non_resource_urls_with_trailing_star() -> None:
    def path(p: str) -> RequestAttributes:
        return RequestAttributes(verb="get", path=p, is_resource_request=False)

    assert AUTHZ.authorize(BOB, path("/metrics")).allowed
    assert AUTHZ.authorize(BOB, path("/logs/kubelet/x")).allowed
    assert not AUTHZ.authorize(BOB, path("/metricsz")).allowed
    assert not AUTHZ.authorize(BOB, RequestAttributes(verb="post", path="/metrics",
                                                      is_resource_request=False)).allowed


def test_system_masters_may_do_anything() -> None:
    assert AUTHZ.authorize(ADMIN, get("secrets", verb="delete")) == Decision(True, "")


def test_missing_roles_show_in_the_denial_reason() -> None:
    authz = Authorizer(
        cluster_role_bindings=[binding("a", "ClusterRole", "gone", user("u"))],
        role_bindings=[binding("b", "Role", "absent", user("u"), namespace="ns"),
                       binding("c", "Role", "absent", user("u"), namespace="ns")])
    someone = UserInfo(name="u")
    assert authz.authorize(someone, get("pods")) == Decision(
        False, 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found')
    assert authz.authorize(someone, get("pods", namespace="ns")) == Decision(
        False, 'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
               'role.rbac.authorization.k8s.io "absent" not found]')


def test_many_nodes_and_devices_stay_fast_enough_to_index() -> None:
    nodes = [f"node-{i}" for i in range(100)]
    bindings = [binding(f"agent-{n}", "ClusterRole", "node-agent", user(f"system:node:{n}"))
                for n in nodes]
    authz = Authorizer(cluster_roles=[cluster_role("node-agent", rule(["usb.kubevirt.io"],
                                                                      ["usbdevices"], ["*"]))],
                       cluster_role_bindings=bindings)
    checks = [authz.authorize(UserInfo(name=f"system:node:{n}"),
                              get("usbdevices", group="usb.kubevirt.io", name=f"dev-{d}"))
              for n in nodes for d in range(16)]
    assert all(c.allowed for c in checks)
    assert not authz.authorize(UserInfo(name="system:node:other"),
                               get("usbdevices", group="usb.kubevirt.io")).allowed


# -- wildcard properties --

_words = st.sampled_from(["get", "list", "pods", "nodes", "", "usb.kubevirt.io", "status", "a"])


@given(verb=_words, group_=_words, resource=_words, sub=_words, name=_words)
def test_a_star_rule_allows_every_resource_request(verb: str, group_: str, resource: str,
                                                   sub: str, name: str) -> None:
    authz = Authorizer(cluster_roles=[cluster_role("all", rule(["*"], ["*"], ["*"]))],
                       cluster_role_bindings=[binding("all", "ClusterRole", "all", user("u"))])
    attrs = RequestAttributes(verb=verb, api_group=group_, resource=resource, subresource=sub,
                              name=name)
    assert authz.authorize(UserInfo(name="u"), attrs).allowed


@given(verb=_words, group_=_words, resource=_words, name=_words)
def test_exact_rules_allow_exactly_their_tuple(verb: str, group_: str, resource: str,
                                               name: str) -> None:
    authz = Authorizer(
        cluster_roles=[cluster_role("r", rule(["usb.kubevirt.io"], ["nodes"], ["get"],
                                              resourceNames=["a"]))],
        cluster_role_bindings=[binding("r", "ClusterRole", "r", user("u"))])
    attrs = RequestAttributes(verb=verb, api_group=group_, resource=resource, name=name)
    expected = (verb, group_, resource, name) == ("get", "usb.kubevirt.io", "nodes", "a")
    assert authz.authorize(UserInfo(name="u"), attrs).allowed is expected


@given(st.lists(st.sampled_from(["get", "list", "*"]), min_size=1, max_size=3), _words)
def test_star_verb_is_equivalent_to_listing_the_verb(verbs: list[str], verb: str) -> None:
    authz = Authorizer(cluster_roles=[cluster_role("r", rule([""], ["pods"], verbs))],
                       cluster_role_bindings=[binding("r", "ClusterRole", "r", group("g"))])
    allowed = authz.authorize(UserInfo(name="x", groups=("g",)), get("pods", verb=verb)).allowed
    assert allowed is ("*" in verbs or verb in verbs)


# ---- aggregation -----------------------------------------------------------------------------


def test_aggregated_cluster_roles_collect_matching_rules() -> None:
    read = rule(["usb.kubevirt.io"], ["usbdevices"], ["get"])
    write = rule(["usb.kubevirt.io"], ["usbdevices"], ["update"])
    roles = [
        cluster_role("view", aggregation=[{"matchLabels": {"agg/view": "true"}}]),
        cluster_role("edit", aggregation=[{"matchLabels": {"agg/edit": "true"}},
                                          {"matchLabels": {"agg/view": "true"}}]),
        cluster_role("usb-view", read, labels={"agg/view": "true"}),
        cluster_role("usb-edit", write, {**read, "resourceNames": []},
                     labels={"agg/edit": "true"}),
        cluster_role("unrelated", rule([""], ["pods"], ["get"])),
    ]
    out = {r["metadata"]["name"]: r for r in aggregate_cluster_roles(roles)}
    assert out["view"]["rules"] == [read]
    assert out["edit"]["rules"] == [write, {**read, "resourceNames": []}]
    assert out["unrelated"] == roles[4]
    assert roles[0]["rules"] == []  # the input is left alone


def test_aggregation_reaches_a_fixed_point_across_aggregated_roles() -> None:
    base = rule([""], ["pods"], ["get"])
    roles = [
        cluster_role("admin", aggregation=[{"matchLabels": {"to-admin": "true"}}]),
        cluster_role("edit", labels={"to-admin": "true"},
                     aggregation=[{"matchLabels": {"to-edit": "true"}}]),
        cluster_role("leaf", base, labels={"to-edit": "true"}),
    ]
    out = {r["metadata"]["name"]: r for r in aggregate_cluster_roles(roles)}
    assert out["admin"]["rules"] == [base]
    assert out["edit"]["rules"] == [base]


def test_aggregation_with_expressions() -> None:
    roles = [cluster_role("a", aggregation=[{"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x"]}]}]),
             cluster_role("b", rule([""], ["pods"], ["list"]), labels={"tier": "x"}),
             cluster_role("c", rule([""], ["pods"], ["delete"]), labels={"tier": "y"})]
    assert aggregate_cluster_roles(roles)[0]["rules"] == [rule([""], ["pods"], ["list"])]


# ---- access reviews ------------------------------------------------------------------------------


def test_subject_access_review_of_another_user() -> None:
    status = access_review({"user": "alice", "groups": ["devs"],
                            "resourceAttributes": {"verb": "list", "resource": "pods",
                                                   "namespace": "x"}}, authorizer=AUTHZ)
    assert status == {"allowed": True,
                      "reason": 'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole '
                                '"pod-reader" to Group "devs"'}
    denied = access_review({"user": "alice", "resourceAttributes": {
        "verb": "list", "resource": "pods", "namespace": "x"}}, authorizer=AUTHZ)
    assert denied == {"allowed": False}


def test_self_subject_access_review_uses_the_requester() -> None:
    status = access_review({"nonResourceAttributes": {"verb": "get", "path": "/metrics"}},
                           authorizer=AUTHZ, user=BOB)
    assert status["allowed"] is True
    assert access_review({"resourceAttributes": {"verb": "get", "resource": "secrets"}},
                         authorizer=AUTHZ, user=ADMIN) == {"allowed": True}


def test_invalid_review_causes_match_upstream() -> None:
    with pytest.raises(APIError) as info:
        access_review({}, authorizer=AUTHZ)
    assert info.value.code == 422
    assert (info.value.group, info.value.kind, info.value.name) == ("authorization.k8s.io", "", "")
    assert [(c.type, c.field, c.message) for c in info.value.causes] == [
        ("FieldValueInvalid", "spec.resourceAttributes", 'Invalid value: "null": exactly one of '
         "nonResourceAttributes or resourceAttributes must be specified"),
        ("FieldValueInvalid", "spec.user", 'Invalid value: "": at least one of user or group '
         "must be specified"),
    ]


def test_invalid_self_review_message() -> None:
    spec = {"resourceAttributes": {}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}
    with pytest.raises(APIError) as info:
        access_review(spec, authorizer=AUTHZ, user=BOB)
    assert info.value.message == (
        '.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: '
        'authorization.NonResourceAttributes{Path:"/x", Verb:"get"}: cannot be specified in '
        "combination with resourceAttributes")


def test_rules_review_lists_cluster_and_namespace_rules() -> None:
    status = rules_review(ALICE, namespace="usb", authorizer=AUTHZ)
    assert status == {
        "resourceRules": [
            {"verbs": ["get", "list", "watch"], "apiGroups": [""],
             "resources": ["pods", "pods/log"]},
            {"verbs": ["update", "patch"], "apiGroups": ["*"], "resources": ["*/status"]},
            {"verbs": ["*"], "apiGroups": ["usb.kubevirt.io"], "resources": ["*"]},
        ],
        "nonResourceRules": [],
        "incomplete": False,
    }
    bob = rules_review(BOB, namespace="default", authorizer=AUTHZ)
    assert bob["nonResourceRules"] == [{"verbs": ["get"],
                                        "nonResourceURLs": ["/metrics", "/logs/*"]}]
    assert bob["resourceRules"] == []


def test_rules_review_reports_resolution_errors_and_needs_a_namespace() -> None:
    authz = Authorizer(cluster_role_bindings=[binding("a", "ClusterRole", "gone", user("u"))])
    status = rules_review(UserInfo(name="u"), namespace="ns", authorizer=authz)
    assert status["evaluationError"] == 'clusterrole.rbac.authorization.k8s.io "gone" not found'
    with pytest.raises(APIError) as info:
        rules_review(UserInfo(name="u"), namespace="", authorizer=authz)
    assert (info.value.code, info.value.message) == (400, "no namespace on request")
