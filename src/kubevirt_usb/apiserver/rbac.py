"""RBAC as a kube-apiserver applies it: who may do what, access reviews and rules reviews.

Semantics, reasons and error texts follow plugin/pkg/auth/authorizer/rbac,
pkg/registry/rbac/validation and pkg/registry/authorization (Kubernetes 1.30), behind the
privileged-group authorizer that lets `system:masters` do everything.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.errors import Cause, bad_request, invalid
from kubevirt_usb.apiserver.selectors import go_aggregate, go_quote, label_selector_from_dict

SA_PREFIX = "system:serviceaccount:"
PRIVILEGED_GROUP = "system:masters"
AUTHORIZATION_GROUP = "authorization.k8s.io"

Obj = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class RequestAttributes:
    """What a request wants to do, as the authorizer sees it (authorizer.Attributes)."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    is_resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    """The answer: allowed or not, and the reason a real server would give (often empty)."""

    allowed: bool
    reason: str = ""


# ---- policy rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    urls: tuple[str, ...]
    source: Mapping[str, Any]

    @classmethod
    def of(cls, rule: Obj) -> _Rule:
        return cls(verbs=frozenset(rule.get("verbs") or ()),
                   api_groups=frozenset(rule.get("apiGroups") or ()),
                   resources=frozenset(rule.get("resources") or ()),
                   resource_names=frozenset(rule.get("resourceNames") or ()),
                   urls=tuple(rule.get("nonResourceURLs") or ()),
                   source=rule)

    def allows(self, attrs: RequestAttributes) -> bool:
        if "*" not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.is_resource_request:
            return any(_url_matches(url, attrs.path) for url in self.urls)
        if "*" not in self.api_groups and attrs.api_group not in self.api_groups:
            return False
        if not self._resource_matches(attrs):
            return False
        return not self.resource_names or attrs.name in self.resource_names

    def _resource_matches(self, attrs: RequestAttributes) -> bool:
        resources = self.resources
        if "*" in resources:
            return True
        if not attrs.subresource:
            return attrs.resource in resources
        return f"{attrs.resource}/{attrs.subresource}" in resources or \
            f"*/{attrs.subresource}" in resources


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url in ("*", path):
        return True
    return rule_url.endswith("*") and path.startswith(rule_url.rstrip("*"))


def _rules(role: Obj) -> tuple[_Rule, ...]:
    return tuple(_Rule.of(r) for r in role.get("rules") or ())


# ---- bindings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Binding:
    order: int
    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]
    rules: tuple[_Rule, ...] = ()
    error: str = ""

    def first_subject(self, user: UserInfo) -> Mapping[str, Any] | None:
        for subject in self.subjects:
            if _applies(subject, user, self.namespace):
                return subject
        return None

    def describe(self, user: UserInfo) -> str:
        subject = self.first_subject(user) or {}
        kind, name = str(subject.get("kind", "")), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            name = f"{name}/{subject.get('namespace') or self.namespace}"
        who = f"{kind} {go_quote(name)}"
        role = f"{self.role_kind} {go_quote(self.role_name)}"
        if self.kind == "ClusterRoleBinding":
            return f"ClusterRoleBinding {go_quote(self.name)} of {role} to {who}"
        return f"RoleBinding {go_quote(self.name + '/' + self.namespace)} of {role} to {who}"


def _sa_username(subject: Mapping[str, Any], binding_namespace: str) -> str | None:
    namespace = subject.get("namespace") or binding_namespace
    if not namespace:
        return None
    return f"{SA_PREFIX}{namespace}:{subject.get('name', '')}"


def _applies(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        return _sa_username(subject, binding_namespace) == user.name
    return False


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    """The index key a subject is found under: ("user", name) or ("group", name)."""
    kind = subject.get("kind")
    if kind == "User":
        return ("user", str(subject.get("name", "")))
    if kind == "Group":
        return ("group", str(subject.get("name", "")))
    if kind == "ServiceAccount":
        username = _sa_username(subject, binding_namespace)
        return ("user", username) if username is not None else None
    return None


def _user_keys(user: UserInfo) -> list[tuple[str, str]]:
    return [("user", user.name), *(("group", g) for g in user.groups)]


@dataclass
class _Index:
    """Bindings of one scope (the cluster, or one namespace) found by subject."""

    by_subject: dict[tuple[str, str], list[_Binding]] = field(default_factory=dict)

    def add(self, binding: _Binding) -> None:
        keys = {_subject_key(s, binding.namespace) for s in binding.subjects}
        for key in keys:
            if key is not None:
                self.by_subject.setdefault(key, []).append(binding)

    def for_user(self, user: UserInfo) -> list[_Binding]:
        found: dict[int, _Binding] = {}
        for key in _user_keys(user):
            for binding in self.by_subject.get(key, ()):
                found[binding.order] = binding
        return [found[order] for order in sorted(found)]


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _not_found(kind: str, name: str) -> str:
    return f"{kind}.rbac.authorization.k8s.io {go_quote(name)} not found"


class Authorizer:
    """Decides requests from Roles, ClusterRoles, RoleBindings and ClusterRoleBindings.

    Bindings are indexed by subject, so one decision costs O(bindings naming the user or one of
    its groups). The rules are read as given: aggregated ClusterRoles must already carry their
    rules (see `aggregate_cluster_roles`). Members of `privileged_groups` are allowed everything
    with an empty reason, as the kube-apiserver's `system:masters` authorizer does.
    """

    def __init__(self, *, roles: Iterable[Obj] = (), cluster_roles: Iterable[Obj] = (),
                 role_bindings: Iterable[Obj] = (), cluster_role_bindings: Iterable[Obj] = (),
                 privileged_groups: Iterable[str] = (PRIVILEGED_GROUP,)) -> None:
        self._privileged = frozenset(privileged_groups)
        self._cluster_roles = {str(_meta(r).get("name", "")): _rules(r) for r in cluster_roles}
        self._roles = {(str(_meta(r).get("namespace", "")), str(_meta(r).get("name", ""))):
                       _rules(r) for r in roles}
        self._cluster = _Index()
        self._namespaces: dict[str, _Index] = {}
        order = 0
        for crb in cluster_role_bindings:
            self._cluster.add(self._binding(order, "ClusterRoleBinding", crb, ""))
            order += 1
        for rb in role_bindings:
            namespace = str(_meta(rb).get("namespace", ""))
            binding = self._binding(order, "RoleBinding", rb, namespace)
            self._namespaces.setdefault(namespace, _Index()).add(binding)
            order += 1

    def _binding(self, order: int, kind: str, obj: Obj, namespace: str) -> _Binding:
        ref: Mapping[str, Any] = obj.get("roleRef") or {}
        role_kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        rules: tuple[_Rule, ...] | None
        error = ""
        if role_kind == "ClusterRole":
            rules = self._cluster_roles.get(role_name)
            error = _not_found("clusterrole", role_name) if rules is None else ""
        elif role_kind == "Role":
            rules = self._roles.get((namespace, role_name))
            error = _not_found("role", role_name) if rules is None else ""
        else:
            rules, error = None, f"unsupported role reference kind: {go_quote(role_kind)}"
        return _Binding(order=order, kind=kind, name=str(_meta(obj).get("name", "")),
                        namespace=namespace, role_kind=role_kind, role_name=role_name,
                        subjects=tuple(obj.get("subjects") or ()), rules=rules or (),
                        error=error)

    def _bindings(self, user: UserInfo, namespace: str) -> list[_Binding]:
        """The bindings that apply to `user`, ClusterRoleBindings first, as RBAC visits them."""
        found = self._cluster.for_user(user)
        if namespace and namespace in self._namespaces:
            found += self._namespaces[namespace].for_user(user)
        return [b for b in found if b.first_subject(user) is not None]

    def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision:
        """Allowed, with upstream's reason (`RBAC: allowed by ...`), or denied (reason empty, or
        `RBAC: <resolution errors>` when bindings name missing roles)."""
        if self._privileged.intersection(user.groups):
            return Decision(True, "")
        errors: list[str] = []
        for binding in self._bindings(user, attrs.namespace):
            if binding.error:
                errors.append(binding.error)
                continue
            if any(rule.allows(attrs) for rule in binding.rules):
                return Decision(True, f"RBAC: allowed by {binding.describe(user)}")
        return Decision(False, f"RBAC: {go_aggregate(errors)}" if errors else "")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Mapping[str, Any]], str]:
        """Every rule granted to `user` in `namespace`, and the resolution errors (or "")."""
        rules: list[Mapping[str, Any]] = []
        errors: list[str] = []
        for binding in self._bindings(user, namespace):
            if binding.error:
                errors.append(binding.error)
            rules.extend(rule.source for rule in binding.rules)
        return rules, go_aggregate(errors) if errors else ""


# ---- ClusterRole aggregation -----------------------------------------------------------------


def _normal_rule(rule: Obj) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A rule in a form where missing and empty lists compare equal (equality.Semantic)."""
    keys = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")
    return tuple((k, tuple(rule.get(k) or ())) for k in keys)


