"""Merge, JSON and strategic merge patches behave as a kube-apiserver applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.apiserver.errors import APIError
from kubevirt_usb.apiserver.patching import (
    ListStrategy,
    builtin_list_strategies,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

INVALID = "the server rejected our request due to an error in our request"

# ---------------------------------------------------------------------------------------------
# JSON merge patch
# ---------------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2)
keys = st.sampled_from(["a", "b", "c", "d"])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=4)


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that turns `old` into `new` (the way clients compute one)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            sub = merge_diff(old[key], value)
            if sub:
                patch[key] = sub
        elif key not in old or old[key] != value or type(old[key]) is not type(value):
            patch[key] = value
    return patch


def without_nulls_in_objects(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls_in_objects(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls_in_objects(v) for v in value]
    return value


def test_merge_patch_deletes_null_members_and_merges_objects() -> None:
    target = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2], "y": 1}}
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"x": [3]}}

    assert json_merge_patch(target, patch) == {
        "metadata": {"labels": {"b": "2", "c": "3"}},
        "spec": {"x": [3], "y": 1},
    }


def test_merge_patch_replaces_a_scalar_with_an_object_without_its_nulls() -> None:
    assert json_merge_patch({"a": 1}, {"a": {"b": None, "c": 2}}) == {"a": {"c": 2}}


def test_merge_patch_leaves_its_inputs_alone() -> None:
    target = {"a": {"b": 1}}
    patch = {"a": {"b": None}}

    json_merge_patch(target, patch)

    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"b": None}}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([1], "error decoding patch: json: cannot unmarshal array into Go value of type "
              "map[string]interface {}"),
        ("x", "error decoding patch: json: cannot unmarshal string into Go value of type "
              "map[string]interface {}"),
        (None, "Invalid JSON Patch"),
    ],
)
def test_merge_patch_document_must_be_an_object(patch: Any, message: str) -> None:
    with pytest.raises(APIError) as err:
        json_merge_patch({}, patch)

    assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", message)


@given(json_objects, json_objects)
def test_merge_patch_of_a_diff_reproduces_the_new_object(old: dict[str, Any],
                                                         new: dict[str, Any]) -> None:
    new = without_nulls_in_objects(new)

    assert json_merge_patch(old, merge_diff(old, new)) == new


@given(json_objects, json_objects)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = json_merge_patch(target, patch)

    assert json_merge_patch(once, patch) == once


# ---------------------------------------------------------------------------------------------
# JSON patch
# ---------------------------------------------------------------------------------------------

POD: dict[str, Any] = {"metadata": {"name": "p", "labels": {"a/b": "1", "c~d": "2"}},
       "spec": {"containers": [{"name": "x"}, {"name": "y"}]}}


def test_json_patch_add_replace_remove_with_escaped_pointers() -> None:
    result = json_patch(POD, [
        {"op": "add", "path": "/metadata/labels/e", "value": "3"},
        {"op": "replace", "path": "/metadata/labels/a~1b", "value": "9"},
        {"op": "remove", "path": "/metadata/labels/c~0d"},
    ])

    assert result["metadata"]["labels"] == {"a/b": "9", "e": "3"}
    assert POD["metadata"]["labels"] == {"a/b": "1", "c~d": "2"}


def test_json_patch_list_positions() -> None:
    result = json_patch(POD, [
        {"op": "add", "path": "/spec/containers/-", "value": {"name": "z"}},
        {"op": "add", "path": "/spec/containers/0", "value": {"name": "w"}},
        {"op": "remove", "path": "/spec/containers/-1"},
        {"op": "move", "from": "/spec/containers/0", "path": "/spec/containers/1"},
        {"op": "copy", "from": "/metadata/name", "path": "/spec/hostname"},
        {"op": "test", "path": "/spec/hostname", "value": "p"},
    ])

    assert [c["name"] for c in result["spec"]["containers"]] == ["x", "w", "y"]
    assert result["spec"]["hostname"] == "p"


def test_json_patch_replace_of_a_missing_member_adds_it_like_kube_apiserver() -> None:
    assert json_patch({"a": {}}, [{"op": "replace", "path": "/a/b", "value": 1}]) == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "test", "path": "/metadata/name", "value": "other"},
        {"op": "remove", "path": "/metadata/annotations"},
        {"op": "add", "path": "/status/phase", "value": "Running"},
        {"op": "replace", "path": "/spec/containers/5", "value": {}},
        {"op": "add", "path": "/spec/containers/x", "value": {}},
        {"op": "frobnicate", "path": "/metadata"},
        {"op": "add", "value": 1},
    ],
)
def test_json_patch_operation_that_does_not_apply_is_422(operation: dict[str, Any]) -> None:
    with pytest.raises(APIError) as err:
        json_patch(POD, [operation])

    assert (err.value.code, err.value.reason, err.value.message) == (422, "Invalid", INVALID)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
    ],
)
def test_json_patch_malformed_document_is_400(document: Any, message: str) -> None:
    with pytest.raises(APIError) as err:
        json_patch(POD, document)

    assert (err.value.code, err.value.message) == (400, message)


def test_json_patch_with_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/metadata/name", "value": "p"}] * 10001

    with pytest.raises(APIError) as err:
        json_patch(POD, ops)

    assert err.value.code == 413
    assert err.value.message == ("Request entity too large: The allowed maximum operations in a "
                                 "JSON patch is 10000, got 10001")


# ---------------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------------

pod_lists = builtin_list_strategies("", "Pod")

LIVE_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "finalizers": ["a", "b"],
                 "labels": {"app": "x", "tier": "web"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1",
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "side:1"},
        ],
        "tolerations": [{"key": "k1"}],
    },
}


def smp(patch: Any, target: dict[str, Any] | None = None) -> Any:
    return strategic_merge_patch(LIVE_POD if target is None else target, patch,
                                 list_strategy=pod_lists)


def test_smp_merges_containers_and_env_by_name() -> None:
    result = smp({"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
    ]}})

    app, sidecar = result["spec"]["containers"]
    assert app == {"name": "app", "image": "app:2",
                   "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}
    assert sidecar == {"name": "sidecar", "image": "side:1"}
    assert LIVE_POD["spec"]["containers"][0]["image"] == "app:1"


def test_smp_null_deletes_a_map_key() -> None:
    assert smp({"metadata": {"labels": {"tier": None}}})["metadata"]["labels"] == {"app": "x"}


def test_smp_replaces_lists_without_a_strategy() -> None:
    assert smp({"spec": {"tolerations": [{"key": "k2"}]}})["spec"]["tolerations"] == [
        {"key": "k2"}]


def test_smp_patch_delete_removes_a_list_item() -> None:
    result = smp({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}})

    assert [c["name"] for c in result["spec"]["containers"]] == ["app"]


def test_smp_patch_replace_replaces_a_merging_list() -> None:
    result = smp({"spec": {"containers": [{"name": "only", "image": "o"},
                                          {"$patch": "replace"}]}})

    assert result["spec"]["containers"] == [{"name": "only", "image": "o"}]


def test_smp_patch_replace_and_delete_in_maps() -> None:
    assert smp({"metadata": {"labels": {"$patch": "replace", "new": "1"}}})["metadata"][
        "labels"] == {"new": "1"}
    assert smp({"metadata": {"labels": {"$patch": "delete"}}})["metadata"]["labels"] == {}


def test_smp_primitive_merge_list_is_a_set() -> None:
    result = smp({"metadata": {"finalizers": ["b", "c"]}})

    assert result["metadata"]["finalizers"] == ["a", "b", "c"]


def test_smp_delete_from_primitive_list() -> None:
    result = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})

    assert result["metadata"]["finalizers"] == ["b"]


def test_smp_set_element_order_orders_the_merged_list() -> None:
    target = {"mergingIntList": [1, 2, 4]}
    patch = {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]}

    result = strategic_merge_patch(target, patch, list_strategy=lambda p: ListStrategy())

    assert result == {"mergingIntList": [1, 2, 3, 4]}


def test_smp_set_element_order_of_containers() -> None:
    result = smp({"spec": {"$setElementOrder/containers": [{"name": "sidecar"},
                                                           {"name": "app"}]}})

    assert [c["name"] for c in result["spec"]["containers"]] == ["sidecar", "app"]


def upstream_lists(path: tuple[str, ...]) -> ListStrategy | None:
    """The tags of strategicpatch's own test type (MergeItem)."""
    return {"mergingList": ListStrategy("name"), "mergeItemPtr": ListStrategy("name"),
            "mergingIntList": ListStrategy()}.get(path[-1])


