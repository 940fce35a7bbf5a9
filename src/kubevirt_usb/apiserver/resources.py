"""What the API emulator serves: one `ResourceInfo` per group/version/resource, built-in or from
a CRD.

The registry is plain data. CRDs add and remove entries at run time; discovery, OpenAPI, routing
and tables all read from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    group: str
    version: str
    resource: str  # plural
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status"
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: dict[str, Any] | None = None  # openAPIV3Schema for custom resources
    custom: bool = False  # served from a CRD: no strategic merge patch, schema pruning
    storage_version: str = ""  # the version objects are stored as (CRDs); "" means `version`
    field_selectors: tuple[str, ...] = ()  # beyond metadata.name / metadata.namespace
    has_generation: bool = False
    stored: bool = True  # False for "create-only" virtual resources such as access reviews
    list_kind: str = ""
    returns_deleted_object: bool = False  # DELETE answers the object, not a Status (pods...)
    allow_unconditional_update: bool = True  # PUT without metadata.resourceVersion
    create_on_update: bool = False  # PUT of a missing object creates it (leases, RBAC)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        return (self.group, self.resource)

    @property
    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def kind_list(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def discovery_entry(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.resource,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        if self.stored:
            main["storageVersionHash"] = ""
        out = [main]
        for sub in self.subresources:
            out.append({
                "name": f"{self.resource}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            })
        return out


@dataclass
class Registry:
    """Served resources by (group, version, plural); group versions in registration order."""

    _by_gvr: dict[tuple[str, str, str], ResourceInfo] = field(default_factory=dict)
    _group_versions: dict[str, list[str]] = field(default_factory=dict)
    _preferred: dict[str, str] = field(default_factory=dict)

    def add(self, info: ResourceInfo, *, preferred: bool = False) -> None:
        self._by_gvr[(info.group, info.version, info.resource)] = info
        versions = self._group_versions.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)
        if preferred or info.group not in self._preferred:
            self._preferred[info.group] = info.version

    def remove_group_resource(self, group: str, resource: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == resource]:
            del self._by_gvr[key]
        remaining = {v for (g, v, _r) in self._by_gvr if g == group}
        if not remaining:
            self._group_versions.pop(group, None)
            self._preferred.pop(group, None)
            return
        self._group_versions[group] = [v for v in self._group_versions[group] if v in remaining]
        if self._preferred.get(group) not in remaining:
            self._preferred[group] = self._group_versions[group][0]

    def get(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, resource))

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, _, version = api_version.rpartition("/")
        for info in self._by_gvr.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return [i for (g, v, _r), i in self._by_gvr.items() if g == group and v == version]

    def groups(self) -> Iterator[tuple[str, list[str], str]]:
        for group, versions in self._group_versions.items():
            yield group, list(versions), self._preferred[group]

    def has_group_version(self, group: str, version: str) -> bool:
        return version in self._group_versions.get(group, [])

    def all(self) -> list[ResourceInfo]:
        return list(self._by_gvr.values())


def _builtin(group: str, version: str, resource: str, kind: str, *, namespaced: bool,
             short: tuple[str, ...] = (), subresources: tuple[str, ...] = (),
             verbs: tuple[str, ...] = ALL_VERBS, fields: tuple[str, ...] = (),
             stored: bool = True, categories: tuple[str, ...] = (),
             returns_object: bool = False, unconditional: bool = True,
             create_on_update: bool = False, generation: bool = False) -> ResourceInfo:
    return ResourceInfo(
        group=group, version=version, resource=resource, kind=kind,
        singular=kind.lower(), namespaced=namespaced, short_names=short,
        subresources=subresources, verbs=verbs, field_selectors=fields, stored=stored,
        categories=categories, returns_deleted_object=returns_object,
        allow_unconditional_update=unconditional, create_on_update=create_on_update,
        has_generation=generation,
    )


def builtin_resources() -> list[ResourceInfo]:
    """The core resources the project uses (objects only: no pod is ever run)."""
    review_verbs = ("create",)
    return [
        _builtin("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",),
                 subresources=("status", "finalize"), fields=("status.phase",),
                 returns_object=True),
        _builtin("", "v1", "events", "Event", namespaced=True, short=("ev",),
                 fields=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion",
                         "involvedObject.resourceVersion", "involvedObject.fieldPath",
                         "reason", "reportingComponent", "source", "type")),
        _builtin("", "v1", "configmaps", "ConfigMap", namespaced=True, short=("cm",)),
        _builtin("", "v1", "secrets", "Secret", namespaced=True, fields=("type",)),
        _builtin("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True, short=("sa",),
                 subresources=("token",)),
        _builtin("", "v1", "nodes", "Node", namespaced=False, short=("no",),
                 subresources=("status",), fields=("spec.unschedulable",)),
        _builtin("", "v1", "pods", "Pod", namespaced=True, short=("po",),
                 subresources=("status",), categories=("all",), returns_object=True,
                 generation=True,
                 fields=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                         "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                         "status.podIP", "status.nominatedNodeName")),
        _builtin("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True,
                 create_on_update=True),
        _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", namespaced=True,
                 create_on_update=True),
        _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                 namespaced=True, create_on_update=True),
        _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
                 namespaced=False, create_on_update=True),
        _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 namespaced=False, create_on_update=True),
        _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "CustomResourceDefinition", namespaced=False, short=("crd", "crds"),
                 subresources=("status",), categories=("api-extensions",), unconditional=False,
                 generation=True),
        _builtin("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                 "SelfSubjectAccessReview", namespaced=False, verbs=review_verbs, stored=False),
        _builtin("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
                 namespaced=False, verbs=review_verbs, stored=False),
        _builtin("authorization.k8s.io", "v1", "selfsubjectrulesreviews",
                 "SelfSubjectRulesReview", namespaced=False, verbs=review_verbs, stored=False),
        _builtin("authorization.k8s.io", "v1", "localsubjectaccessreviews",
                 "LocalSubjectAccessReview", namespaced=True, verbs=review_verbs, stored=False),
        _builtin("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview",
                 namespaced=False, verbs=review_verbs, stored=False),
        _builtin("authentication.k8s.io", "v1", "tokenreviews", "TokenReview",
                 namespaced=False, verbs=review_verbs, stored=False),
    ]


def workload_resources() -> list[ResourceInfo]:
    """Objects the deploy manifests hold (stored and validated by kind only; nothing runs them)."""
    return [
        _builtin("", "v1", "services", "Service", namespaced=True, short=("svc",),
                 subresources=("status",), categories=("all",), returns_object=True,
                 fields=("spec.clusterIP", "spec.type")),
        _builtin("apps", "v1", "deployments", "Deployment", namespaced=True, short=("deploy",),
                 subresources=("status", "scale"), categories=("all",), generation=True),
        _builtin("apps", "v1", "daemonsets", "DaemonSet", namespaced=True, short=("ds",),
                 subresources=("status",), categories=("all",), generation=True),
        _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", namespaced=True,
                 short=("netpol",)),
        _builtin("networking.k8s.io", "v1", "ingresses", "Ingress", namespaced=True,
                 short=("ing",), subresources=("status",)),
        _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", namespaced=True,
                 short=("pdb",), subresources=("status",)),
    ]
