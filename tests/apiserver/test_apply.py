"""Server-side apply and managedFields bookkeeping behave as kube-apiserver's field manager."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kubevirt_usb.apiserver.apply import (
    ListType,
    apply_config,
    builtin_list_types,
    field_set,
    fields_from_v1,
    fields_to_v1,
    manager_from_user_agent,
    path_to_string,
    record_update,
)
from kubevirt_usb.apiserver.errors import APIError

T0, T1, T2, T3 = (f"2024-05-01T10:00:0{i}Z" for i in range(4))
V = "usb.kubevirt-usb.io/v1alpha1"


LIST_TYPES: dict[tuple[str, ...], ListType] = {
    ("spec", "ports"): ListType("map", ("port",)),
    ("metadata", "finalizers"): ListType("set"),
}


def lists(path: tuple[str, ...]) -> ListType:
    return LIST_TYPES.get(path, ListType())


def device(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": V, "kind": "USBDevice", "metadata": {"name": "d1"}, "spec": spec}


def apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str, *,
          force: bool = False, now: str = T1) -> dict[str, Any]:
    return apply_config(live, config, manager=manager, force=force, now=now, api_version=V,
                        list_type=lists)


def update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, *,
           now: str = T1, subresource: str = "") -> dict[str, Any]:
    return record_update(old, new, manager=manager, now=now, api_version=V, list_type=lists,
                         subresource=subresource)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[str]:
    fields = entries(obj)[(manager, operation)]["fieldsV1"]
    return {path_to_string(p) for p in fields_from_v1(fields)}


def conflict_of(live: dict[str, Any], config: dict[str, Any], manager: str) -> APIError:
    with pytest.raises(APIError) as err:
        apply(live, config, manager)
    return err.value


# ---------------------------------------------------------------------------------------------
# Apply
# ---------------------------------------------------------------------------------------------


def test_apply_creates_the_object_with_one_apply_entry() -> None:
    obj = apply(None, device(vendor="0951", product="1666"), "agent", now=T0)

    assert obj["spec"] == {"vendor": "0951", "product": "1666"}
    assert obj["metadata"]["managedFields"] == [{
        "manager": "agent", "operation": "Apply", "apiVersion": V, "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:product": {}, "f:vendor": {}}},
    }]


def test_two_managers_applying_different_fields_coexist() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)
    config = device()
    config["metadata"]["labels"] = {"team": "lab"}

    obj = apply(live, config, "admin", now=T1)

    assert obj["spec"] == {"vendor": "0951"}
    assert obj["metadata"]["labels"] == {"team": "lab"}
    assert owned(obj, "agent") == {".spec.vendor"}
    assert owned(obj, "admin") == {".metadata.labels.team"}
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["agent", "admin"]


def test_a_manager_dropping_a_field_removes_it() -> None:
    live = apply(None, device(vendor="0951", serial="X1"), "agent", now=T0)

    obj = apply(live, device(vendor="0951"), "agent", now=T1)

    assert obj["spec"] == {"vendor": "0951"}
    assert owned(obj, "agent") == {".spec.vendor"}


def test_a_dropped_field_another_manager_also_applied_stays() -> None:
    live = apply(None, device(vendor="0951", serial="X1"), "agent", now=T0)
    live = apply(live, device(serial="X1"), "admin", now=T1)

    obj = apply(live, device(vendor="0951"), "agent", now=T2)

    assert obj["spec"] == {"vendor": "0951", "serial": "X1"}
    assert owned(obj, "admin") == {".spec.serial"}


def test_applying_a_value_another_manager_owns_is_a_409_conflict() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)

    err = conflict_of(live, device(vendor="1234"), "admin")

    assert err.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "agent": .spec.vendor',
        "reason": "Conflict", "code": 409,
        "details": {"causes": [{"reason": "FieldManagerConflict",
                                "message": 'conflict with "agent"', "field": ".spec.vendor"}]},
    }


def test_conflicts_with_several_fields_and_an_updater_list_them_all() -> None:
    live = apply(None, device(vendor="0951", product="1666"), "agent", now=T0)
    changed = copy.deepcopy(live)
    changed["spec"]["serial"] = "X1"
    live = update(live, changed, "kubectl", now=T1)

    err = conflict_of(live, device(vendor="1", product="2", serial="3"), "admin")

    assert err.message == (
        'Apply failed with 3 conflicts: conflicts with "agent":\n'
        "- .spec.product\n"
        "- .spec.vendor\n"
        f'conflicts with "kubectl" using {V}:\n'
        "- .spec.serial"
    )
    assert [(c.message, c.field) for c in err.causes] == [
        ('conflict with "agent"', ".spec.product"),
        ('conflict with "agent"', ".spec.vendor"),
        (f'conflict with "kubectl" using {V}', ".spec.serial"),
    ]


def test_applying_the_same_value_shares_ownership_without_conflict() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)

    obj = apply(live, device(vendor="0951"), "admin", now=T1)

    assert owned(obj, "agent") == owned(obj, "admin") == {".spec.vendor"}
    assert [e["time"] for e in obj["metadata"]["managedFields"]] == [T0, T1]


def test_force_takes_ownership_from_the_other_manager() -> None:
    live = apply(None, device(vendor="0951", product="1666"), "agent", now=T0)

    obj = apply(live, device(vendor="1234"), "admin", force=True, now=T1)

    assert obj["spec"] == {"vendor": "1234", "product": "1666"}
    assert owned(obj, "admin") == {".spec.vendor"}
    assert owned(obj, "agent") == {".spec.product"}


def test_force_taking_every_field_drops_the_empty_entry() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)

    obj = apply(live, device(vendor="1234"), "admin", force=True, now=T1)

    assert list(entries(obj)) == [("admin", "Apply")]


def test_map_list_items_are_merged_by_key_and_owned_separately() -> None:
    live = apply(None, device(ports=[{"port": 80, "name": "http"}]), "agent", now=T0)
    live = apply(live, device(ports=[{"port": 443, "name": "https"}]), "admin", now=T1)

    assert live["spec"]["ports"] == [{"port": 80, "name": "http"},
                                     {"port": 443, "name": "https"}]
    assert entries(live)[("agent", "Apply")]["fieldsV1"] == {"f:spec": {"f:ports": {
        'k:{"port":80}': {".": {}, "f:name": {}, "f:port": {}}}}}
    assert owned(live, "admin") == {'.spec.ports[port=443]', '.spec.ports[port=443].name',
                                    '.spec.ports[port=443].port'}

    obj = apply(live, device(ports=[]), "agent", now=T2)

    assert obj["spec"]["ports"] == [{"port": 443, "name": "https"}]
    assert ("agent", "Apply") not in entries(obj)


def test_map_list_item_field_owned_by_another_manager_conflicts_by_key() -> None:
    live = apply(None, device(ports=[{"port": 80, "name": "http"}]), "agent", now=T0)

    err = conflict_of(live, device(ports=[{"port": 80, "name": "web"}]), "admin")

    assert err.message == ('Apply failed with 1 conflict: conflict with "agent": '
                           ".spec.ports[port=80].name")


def test_set_lists_are_unions_of_what_each_manager_applies() -> None:
    first = device()
    first["metadata"]["finalizers"] = ["a"]
    second = device()
    second["metadata"]["finalizers"] = ["b"]

    obj = apply(apply(None, first, "agent", now=T0), second, "controller", now=T1)

    assert obj["metadata"]["finalizers"] == ["a", "b"]
    assert owned(obj, "controller") == {'.metadata.finalizers[="b"]'}


def test_atomic_lists_are_replaced_and_owned_whole() -> None:
    live = apply(None, device(interfaces=[1, 2]), "agent", now=T0)

    obj = apply(live, device(interfaces=[3]), "agent", now=T1)

    assert obj["spec"]["interfaces"] == [3]
    assert owned(obj, "agent") == {".spec.interfaces"}


def test_update_after_apply_moves_ownership_to_the_updater() -> None:
    live = apply(None, device(vendor="0951", product="1666"), "agent", now=T0)
    changed = copy.deepcopy(live)
    changed["spec"]["vendor"] = "1234"

    obj = update(live, changed, "kubectl", now=T1)

    assert owned(obj, "kubectl", "Update") == {".spec.vendor"}
    assert owned(obj, "agent") == {".spec.product"}
    assert entries(obj)[("kubectl", "Update")]["time"] == T1
    err = conflict_of(obj, device(vendor="0951", product="1666"), "agent")
    assert err.message == (f'Apply failed with 1 conflict: conflict with "kubectl" using {V}: '
                           ".spec.vendor")


def test_apply_and_update_entries_of_one_manager_are_separate() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)
    changed = copy.deepcopy(live)
    changed["status"] = {"present": True}

    obj = update(live, changed, "agent", now=T1, subresource="status")

    rows = obj["metadata"]["managedFields"]
    assert [(r["manager"], r["operation"], r.get("subresource")) for r in rows] == [
        ("agent", "Apply", None), ("agent", "Update", "status")]
    assert rows[1]["fieldsV1"] == {"f:status": {".": {}, "f:present": {}}}


def test_reapplying_the_same_configuration_keeps_the_time() -> None:
    live = apply(None, device(vendor="0951"), "agent", now=T0)

    obj = apply(live, device(vendor="0951"), "agent", now=T3)

    assert obj == live


def test_live_object_without_managed_fields_is_owned_by_before_first_apply() -> None:
    live = device(vendor="0951", product="1666")
    live["metadata"]["uid"] = "u1"

    err = conflict_of(live, device(vendor="1234"), "agent")

    assert err.message == ('Apply failed with 1 conflict: conflict with "before-first-apply" '
                           f"using {V}: .spec.vendor")


def test_applied_configuration_is_checked_like_upstream() -> None:
    with pytest.raises(APIError) as wrong_version:
        apply_config(None, device(), manager="m", force=False, now=T0, api_version="v1")
    with_fields = device()
    with_fields["metadata"]["managedFields"] = []
    with pytest.raises(APIError) as managed_fields:
        apply(None, with_fields, "m")
    with pytest.raises(APIError) as no_key:
        apply(None, device(ports=[{"name": "http"}]), "m")

    assert (wrong_version.value.code, wrong_version.value.message) == (
        400, f"Incorrect version specified in apply patch. Specified patch version: {V}, "
             "expected: v1")
    assert (managed_fields.value.code, managed_fields.value.message) == (
        400, "metadata.managedFields must be nil")
    assert (no_key.value.code, no_key.value.message) == (
        500, f"failed to create typed patch object ({V}, Kind=USBDevice): .spec.ports: "
             'element 0: associative list with keys has an element that omits key field '
             '"port" (and doesn\'t have default value)')


def test_key_fields_left_out_take_their_schema_default() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}

    obj = apply_config(None, pod, manager="m", force=False, now=T0, api_version="v1",
                       list_type=builtin_list_types("", "Pod"))

    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:containers": {
        'k:{"name":"c"}': {".": {}, "f:name": {}, "f:ports": {
            'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}


def test_apply_never_changes_its_inputs() -> None:
    live = apply(None, device(vendor="0951", ports=[{"port": 80}]), "agent", now=T0)
    config = device(vendor="0951", ports=[{"port": 81}])
    before = copy.deepcopy((live, config))

    apply(live, config, "agent", now=T1)

    assert (live, config) == before


def test_ignored_fields_are_neither_applied_nor_owned() -> None:
    config = device(vendor="0951")
    config["status"] = {"present": True}

    obj = apply_config(None, config, manager="agent", force=False, now=T0, api_version=V,
                       ignored_fields=[("status",)])

    assert "status" not in obj
    assert owned(obj, "agent") == {".spec.vendor"}


# ---------------------------------------------------------------------------------------------
# Update bookkeeping
# ---------------------------------------------------------------------------------------------


def test_create_owns_every_field_with_markers_for_new_objects_and_items() -> None:
    new = device(vendor="0951", ports=[{"port": 80}])
    new["metadata"].update(labels={"a": "1"}, uid="u1", resourceVersion="5")

    obj = update(None, new, "kubectl-create", now=T0)

    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": V, "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
            "f:spec": {".": {}, "f:ports": {".": {}, 'k:{"port":80}': {".": {}, "f:port": {}}},
                       "f:vendor": {}},
        },
    }]


def test_fields_an_update_removes_leave_the_updater_too() -> None:
    live = update(device(), device(vendor="0951", product="1666"), "kubectl", now=T0)
    live["metadata"]["uid"] = "u1"
    changed = copy.deepcopy(live)
    del changed["spec"]["product"]

    obj = update(live, changed, "kubectl", now=T1)

    assert owned(obj, "kubectl", "Update") == {".spec.vendor"}
    assert entries(obj)[("kubectl", "Update")]["time"] == T0  # only removals: no new time


def test_update_that_changes_nothing_leaves_managed_fields_alone() -> None:
    live = update(None, device(vendor="0951"), "kubectl", now=T0)
    live["metadata"]["uid"] = "u1"

    obj = update(live, copy.deepcopy(live), "controller", now=T1)

    assert obj == live


def test_update_taking_all_fields_of_a_manager_drops_its_entry() -> None:
    skeleton = device()
    live = update(skeleton, device(vendor="0951"), "kubectl", now=T0)
    live["metadata"]["uid"] = "u1"
    assert owned(live, "kubectl", "Update") == {".spec.vendor"}
    changed = copy.deepcopy(live)
    changed["spec"] = {"vendor": "1"}

    obj = update(live, changed, "controller", now=T1)

    assert list(entries(obj)) == [("controller", "Update")]


@pytest.mark.parametrize("reset", [[], [{}]])
def test_managed_fields_can_be_reset_and_are_then_not_tracked(reset: list[Any]) -> None:
    live = update(None, device(vendor="0951"), "kubectl", now=T0)
    live["metadata"]["uid"] = "u1"
    cleared = copy.deepcopy(live)
    cleared["metadata"]["managedFields"] = reset

    obj = update(live, cleared, "kubectl", now=T1)
    changed = copy.deepcopy(obj)
    changed["spec"]["vendor"] = "1"

    assert "managedFields" not in obj["metadata"]
    assert "managedFields" not in update(obj, changed, "kubectl", now=T2)["metadata"]


def test_managed_fields_left_out_of_an_update_are_kept() -> None:
    live = update(None, device(vendor="0951"), "kubectl", now=T0)
    live["metadata"]["uid"] = "u1"
    changed = copy.deepcopy(live)
    del changed["metadata"]["managedFields"]
    changed["spec"]["product"] = "1666"

    obj = update(live, changed, "controller", now=T1)

    assert set(entries(obj)) == {("kubectl", "Update"), ("controller", "Update")}
    assert owned(obj, "controller", "Update") == {".spec.product"}


# ---------------------------------------------------------------------------------------------
# Field sets, FieldsV1, managers, built-in list types
# ---------------------------------------------------------------------------------------------


def test_field_set_of_a_service_like_object() -> None:
    obj = {"metadata": {"labels": {"app": "x"}},
           "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {}}}

    fields = field_set(obj, list_type=lists)

    assert fields_to_v1(fields) == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:ports": {'k:{"port":80}': {".": {}, "f:port": {}, "f:protocol": {}}}},
    }


element = (
    st.text("abc.-/", min_size=1, max_size=3).map(lambda s: "f:" + s)
    | st.integers(0, 3).map(lambda i: f'k:{{"port":{i}}}')
    | st.sampled_from(['v:"a"', "v:1", "v:true", "v:null", "i:0", "i:2"])
)
paths = st.frozensets(st.lists(element, min_size=1, max_size=4).map(tuple), max_size=12)


@given(paths)
def test_fields_v1_round_trips(fields: frozenset[tuple[str, ...]]) -> None:
    assert fields_from_v1(fields_to_v1(fields)) == fields


scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text("xy", max_size=2)
objects = st.recursive(
    scalars,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "ports", "finalizers"]), inner,
                                  max_size=3),
    max_leaves=10,
)


@given(objects)
def test_field_set_of_any_object_round_trips_through_fields_v1(obj: Any) -> None:
    fields = field_set({"spec": obj}, list_type=lists)

    assert fields_from_v1(fields_to_v1(fields)) == fields


@given(objects)
def test_applying_a_configuration_twice_changes_nothing_the_second_time(spec: Any) -> None:
    fields = field_set({"spec": spec}, list_type=lists)
    assume(fields)  # a configuration owning nothing leaves no entry (then before-first-apply)
    config = {**device(), "spec": spec}

    once = apply(None, config, "agent", now=T0)

    assert fields_from_v1(once["metadata"]["managedFields"][0]["fieldsV1"]) == fields
    assert apply(once, config, "agent", now=T1) == once


def test_fields_v1_rejects_unknown_elements() -> None:
    with pytest.raises(ValueError, match="unknown path element"):
        fields_from_v1({"x:foo": {}})


@pytest.mark.parametrize(
    ("agent", "manager"),
    [
        ("kubectl/v1.30.2 (linux/amd64) kubernetes/3968350", "kubectl"),
        ("kubevirt-usb-controller/0.1.0", "kubevirt-usb-controller"),
        ("python-httpx", "python-httpx"),
        ("bad\x00name/1", "badname"),
        ("", ""),
        ("é" * 100, "é" * 64),
    ],
)
def test_manager_from_user_agent(agent: str, manager: str) -> None:
    assert manager_from_user_agent(agent) == manager


def test_empty_manager_is_recorded_as_unknown() -> None:
    obj = update(None, device(vendor="0951"), manager_from_user_agent(""), now=T0)

    assert list(entries(obj)) == [("unknown", "Update")]


def test_builtin_list_types() -> None:
    pod = builtin_list_types("", "Pod")
    secret = builtin_list_types("", "Secret")

    assert pod(("spec", "containers")) == ListType("map", ("name",))
    assert pod(("spec", "containers", "ports")) == ListType(
        "map", ("containerPort", "protocol"), (("protocol", "TCP"),))
    assert pod(("spec", "tolerations")) == ListType()
    assert secret(("metadata", "finalizers")) == ListType("set")
    assert secret(("metadata", "ownerReferences")) == ListType("map", ("uid",))