def named(*names: int) -> list[dict[str, Any]]:
    return [{"name": n} for n in names]


@pytest.mark.parametrize(
    ("current", "patch", "result"),
    [
        ({"mergingIntList": [1, 4, 2]},
         {"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]},
         {"mergingIntList": [3, 1, 4, 2]}),
        ({"mergingIntList": [1, 2, 3]},
         {"$setElementOrder/mergingIntList": [2, 1],
          "$deleteFromPrimitiveList/mergingIntList": [3]},
         {"mergingIntList": [2, 1]}),
        ({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"},
                          {"name": 3, "value": 3}]},
         {"$setElementOrder/mergingList": named(4, 2, 1),
          "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}]},
         {"mergingList": [{"name": 4, "value": 4}, {"name": 2, "value": 2, "other": "b"},
                          {"name": 1, "other": "a"}]}),
        ({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, *named(7, 9, 8),
                          {"name": 3, "value": 3}, {"name": 4, "value": 4}]},
         {"$setElementOrder/mergingList": named(2, 1, 4, 3)},
         {"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"}, *named(7, 9, 8),
                          {"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
        ({"mergeItemPtr": [{"name": 1, "other": "a", "mergeItemPtr": [
            {"name": 1, "value": "a"}, {"name": 2, "value": 2, "other": "b"}]},
                           {"name": 2, "other": "b"}]},
         {"$setElementOrder/mergeItemPtr": named(1, 2),
          "mergeItemPtr": [{"$setElementOrder/mergeItemPtr": named(1, 2), "name": 1,
                            "mergeItemPtr": [{"name": 1, "value": 1}]}]},
         {"mergeItemPtr": [{"name": 1, "other": "a", "mergeItemPtr": [
             {"name": 1, "value": 1}, {"name": 2, "value": 2, "other": "b"}]},
                           {"name": 2, "other": "b"}]}),
    ],
)
def test_smp_matches_upstream_ordering_cases(current: dict[str, Any], patch: dict[str, Any],
                                             result: dict[str, Any]) -> None:
    assert strategic_merge_patch(current, patch, list_strategy=upstream_lists) == result


def test_smp_retain_keys_clears_other_keys() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}

    result = strategic_merge_patch(target, patch, list_strategy=lambda p: None)

    assert result == {"spec": {"strategy": {"type": "Recreate"}}}


def test_smp_new_values_lose_their_directives() -> None:
    result = smp({"status": {"conditions": [{"type": "Ready", "status": "True",
                                             "reason": None}]}})

    assert result["status"] == {"conditions": [{"type": "Ready", "status": "True"}]}


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        ({"metadata": {"labels": {"$retainKeys": "app"}}}, 400,
         "invalid patch format of retainKeys"),
        ({"metadata": {"labels": {"$retainKeys": ["app"], "x": "1"}}}, 400,
         "invalid patch format of retainKeys"),
        ({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, 400,
         "invalid patch format of primitive list"),
        ({"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}, 500,
         "merging lists cannot yet be specified in the patch"),
        ({"spec": {"containers": [{"image": "x"}]}}, 500,
         "map: map[image:x] does not contain declared merge key: name"),
        ({"metadata": {"labels": {"$patch": "merge"}}}, 500,
         "unknown patch type: merge in map: map[$patch:merge]"),
        ({"metadata": {"finalizers": [["x"]]}}, 500,
         "list element types are not identical: [[a b] [[x]]]"),
    ],
)
def test_smp_errors_match_kube_apiserver(patch: dict[str, Any], code: int,
                                         message: str) -> None:
    with pytest.raises(APIError) as err:
        smp(patch)

    assert (err.value.code, err.value.message) == (code, message)


def test_smp_list_of_lists_is_422() -> None:
    target = {"metadata": {"finalizers": [["y"]]}}

    with pytest.raises(APIError) as err:
        smp({"metadata": {"finalizers": [["x"]]}}, target)

    assert (err.value.code, err.value.reason, err.value.message) == (422, "Invalid", INVALID)


def test_smp_patch_must_be_an_object() -> None:
    with pytest.raises(APIError) as err:
        smp([1])

    assert err.value.code == 400


@given(json_objects, json_objects)
def test_smp_without_strategies_or_directives_is_a_merge_patch(target: dict[str, Any],
                                                               patch: dict[str, Any]) -> None:
    result = strategic_merge_patch(target, patch, list_strategy=lambda p: None)

    assert result == json_merge_patch(target, patch)
    assert copy.deepcopy(target) == target


def test_builtin_strategies_follow_core_v1_tags() -> None:
    node = builtin_list_strategies("", "Node")
    account = builtin_list_strategies("", "ServiceAccount")
    config_map = builtin_list_strategies("", "ConfigMap")

    assert pod_lists(("spec", "initContainers", "volumeMounts")) == ListStrategy("mountPath")
    assert pod_lists(("spec", "containers", "ports")) == ListStrategy("containerPort")
    assert pod_lists(("spec", "tolerations")) is None
    assert node(("status", "addresses")) == ListStrategy("type")
    assert node(("spec", "taints")) is None
    assert account(("secrets",)) == ListStrategy("name")
    assert config_map(("metadata", "ownerReferences")) == ListStrategy("uid")
    assert config_map(("metadata", "finalizers")) == ListStrategy(None, "merge")


def test_a_service_port_change_from_kubectl_apply_merges_by_port() -> None:
    live = {"spec": {"ports": [{"name": "web", "port": 443, "targetPort": "web"}]}}
    patch = {"spec": {"$setElementOrder/ports": [{"port": 80}],
                      "ports": [{"name": "web", "port": 80, "targetPort": "web"},
                                {"$patch": "delete", "port": 443}]}}
    merged = strategic_merge_patch(live, patch,
                                   list_strategy=builtin_list_strategies("", "Service"))
    assert merged == {"spec": {"ports": [{"name": "web", "port": 80, "targetPort": "web"}]}}


def test_a_deployments_pod_template_merges_like_a_pod() -> None:
    live = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "X", "value": "1"}]}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}}}
    merged = strategic_merge_patch(live, patch,
                                   list_strategy=builtin_list_strategies("apps", "Deployment"))
    env = merged["spec"]["template"]["spec"]["containers"][0]["env"]
    assert sorted(e["name"] for e in env) == ["X", "Y"]