def _aggregated_rules(role: Obj, roles: Sequence[Obj]) -> list[Obj]:
    rule_sets: Sequence[Mapping[str, Any]] = \
        (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    name = _meta(role).get("name")
    rules: list[Obj] = []
    seen: set[tuple[tuple[str, tuple[str, ...]], ...]] = set()
    for selector_dict in rule_sets:
        selector = label_selector_from_dict(selector_dict)
        matching = sorted((r for r in roles if _meta(r).get("name") != name and
                           selector.matches(_meta(r).get("labels") or {})),
                          key=lambda r: str(_meta(r).get("name", "")))
        for other in matching:
            for rule in other.get("rules") or ():
                key = _normal_rule(rule)
                if key not in seen:
                    seen.add(key)
                    rules.append(copy.deepcopy(rule))
    return rules


def aggregate_cluster_roles(cluster_roles: Sequence[Obj]) -> list[dict[str, Any]]:
    """The ClusterRoles with every `aggregationRule` role's `rules` filled in.

    Each aggregated role gets the union (first occurrence kept, in name order per selector) of
    the rules of the other ClusterRoles its `clusterRoleSelectors` match, as the
    clusterrole-aggregation controller computes it; aggregated roles feeding other aggregated
    roles are resolved to a fixed point. Other roles are returned unchanged (as copies).
    """
    roles = [copy.deepcopy(dict(r)) for r in cluster_roles]
    for _ in range(len(roles) + 1):
        changed = False
        for role in roles:
            if not role.get("aggregationRule"):
                continue
            rules = _aggregated_rules(role, roles)
            if [_normal_rule(r) for r in role.get("rules") or ()] != \
                    [_normal_rule(r) for r in rules]:
                role["rules"] = rules
                changed = True
        if not changed:
            break
    return roles


# ---- reviews -------------------------------------------------------------------------------------


def _nonresource_value(attrs: Mapping[str, Any]) -> str:
    """The internal NonResourceAttributes struct as Go's %#v prints it in a validation error."""
    return (f"authorization.NonResourceAttributes{{Path:{go_quote(str(attrs.get('path', '')))}, "
            f"Verb:{go_quote(str(attrs.get('verb', '')))}}}")


def _review_causes(spec: Mapping[str, Any], *, self_review: bool) -> list[Cause]:
    causes = []
    resource = spec.get("resourceAttributes")
    nonresource = spec.get("nonResourceAttributes")
    if resource is not None and nonresource is not None:
        causes.append(Cause(type="FieldValueInvalid", field="spec.nonResourceAttributes",
                            message=f"Invalid value: {_nonresource_value(nonresource)}: cannot be "
                            "specified in combination with resourceAttributes"))
    if resource is None and nonresource is None:
        causes.append(Cause(type="FieldValueInvalid", field="spec.resourceAttributes",
                            message='Invalid value: "null": exactly one of nonResourceAttributes '
                            "or resourceAttributes must be specified"))
    if not self_review and not spec.get("user") and not spec.get("groups"):
        causes.append(Cause(type="FieldValueInvalid", field="spec.user",
                            message=f"Invalid value: {go_quote(str(spec.get('user') or ''))}: "
                            "at least one of user or group must be specified"))
    return causes


def _attributes(spec: Mapping[str, Any]) -> RequestAttributes:
    resource = spec.get("resourceAttributes")
    if resource is not None:
        return RequestAttributes(
            verb=str(resource.get("verb", "")), api_group=str(resource.get("group", "")),
            resource=str(resource.get("resource", "")),
            subresource=str(resource.get("subresource", "")),
            namespace=str(resource.get("namespace", "")), name=str(resource.get("name", "")),
            is_resource_request=True)
    nonresource: Mapping[str, Any] = spec.get("nonResourceAttributes") or {}
    return RequestAttributes(verb=str(nonresource.get("verb", "")),
                             path=str(nonresource.get("path", "")), is_resource_request=False)


def access_review(spec: Mapping[str, Any], *, authorizer: Authorizer,
                  user: UserInfo | None = None) -> dict[str, Any]:
    """The `status` of a SubjectAccessReview (`user` None: the subject is spec.user/groups/uid)
    or SelfSubjectAccessReview (`user` is the requester).

    `{"allowed": bool}` plus `reason` when upstream gives one. `denied` is never set: RBAC
    only ever says "no opinion". An invalid spec raises 422 exactly as upstream, whose message
    reads `.authorization.k8s.io "" is invalid: ...` (the internal object has no kind).
    """
    causes = _review_causes(spec, self_review=user is not None)
    if causes:
        raise invalid(kind="", group=AUTHORIZATION_GROUP, name="", causes=causes)
    subject = user if user is not None else UserInfo(
        name=str(spec.get("user") or ""), groups=tuple(spec.get("groups") or ()),
        uid=str(spec.get("uid") or ""))
    decision = authorizer.authorize(subject, _attributes(spec))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _resource_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": list(rule.get("verbs") or [])}
    for key in ("apiGroups", "resources", "resourceNames"):
        if rule.get(key):
            out[key] = list(rule[key])
    return out


def rules_review(user: UserInfo, *, namespace: str, authorizer: Authorizer) -> dict[str, Any]:
    """The `status` of a SelfSubjectRulesReview (what `kubectl auth can-i --list` prints).

    Rules come from the user's bindings in visiting order, unmerged, as upstream. An empty
    namespace is a 400 `no namespace on request`.
    """
    if not namespace:
        raise bad_request("no namespace on request")
    rules, error = authorizer.rules_for(user, namespace)
    status: dict[str, Any] = {
        "resourceRules": [_resource_rule(r) for r in rules if r.get("resources")],
        "nonResourceRules": [{"verbs": list(r.get("verbs") or []),
                              "nonResourceURLs": list(r["nonResourceURLs"])}
                             for r in rules if r.get("nonResourceURLs")],
        "incomplete": False,
    }
    if error:
        status["evaluationError"] = error
    return status


__all__ = ["Authorizer", "Decision", "RequestAttributes", "access_review",
           "aggregate_cluster_roles", "rules_review"]
