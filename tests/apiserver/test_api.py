"""The verbs and object semantics of the API emulator, without HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.api import (
    API,
    PATCH_APPLY,
    PATCH_JSON,
    PATCH_MERGE,
    PATCH_STRATEGIC,
    GraceStep,
    ListOptions,
    RequestContext,
    decode_continue,
    encode_continue,
    grace_step,
    parse_resource_version,
    patch_types,
    storage_key,
)
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.controllers import crd_resources
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo, builtin_resources
from kubevirt_usb.apiserver.selectors import parse_label_selector
from kubevirt_usb.apiserver.store import Store

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ADMIN = UserInfo(name="admin", groups=("system:masters",))
WIDGET_SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}


def _ctx(**options: Any) -> RequestContext:
    return RequestContext(user=ADMIN, field_manager=options.pop("manager", "tester"), **options)


def _widget_info() -> ResourceInfo:
    crd = {"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": WIDGET_SCHEMA}}]}}
    return crd_resources(crd)[0][0]


@pytest.fixture
def api() -> API:
    registry = Registry()
    for info in builtin_resources():
        registry.add(info)
    registry.add(_widget_info())
    api = API(registry=registry, store=Store(), clock=lambda: NOW)
    api.create(_info(api, "namespaces"), namespace="", body={"metadata": {"name": "ns"}},
               ctx=_ctx())
    return api


def _info(api: API, resource: str, group: str = "") -> ResourceInfo:
    version = "v1"
    info = api.registry.get(group, version, resource)
    assert info is not None
    return info


def _cm(api: API, name: str, **data: str) -> dict[str, Any]:
    return api.create(_info(api, "configmaps"), namespace="ns",
                      body={"metadata": {"name": name}, "data": data}, ctx=_ctx())


def _widget(api: API, name: str, **meta: Any) -> dict[str, Any]:
    return api.create(_info(api, "widgets", "example.com"), namespace="ns",
                      body={"apiVersion": "example.com/v1", "kind": "Widget",
                            "metadata": {"name": name, **meta}, "spec": {"size": 1}},
                      ctx=_ctx())


def _status(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(errors.APIError) as caught:
        fn(*args, **kwargs)
    return caught.value.status()


# ---- create ------------------------------------------------------------------------------------


def test_create_fills_server_metadata(api: API) -> None:
    created = _cm(api, "one", a="1")
    meta = created["metadata"]
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"] == "2030-01-02T03:04:05Z"
    assert int(meta["resourceVersion"]) == api.store.resource_version
    assert meta["namespace"] == "ns"
    assert "generation" not in meta
    assert meta["managedFields"][0]["manager"] == "tester"
    assert meta["managedFields"][0]["operation"] == "Update"
    assert created["kind"] == "ConfigMap"
    assert created["apiVersion"] == "v1"


def test_custom_resources_start_at_generation_1(api: API) -> None:
    assert _widget(api, "w")["metadata"]["generation"] == 1


def test_create_of_an_existing_name_is_already_exists(api: API) -> None:
    _cm(api, "twice")
    status = _status(_cm, api, "twice")
    assert (status["code"], status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'configmaps "twice" already exists'


def test_create_needs_a_valid_name(api: API) -> None:
    info = _info(api, "configmaps")
    missing = _status(api.create, info, namespace="ns", body={"metadata": {}}, ctx=_ctx())
    assert missing["message"] == ('ConfigMap "" is invalid: metadata.name: Required value: name '
                                  "or generateName is required")
    invalid = _status(api.create, info, namespace="ns", body={"metadata": {"name": "Bad"}},
                      ctx=_ctx())
    assert invalid["code"] == 422
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"


def test_generate_name_adds_five_characters(api: API) -> None:
    created = api.create(_info(api, "configmaps"), namespace="ns",
                         body={"metadata": {"generateName": "gen-"}}, ctx=_ctx())
    assert created["metadata"]["name"].startswith("gen-")
    assert len(created["metadata"]["name"]) == 9


def test_create_in_a_missing_namespace_is_404(api: API) -> None:
    status = _status(api.create, _info(api, "configmaps"), namespace="nope",
                     body={"metadata": {"name": "x"}}, ctx=_ctx())
    assert status["message"] == 'namespaces "nope" not found'


def test_create_in_a_terminating_namespace_is_forbidden(api: API) -> None:
    _cm(api, "holds-nothing")
    api.delete(_info(api, "namespaces"), namespace="", name="ns", options={}, ctx=_ctx())
    status = _status(_cm, api, "late")
    assert status["code"] == 403
    assert status["message"] == ('configmaps "late" is forbidden: unable to create new content '
                                 "in namespace ns because it is being terminated")
    assert status["details"]["causes"] == [{"reason": "NamespaceTerminating",
                                            "message": "namespace ns is being terminated",
                                            "field": "metadata.namespace"}]


def test_secret_string_data_becomes_data(api: API) -> None:
    created = api.create(_info(api, "secrets"), namespace="ns",
                         body={"metadata": {"name": "s"}, "stringData": {"k": "v"}}, ctx=_ctx())
    assert created["data"] == {"k": "dg=="}
    assert created["type"] == "Opaque"
    assert "stringData" not in created


def test_pods_start_pending(api: API) -> None:
    pod = api.create(_info(api, "pods"), namespace="ns", ctx=_ctx(), body={
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running"}})
    assert pod["status"] == {"phase": "Pending"}


def test_namespaces_get_their_finalizer_phase_and_label(api: API) -> None:
    ns = api.get(_info(api, "namespaces"), namespace="", name="ns")
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ns"}


def test_status_is_dropped_on_create_of_a_resource_with_a_status_subresource(api: API) -> None:
    created = api.create(_info(api, "widgets", "example.com"), namespace="ns", body={
        "metadata": {"name": "w"}, "spec": {}, "status": {"phase": "X"}}, ctx=_ctx())
    assert "status" not in created


def test_unknown_fields_of_a_custom_resource(api: API) -> None:
    info = _info(api, "widgets", "example.com")
    body = {"metadata": {"name": "w"}, "spec": {"size": 1, "bogus": True}}
    warn = _ctx()
    created = api.create(info, namespace="ns", body=body, ctx=warn)
    assert created["spec"] == {"size": 1}
    assert warn.warnings == ['unknown field "spec.bogus"']
    strict = _status(api.create, info, namespace="ns",
                     body={**body, "metadata": {"name": "w2"}},
                     ctx=_ctx(field_validation="Strict"))
    assert strict["message"] == ('Widget in version "v1" cannot be handled as a Widget: '
                                 'strict decoding error: unknown field "spec.bogus"')
    _widget(api, "w3")
    patched = _status(api.patch, info, namespace="ns", name="w3",
                      patch={"spec": {"bogus": True}}, content_type=PATCH_MERGE,
                      ctx=_ctx(field_validation="Strict"))
    assert patched["message"] == 'strict decoding error: unknown field "spec.bogus"'


def test_schema_violations_are_422(api: API) -> None:
    status = _status(api.create, _info(api, "widgets", "example.com"), namespace="ns",
                     body={"metadata": {"name": "w"}, "spec": {"size": "big"}}, ctx=_ctx())
    assert status["code"] == 422
    assert status["details"]["causes"][0]["field"] == "spec.size"


def test_kind_validators_run_on_create_and_update(api: API) -> None:
    api.validators[("", "configmaps")] = lambda obj: [
        errors.Cause(type="FieldValueInvalid", field="data", message="Invalid value: nope")
    ] if obj.get("data") else []
    _cm(api, "empty")
    status = _status(_cm, api, "full", a="1")
    assert status["message"] == 'ConfigMap "full" is invalid: data: Invalid value: nope'


def test_dry_run_create_stores_nothing(api: API) -> None:
    before = api.store.resource_version
    created = api.create(_info(api, "configmaps"), namespace="ns",
                         body={"metadata": {"name": "dry"}}, ctx=_ctx(dry_run=True))
    assert created["metadata"]["name"] == "dry"
    assert api.store.get(("", "configmaps"), "ns", "dry") is None
    assert api.store.resource_version == before


def test_body_of_another_kind_is_400(api: API) -> None:
    status = _status(api.create, _info(api, "configmaps"), namespace="ns",
                     body={"kind": "Secret", "metadata": {"name": "x"}}, ctx=_ctx())
    assert status["code"] == 400
    assert "cannot be handled as a ConfigMap" in status["message"]


# ---- update -------------------------------------------------------------------------------------


def test_update_with_a_stale_resource_version_is_409(api: API) -> None:
    created = _cm(api, "c")
    info = _info(api, "configmaps")
    api.update(info, namespace="ns", name="c", body={**created, "data": {"a": "1"}}, ctx=_ctx())
    status = _status(api.update, info, namespace="ns", name="c",
                     body={**created, "data": {"a": "2"}}, ctx=_ctx())
    assert status["code"] == 409
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "c": the object '
                                 "has been modified; please apply your changes to the latest "
                                 "version and try again")


def test_custom_resource_update_needs_a_resource_version(api: API) -> None:
    _widget(api, "w")
    status = _status(api.update, _info(api, "widgets", "example.com"), namespace="ns", name="w",
                     body={"metadata": {"name": "w"}, "spec": {"size": 2}}, ctx=_ctx())
    assert status["message"] == ('widgets.example.com "w" is invalid: metadata.resourceVersion: '
                                 "Invalid value: 0: must be specified for an update")


def test_put_of_a_missing_lease_creates_it(api: API) -> None:
    created = api.update(_info(api, "leases", "coordination.k8s.io"), namespace="ns",
                         name="l", body={"metadata": {"name": "l"}, "spec": {}}, ctx=_ctx())
    assert created["metadata"]["uid"]
    status = _status(api.update, _info(api, "configmaps"), namespace="ns", name="m",
                     body={"metadata": {"name": "m"}}, ctx=_ctx())
    assert status["code"] == 404


def test_a_write_that_changes_nothing_keeps_the_resource_version(api: API) -> None:
    created = _cm(api, "same", a="1")
    again = api.update(_info(api, "configmaps"), namespace="ns", name="same", body=created,
                       ctx=_ctx())
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_server_owned_metadata_survives_an_update(api: API) -> None:
    created = _cm(api, "m")
    body = {**created, "metadata": {**created["metadata"], "uid": "other",
                                    "creationTimestamp": "2000-01-01T00:00:00Z"},
            "data": {"x": "y"}}
    updated = api.update(_info(api, "configmaps"), namespace="ns", name="m", body=body,
                         ctx=_ctx())
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_status_and_main_resource_each_keep_to_their_part(api: API) -> None:
    info = _info(api, "widgets", "example.com")
    created = _widget(api, "w")
    via_status = api.update(info, namespace="ns", name="w", subresource="status", ctx=_ctx(),
                            body={**created, "spec": {"size": 9}, "status": {"phase": "Up"}})
    assert via_status["spec"] == {"size": 1}
    assert via_status["status"] == {"phase": "Up"}
    assert via_status["metadata"]["generation"] == 1
    via_main = api.update(info, namespace="ns", name="w", ctx=_ctx(),
                          body={**via_status, "spec": {"size": 2}, "status": {"phase": "No"}})
    assert via_main["status"] == {"phase": "Up"}
    assert via_main["metadata"]["generation"] == 2


def test_no_new_finalizers_on_an_object_being_deleted(api: API) -> None:
    _widget(api, "w", finalizers=["a/b"])
    info = _info(api, "widgets", "example.com")
    api.delete(info, namespace="ns", name="w", options={}, ctx=_ctx())
    status = _status(api.patch, info, namespace="ns", name="w", content_type=PATCH_MERGE,
                     patch={"metadata": {"finalizers": ["a/b", "c/d"]}}, ctx=_ctx())
    assert status["details"]["causes"][0]["message"] == (
        'Forbidden: no new finalizers can be added if the object is being deleted, found new '
        'finalizers []string{"c/d"}')


# ---- patch --------------------------------------------------------------------------------------


def test_patch_types(api: API) -> None:
    _cm(api, "p", a="1")
    info = _info(api, "configmaps")
    merged = api.patch(info, namespace="ns", name="p", patch={"data": {"b": "2"}},
                       content_type=PATCH_MERGE, ctx=_ctx())
    assert merged["data"] == {"a": "1", "b": "2"}
    json_patched = api.patch(info, namespace="ns", name="p", content_type=PATCH_JSON,
                             patch=[{"op": "remove", "path": "/data/a"}], ctx=_ctx())
    assert json_patched["data"] == {"b": "2"}
    strategic = api.patch(info, namespace="ns", name="p", content_type=PATCH_STRATEGIC,
                          patch={"data": {"c": "3"}}, ctx=_ctx())
    assert strategic["data"] == {"b": "2", "c": "3"}


def test_strategic_merge_of_a_custom_resource_is_415(api: API) -> None:
    _widget(api, "w")
    status = _status(api.patch, _info(api, "widgets", "example.com"), namespace="ns", name="w",
                     patch={}, content_type=PATCH_STRATEGIC, ctx=_ctx())
    assert status["code"] == 415
    assert status["message"].endswith("application/json-patch+json, "
                                      "application/merge-patch+json, "
                                      "application/apply-patch+yaml")


def test_patch_types_by_resource(api: API) -> None:
    assert PATCH_STRATEGIC in patch_types(_info(api, "configmaps"))
    assert PATCH_STRATEGIC not in patch_types(_info(api, "widgets", "example.com"))


def test_apply_creates_and_conflicts_between_managers(api: API) -> None:
    info = _info(api, "configmaps")
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
              "data": {"k": "alice"}}
    created = api.patch(info, namespace="ns", name="a", patch=config, content_type=PATCH_APPLY,
                        ctx=_ctx(manager="alice"))
    assert created["metadata"]["managedFields"][0]["operation"] == "Apply"
    status = _status(api.patch, info, namespace="ns", name="a", content_type=PATCH_APPLY,
                     patch={**config, "data": {"k": "bob"}}, ctx=_ctx(manager="bob"))
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    forced = api.patch(info, namespace="ns", name="a", content_type=PATCH_APPLY, force=True,
                       patch={**config, "data": {"k": "bob"}}, ctx=_ctx(manager="bob"))
    assert forced["data"] == {"k": "bob"}


def test_apply_to_the_status_of_a_missing_object_is_404(api: API) -> None:
    status = _status(api.patch, _info(api, "widgets", "example.com"), namespace="ns", name="w",
                     subresource="status", content_type=PATCH_APPLY,
                     patch={"apiVersion": "example.com/v1", "kind": "Widget",
                            "metadata": {"name": "w"}}, ctx=_ctx())
    assert status["code"] == 404


def test_patch_of_a_missing_object_is_404(api: API) -> None:
    status = _status(api.patch, _info(api, "configmaps"), namespace="ns", name="none",
                     patch={}, content_type=PATCH_MERGE, ctx=_ctx())
    assert status["message"] == 'configmaps "none" not found'


# ---- delete -------------------------------------------------------------------------------------


def test_delete_removes_at_once_without_finalizers(api: API) -> None:
    _cm(api, "d")
    result = api.delete(_info(api, "configmaps"), namespace="ns", name="d", options={},
                        ctx=_ctx())
    assert result.removed
    obj, removed = result
    assert removed
    assert int(obj["metadata"]["resourceVersion"]) == api.store.resource_version
    assert api.store.get(("", "configmaps"), "ns", "d") is None


def test_delete_with_finalizers_marks_the_object(api: API) -> None:
    _widget(api, "w", finalizers=["x/y"])
    result = api.delete(_info(api, "widgets", "example.com"), namespace="ns", name="w",
                        options={}, ctx=_ctx())
    assert not result.removed
    meta = result.obj["metadata"]
    assert meta["deletionTimestamp"] == "2030-01-02T03:04:05Z"
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == 2


def test_propagation_policies_add_their_finalizers(api: API) -> None:
    info = _info(api, "configmaps")
    _cm(api, "orphaning")
    _cm(api, "foreground")
    orphan = api.delete(info, namespace="ns", name="orphaning",
                        options={"propagationPolicy": "Orphan"}, ctx=_ctx())
    foreground = api.delete(info, namespace="ns", name="foreground",
                            options={"orphanDependents": False,
                                     "propagationPolicy": "Foreground"}, ctx=_ctx())
    assert orphan.obj["metadata"]["finalizers"] == ["orphan"]
    assert foreground.obj["metadata"]["finalizers"] == ["foregroundDeletion"]


def test_delete_preconditions_conflict_as_before_delete_words_it(api: API) -> None:
    created = _cm(api, "p")
    uid, version = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    info = _info(api, "configmaps")
    status = _status(api.delete, info, namespace="ns", name="p",
                     options={"preconditions": {"uid": "other"}}, ctx=_ctx())
    assert status["code"] == 409
    assert status["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "p": the UID in the precondition (other) '
        f"does not match the UID in record ({uid}). The object might have been deleted and then "
        "recreated")
    empty = _status(api.delete, info, namespace="ns", name="p",
                    options={"preconditions": {"uid": ""}}, ctx=_ctx())
    assert empty["code"] == 409  # a precondition that is there counts, even empty
    stale = _status(api.delete, info, namespace="ns", name="p",
                    options={"preconditions": {"resourceVersion": "1"}}, ctx=_ctx())
    assert stale["message"] == (
        'Operation cannot be fulfilled on ConfigMap "p": the ResourceVersion in the precondition '
        f"(1) does not match the ResourceVersion in record ({version}). The object might have "
        "been modified")


def test_namespace_delete_preconditions_are_the_namespace_storage_s(api: API) -> None:
    ns = api.get(_info(api, "namespaces"), namespace="", name="ns")
    status = _status(api.delete, _info(api, "namespaces"), namespace="", name="ns",
                     options={"preconditions": {"uid": "other"}}, ctx=_ctx())
    assert status["message"] == (
        'Operation cannot be fulfilled on namespaces "ns": Precondition failed: UID in '
        f"precondition: other, UID in object meta: {ns['metadata']['uid']}")


def test_a_posted_resource_version_is_refused_after_validation(api: API) -> None:
    info = _info(api, "configmaps")
    for version in ("5", "0", "abc", ""):
        body = {"metadata": {"name": f"rv{version}", "resourceVersion": version}}
        if version == "5":
            status = _status(api.create, info, namespace="ns", body=body, ctx=_ctx(), posted=True)
            assert (status["code"], status["message"], "reason" in status) == (
                500, "resourceVersion should not be set on objects to be created", False)
        else:
            created = api.create(info, namespace="ns", body=body, ctx=_ctx(), posted=True)
            assert created["metadata"]["resourceVersion"] not in ("0", "abc", "")
    invalid = _status(api.create, info, namespace="ns", ctx=_ctx(), posted=True,
                      body={"metadata": {"name": "Bad", "resourceVersion": "5"}})
    assert invalid["code"] == 422
    dry = api.create(info, namespace="ns", ctx=_ctx(dry_run=True), posted=True,
                     body={"metadata": {"name": "dry", "resourceVersion": "5"}})
    assert dry["metadata"]["name"] == "dry"
    internal = api.create(info, namespace="ns", ctx=_ctx(),
                          body={"metadata": {"name": "internal", "resourceVersion": "5"}})
    assert internal["metadata"]["resourceVersion"] != "5"


def test_namespace_deletion_marks_then_refuses_a_second_delete(api: API) -> None:
    info = _info(api, "namespaces")
    first = api.delete(info, namespace="", name="ns", options={}, ctx=_ctx())
    assert not first.removed
    assert first.obj["status"]["phase"] == "Terminating"
    assert "deletionGracePeriodSeconds" not in first.obj["metadata"]
    status = _status(api.delete, info, namespace="", name="ns", options={}, ctx=_ctx())
    assert status["message"] == (
        'Operation cannot be fulfilled on namespaces "ns": The system is ensuring all content is '
        "removed from this namespace.  Upon completion, this namespace will automatically be "
        "purged by the system.")


def test_crd_deletion_adds_the_cleanup_finalizer(api: API) -> None:
    crds = _info(api, "customresourcedefinitions", "apiextensions.k8s.io")
    api.create(crds, namespace="", ctx=_ctx(), body={
        "metadata": {"name": "gizmos.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    result = api.delete(crds, namespace="", name="gizmos.example.com", options={}, ctx=_ctx())
    assert result.obj["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert result.obj["metadata"]["generation"] == 1


def test_dry_run_delete_keeps_the_object(api: API) -> None:
    _cm(api, "kept")
    result = api.delete(_info(api, "configmaps"), namespace="ns", name="kept", options={},
                        ctx=_ctx(dry_run=True))
    assert result.removed
    assert api.store.get(("", "configmaps"), "ns", "kept") is not None


# ---- list ---------------------------------------------------------------------------------------


def test_list_pages_with_continue_tokens(api: API) -> None:
    for name in "abcde":
        _cm(api, name)
    info = _info(api, "configmaps")
    first = api.list(info, namespace="ns", options=ListOptions(limit=2))
    assert [o["metadata"]["name"] for o in first.items] == ["a", "b"]
    assert first.remaining == 3
    _cm(api, "f")  # after the first page: the rest of this list does not show it
    second = api.list(info, namespace="ns", options=ListOptions(
        limit=10, continue_token=first.continue_token))
    assert [o["metadata"]["name"] for o in second.items] == ["c", "d", "e"]
    assert second.resource_version == first.resource_version
    assert second.continue_token == ""


def test_selected_pages_do_not_count_the_rest(api: API) -> None:
    for name in "abc":
        api.create(_info(api, "configmaps"), namespace="ns",
                   body={"metadata": {"name": name, "labels": {"x": "y"}}}, ctx=_ctx())
    page = api.list(_info(api, "configmaps"), namespace="ns", options=ListOptions(
        limit=1, labels=parse_label_selector("x=y")))
    assert page.continue_token
    assert page.remaining is None


def test_list_at_an_exact_resource_version(api: API) -> None:
    _cm(api, "a", v="1")
    at = str(api.store.resource_version)
    api.patch(_info(api, "configmaps"), namespace="ns", name="a", content_type=PATCH_MERGE,
              patch={"data": {"v": "2"}}, ctx=_ctx())
    _cm(api, "b")
    then = api.list(_info(api, "configmaps"), namespace="ns",
                    options=ListOptions(resource_version=at, resource_version_match="Exact"))
    assert [(o["metadata"]["name"], o["data"]) for o in then.items] == [("a", {"v": "1"})]
    assert then.resource_version == int(at)
    not_older = api.list(_info(api, "configmaps"), namespace="ns",
                         options=ListOptions(resource_version=at))
    assert len(not_older.items) == 2


def test_list_option_errors(api: API) -> None:
    info = _info(api, "configmaps")
    forbidden = _status(api.list, info, namespace=None,
                        options=ListOptions(resource_version_match="Exact"))
    assert forbidden["code"] == 422
    assert forbidden["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: '
                                    "Forbidden: resourceVersionMatch is forbidden unless "
                                    "resourceVersion is provided")
    too_large = _status(api.list, info, namespace=None, options=ListOptions(
        resource_version=str(api.store.resource_version + 100)))
    assert too_large["code"] == 504
    assert too_large["reason"] == "Timeout"
    assert too_large["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    for garbage in ("!!", "bnVsbA"):  # not base64; base64 of `null`
        bad = _status(api.list, info, namespace=None,
                      options=ListOptions(continue_token=garbage))
        assert bad["code"] == 400
        assert bad["message"] == "invalid continue token: continue key is not valid"


def test_an_expired_continue_token_is_410_with_a_new_token(api: API) -> None:
    for name in "abc":
        _cm(api, name)
    info = _info(api, "configmaps")
    first = api.list(info, namespace="ns", options=ListOptions(limit=1))
    api.store.compact()
    _cm(api, "d")
    api.store.compact()
    status = _status(api.list, info, namespace="ns", options=ListOptions(
        limit=1, continue_token=first.continue_token))
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("The provided continue parameter is too old")
    rest = api.list(info, namespace="ns", options=ListOptions(
        continue_token=status["metadata"]["continue"]))
    assert [o["metadata"]["name"] for o in rest.items] == ["b", "c", "d"]


def test_continue_tokens_and_resource_versions_parse() -> None:
    token = encode_continue(rv=12, after=("ns", "name"))
    assert decode_continue(token) == (12, ("ns", "name"))
    assert parse_resource_version("42") == 42
    with pytest.raises(errors.APIError) as bad:
        parse_resource_version("x")
    assert bad.value.code == 400


def test_storage_keys_follow_kube_apiserver(api: API) -> None:
    assert storage_key(_info(api, "configmaps"), "ns", "a") == "/registry/configmaps/ns/a"
    assert storage_key(_info(api, "nodes"), "", "n") == "/registry/minions/n"
    assert storage_key(_info(api, "widgets", "example.com"), "ns", "w") == \
        "/registry/example.com/widgets/ns/w"


def test_write_hooks_see_old_and_new(api: API) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def hook(_info: ResourceInfo, old: dict[str, Any] | None,
             new: dict[str, Any] | None) -> None:
        seen.append((old["metadata"]["resourceVersion"] if old else None,
                     new["metadata"]["resourceVersion"] if new else None))

    api.on_write.append(hook)
    created = _cm(api, "h")
    api.delete(_info(api, "configmaps"), namespace="ns", name="h", options={}, ctx=_ctx())
    assert seen[0] == (None, created["metadata"]["resourceVersion"])
    assert seen[1] == (created["metadata"]["resourceVersion"], None)


DELETE_AT = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _after(seconds: int) -> dt.datetime:
    return DELETE_AT + dt.timedelta(seconds=seconds)


def _bound_pod(*, node: str = "n1", grace: int | None = 30, phase: str = "Running",
         marked: tuple[str, int] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if marked:
        meta["deletionTimestamp"], meta["deletionGracePeriodSeconds"] = marked
    spec: dict[str, Any] = {"nodeName": node} if node else {}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


@pytest.mark.parametrize(("pod", "requested", "expected"), [
    # first delete: the request's period, else the Pod's; 0 when unbound or finished
    (_bound_pod(), None, GraceStep(period=30, deadline=_after(30), first=True)),
    (_bound_pod(), 5, GraceStep(period=5, deadline=_after(5), first=True)),
    (_bound_pod(node=""), None, GraceStep(period=0, deadline=DELETE_AT, first=True)),
    (_bound_pod(phase="Succeeded"), 10, GraceStep(period=0, deadline=DELETE_AT, first=True)),
    (_bound_pod(grace=None), None, GraceStep(period=0, deadline=DELETE_AT, first=True)),
    (_bound_pod(), -3, GraceStep(period=1, deadline=_after(1), first=True)),
    # pending: only a shorter period changes it, from the first request's time
    (_bound_pod(marked=("2026-01-01T12:00:20Z", 30)), None, None),
    (_bound_pod(marked=("2026-01-01T12:00:20Z", 30)), 30, None),
    (_bound_pod(marked=("2026-01-01T12:00:20Z", 30)), 25,
     GraceStep(period=25, deadline=_after(15), first=False)),
    # never into the past: a graceful request becomes 1 s, a confirmation stays 0
    (_bound_pod(marked=("2026-01-01T12:00:20Z", 30)), 5,
     GraceStep(period=1, deadline=DELETE_AT, first=False)),
    (_bound_pod(marked=("2026-01-01T12:00:20Z", 30)), 0,
     GraceStep(period=0, deadline=DELETE_AT, first=False)),
    # marked with no grace left: deleted as it is
    (_bound_pod(marked=("2026-01-01T11:59:00Z", 0)), None,
     GraceStep(period=None, deadline=DELETE_AT, first=False)),
])
def test_grace_steps_of_a_pod_delete(pod: dict[str, Any], requested: int | None,
                                     expected: GraceStep | None) -> None:
    assert grace_step(pod, requested=requested, now=DELETE_AT) == expected
