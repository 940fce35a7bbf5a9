"""The in-process control loops: CRDs, garbage collection, namespaces, RBAC aggregation.

Outside an event loop each reaction runs right after the write that caused it, so these tests
see the settled state without waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.api import API, RequestContext
from kubevirt_usb.apiserver.app import new_cluster_state
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.controllers import ControlPlane, crd_resources, validate_crd
from kubevirt_usb.apiserver.rbac import RequestAttributes
from kubevirt_usb.apiserver.resources import ResourceInfo

ADMIN = UserInfo(name="admin", groups=("system:masters",))
CTX = RequestContext(user=ADMIN, field_manager="tester")


def _crd(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "subresources": {"status": {}},
                      "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                                    "jsonPath": ".spec.size"}],
                      "schema": {"openAPIV3Schema": {"type": "object"}}},
                     {"name": "v1beta1", "served": False, "storage": False,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    body.update(spec)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": body}


@pytest.fixture
def cluster() -> tuple[API, ControlPlane]:
    api, control = new_cluster_state()
    _create(api, "", "namespaces", {"metadata": {"name": "ns"}})
    return api, control


def _info(api: API, group: str, resource: str) -> ResourceInfo:
    info = api.registry.get(group, "v1", resource)
    assert info is not None
    return info


def _create(api: API, group: str, resource: str, body: dict[str, Any],
            namespace: str = "") -> dict[str, Any]:
    return api.create(_info(api, group, resource), namespace=namespace, body=body, ctx=CTX)


def _cm(api: API, name: str, **meta: Any) -> dict[str, Any]:
    return _create(api, "", "configmaps", {"metadata": {"name": name, **meta}}, "ns")


def test_crd_resources_one_per_served_version() -> None:
    [(info, storage)] = crd_resources(_crd())
    assert storage
    assert (info.group, info.version, info.resource, info.kind) == ("example.com", "v1",
                                                                    "widgets", "Widget")
    assert info.short_names == ("wd",)
    assert info.subresources == ("status",)
    assert info.printer_columns[0].json_path == ".spec.size"
    assert info.custom
    assert not info.allow_unconditional_update
    assert info.kind_list == "WidgetList"


def test_validate_crd() -> None:
    assert validate_crd(_crd()) == []
    wrong = _crd()
    wrong["metadata"]["name"] = "other.example.com"
    assert [c.field for c in validate_crd(wrong)] == ["metadata.name"]
    no_storage = _crd(versions=[{"name": "v1", "served": True, "storage": False,
                                 "schema": {"openAPIV3Schema": {"type": "object"}}}])
    assert [c.field for c in validate_crd(no_storage)] == ["spec.versions"]
    no_schema = _crd(versions=[{"name": "v1", "served": True, "storage": True}])
    assert [c.field for c in validate_crd(no_schema)] == [
        "spec.versions[0].schema.openAPIV3Schema"]
    no_scope = _crd()
    del no_scope["spec"]["scope"]
    assert [(c.field, c.message) for c in validate_crd(no_scope)] == [
        ("spec.scope", "Required value")]
    galaxy = _crd()
    galaxy["spec"]["scope"] = "Galaxy"
    assert [(c.type, c.field) for c in validate_crd(galaxy)] == [
        ("FieldValueNotSupported", "spec.scope")]


def test_creating_a_crd_serves_it_and_sets_its_status(cluster: tuple[API, ControlPlane]
                                                      ) -> None:
    api, _control = cluster
    _create(api, "apiextensions.k8s.io", "customresourcedefinitions", _crd())
    assert api.registry.get("example.com", "v1", "widgets") is not None
    assert api.registry.get("example.com", "v1beta1", "widgets") is None
    crd = api.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "",
                        "widgets.example.com")
    assert crd is not None
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert "finalizers" not in crd["metadata"]


def test_an_invalid_crd_is_refused(cluster: tuple[API, ControlPlane]) -> None:
    api, _control = cluster
    wrong = _crd()
    wrong["metadata"]["name"] = "other.example.com"
    with pytest.raises(errors.APIError) as refused:
        _create(api, "apiextensions.k8s.io", "customresourcedefinitions", wrong)
    assert refused.value.code == 422
    assert api.registry.get("example.com", "v1", "widgets") is None


def test_deleting_a_crd_deletes_its_objects_then_itself(cluster: tuple[API, ControlPlane]
                                                        ) -> None:
    api, _control = cluster
    _create(api, "apiextensions.k8s.io", "customresourcedefinitions", _crd())
    _create(api, "example.com", "widgets", {"metadata": {"name": "w"}}, "ns")
    api.delete(_info(api, "apiextensions.k8s.io", "customresourcedefinitions"), namespace="",
               name="widgets.example.com", options={}, ctx=CTX)
    assert api.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "",
                         "widgets.example.com") is None
    assert api.registry.get("example.com", "v1", "widgets") is None
    assert api.store.items(("example.com", "widgets")) == []


def test_a_crd_waits_for_instances_with_finalizers(cluster: tuple[API, ControlPlane]) -> None:
    api, _control = cluster
    _create(api, "apiextensions.k8s.io", "customresourcedefinitions", _crd())
    widgets = _info(api, "example.com", "widgets")
    _create(api, "example.com", "widgets", {"metadata": {"name": "w", "finalizers": ["x/y"]}},
            "ns")
    crds = _info(api, "apiextensions.k8s.io", "customresourcedefinitions")
    api.delete(crds, namespace="", name="widgets.example.com", options={}, ctx=CTX)
    assert api.store.get(crds.group_resource, "", "widgets.example.com") is not None
    api.patch(widgets, namespace="ns", name="w", patch={"metadata": {"finalizers": None}},
              content_type="application/merge-patch+json", ctx=CTX)
    assert api.store.get(crds.group_resource, "", "widgets.example.com") is None


def _owned_by(owner: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
             "uid": owner["metadata"]["uid"]}]


def test_background_collection_of_dependents(cluster: tuple[API, ControlPlane]) -> None:
    api, control = cluster
    owner = _cm(api, "owner")
    _cm(api, "child", ownerReferences=_owned_by(owner))
    other = _cm(api, "other-owner")
    _cm(api, "shared", ownerReferences=[*_owned_by(owner), *_owned_by(other)])
    api.delete(_info(api, "", "configmaps"), namespace="ns", name="owner", options={}, ctx=CTX)
    assert api.store.get(("", "configmaps"), "ns", "child") is None
    assert api.store.get(("", "configmaps"), "ns", "shared") is not None  # another owner lives
    assert control.exists(other["metadata"]["uid"])
    assert not control.exists(owner["metadata"]["uid"])


def test_orphaning_keeps_dependents_without_the_reference(cluster: tuple[API, ControlPlane]
                                                          ) -> None:
    api, _control = cluster
    owner = _cm(api, "owner")
    _cm(api, "child", ownerReferences=_owned_by(owner))
    api.delete(_info(api, "", "configmaps"), namespace="ns", name="owner",
               options={"propagationPolicy": "Orphan"}, ctx=CTX)
    assert api.store.get(("", "configmaps"), "ns", "owner") is None
    child = api.store.get(("", "configmaps"), "ns", "child")
    assert child is not None
    assert "ownerReferences" not in child["metadata"]


def test_foreground_deletion_waits_for_dependents(cluster: tuple[API, ControlPlane]) -> None:
    api, _control = cluster
    owner = _cm(api, "owner")
    _cm(api, "child", ownerReferences=_owned_by(owner), finalizers=["hold/it"])
    configmaps = _info(api, "", "configmaps")
    api.delete(configmaps, namespace="ns", name="owner",
               options={"propagationPolicy": "Foreground"}, ctx=CTX)
    deleting = api.store.get(("", "configmaps"), "ns", "owner")
    assert deleting is not None
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    child = api.store.get(("", "configmaps"), "ns", "child")
    assert child is not None
    assert child["metadata"]["deletionTimestamp"]
    api.patch(configmaps, namespace="ns", name="child",
              patch=[{"op": "remove", "path": "/metadata/finalizers/0"}],
              content_type="application/json-patch+json", ctx=CTX)
    assert api.store.get(("", "configmaps"), "ns", "child") is None
    assert api.store.get(("", "configmaps"), "ns", "owner") is None


def test_namespace_deletion_empties_then_removes_it(cluster: tuple[API, ControlPlane]) -> None:
    api, _control = cluster
    _cm(api, "plain")
    _cm(api, "held", finalizers=["hold/it"])
    namespaces = _info(api, "", "namespaces")
    api.delete(namespaces, namespace="", name="ns", options={}, ctx=CTX)
    assert api.store.get(("", "configmaps"), "ns", "plain") is None
    assert api.store.get(("", "namespaces"), "", "ns") is not None
    api.patch(_info(api, "", "configmaps"), namespace="ns", name="held",
              patch={"metadata": {"finalizers": None}},
              content_type="application/merge-patch+json", ctx=CTX)
    assert api.store.get(("", "namespaces"), "", "ns") is None


def test_authorizer_follows_rbac_writes(cluster: tuple[API, ControlPlane]) -> None:
    api, control = cluster
    alice = UserInfo(name="alice", groups=("system:authenticated",))
    wants = RequestAttributes(verb="get", resource="configmaps", namespace="ns")
    assert not control.authorizer.authorize(alice, wants).allowed
    _create(api, "rbac.authorization.k8s.io", "roles", {
        "metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                              "verbs": ["get"]}]}, "ns")
    _create(api, "rbac.authorization.k8s.io", "rolebindings", {
        "metadata": {"name": "r"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                               "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "alice"}]}, "ns")
    assert control.authorizer.authorize(alice, wants).allowed


def test_cluster_roles_aggregate(cluster: tuple[API, ControlPlane]) -> None:
    api, _control = cluster
    _create(api, "rbac.authorization.k8s.io", "clusterroles", {
        "metadata": {"name": "parent"}, "rules": [],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}})
    _create(api, "rbac.authorization.k8s.io", "clusterroles", {
        "metadata": {"name": "child", "labels": {"agg": "yes"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    parent = api.store.get(("rbac.authorization.k8s.io", "clusterroles"), "", "parent")
    assert parent is not None
    assert parent["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]


def test_crd_change_hooks_run(cluster: tuple[API, ControlPlane]) -> None:
    api, control = cluster
    calls: list[int] = []
    control.on_crd_change.append(lambda: calls.append(1))
    _create(api, "apiextensions.k8s.io", "customresourcedefinitions", _crd())
    assert calls


def test_new_namespaces_get_a_default_service_account_and_the_root_ca() -> None:
    api, control = new_cluster_state()
    control.root_ca_pem = "-----BEGIN CERTIFICATE-----\n"
    _create(api, "", "namespaces", {"metadata": {"name": "fresh"}})
    assert api.store.get(("", "serviceaccounts"), "fresh", "default") is not None
    root_ca = api.store.get(("", "configmaps"), "fresh", "kube-root-ca.crt")
    assert root_ca is not None
    assert root_ca["data"] == {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}
