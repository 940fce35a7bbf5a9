"""Server-side printing: the Tables kubectl asks for."""

from __future__ import annotations

import datetime as dt

from kubevirt_usb.apiserver.resources import PrinterColumn, ResourceInfo, builtin_resources
from kubevirt_usb.apiserver.tables import columns_for, json_path, table, wants_table

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
WIDGET = ResourceInfo(group="example.com", version="v1", resource="widgets", kind="Widget",
                      singular="widget", namespaced=True, custom=True, printer_columns=(
                          PrinterColumn(name="Color", type="string", json_path=".spec.color"),
                          PrinterColumn(name="First", type="string",
                                        json_path=".spec.items[0].name"),
                          PrinterColumn(name="Age", type="date",
                                        json_path=".metadata.creationTimestamp")))


def _builtin(kind: str) -> ResourceInfo:
    return next(i for i in builtin_resources() if i.kind == kind)


def test_json_path() -> None:
    obj = {"spec": {"items": [{"name": "a"}], "x.y": 1}}
    assert json_path(obj, ".spec.items[0].name") == "a"
    assert json_path(obj, "{.spec.items[0].name}") == "a"
    assert json_path(obj, ".spec['x.y']") == 1
    assert json_path(obj, ".spec.items[3].name") is None
    assert json_path(obj, ".spec.missing.deeper") is None


def test_json_path_filters_and_wildcards_give_the_first_result() -> None:
    obj = {"status": {"conditions": [{"type": "Synced", "status": "False"},
                                     {"type": "Ready", "status": "True"},
                                     {"type": "Ready", "status": "Unknown"}],
                      "slots": [{"n": 1}, {"n": 2, "vm": "vm2"}]}}
    assert json_path(obj, ".status.conditions[?(@.type=='Ready')].status") == "True"
    assert json_path(obj, '.status.conditions[?(@.type=="Synced")].status') == "False"
    assert json_path(obj, ".status.conditions[?(@.type != 'Synced')].type") == "Ready"
    assert json_path(obj, ".status.conditions[?(@.type=='Gone')].status") is None
    assert json_path(obj, ".status.slots[?(@.n==2)].vm") == "vm2"
    assert json_path(obj, ".status.slots[*].vm") == "vm2"  # the first element that has one
    assert json_path(obj, ".status.phase[?(@.n==2)]") is None


def test_custom_columns_with_name_first_and_dates_kept() -> None:
    obj = {"metadata": {"name": "w", "creationTimestamp": "2030-01-01T11:59:00Z"},
           "spec": {"color": "red", "items": [{"name": "i"}]}}
    out = table(WIDGET, [obj], now=NOW)
    assert out["kind"] == "Table"
    assert [(c["name"], c["type"]) for c in out["columnDefinitions"]] == [
        ("Name", "string"), ("Color", "string"), ("First", "string"), ("Age", "date")]
    assert out["rows"][0]["cells"] == ["w", "red", "i", "60s"]
    assert out["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_builtin_columns_end_with_a_string_age() -> None:
    out = table(_builtin("Namespace"), [{"metadata": {"name": "n"},
                                         "status": {"phase": "Active"}}], now=NOW)
    assert [(c["name"], c["type"]) for c in out["columnDefinitions"]] == [
        ("Name", "string"), ("Status", "string"), ("Age", "string")]
    assert out["rows"][0]["cells"][:2] == ["n", "Active"]


def test_include_object_and_headers() -> None:
    obj = {"metadata": {"name": "w"}}
    full = table(WIDGET, [obj], now=NOW, include_object="Object", headers=False,
                 continue_token="next", resource_version="7")
    assert full["rows"][0]["object"] == obj
    assert full["columnDefinitions"] == []
    assert full["metadata"] == {"resourceVersion": "7", "continue": "next"}
    assert "object" not in table(WIDGET, [obj], now=NOW, include_object="None")["rows"][0]


def test_crds_without_columns_get_an_age() -> None:
    bare = ResourceInfo(group="g", version="v1", resource="things", kind="Thing",
                        singular="thing", namespaced=True, custom=True)
    assert [(c.name, c.type) for c in columns_for(bare)] == [("Name", "string"),
                                                             ("Age", "date")]


def test_wants_table() -> None:
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not wants_table("application/json")
    assert not wants_table("")
