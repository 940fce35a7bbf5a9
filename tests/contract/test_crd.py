"""CustomResourceDefinitions: serving their resources (namespaced and cluster-scoped), printer
columns, structural-schema validation (422 Invalid), pruning of unknown fields, deletion."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import Cluster
from tests.contract.support import (
    ContractCRD,
    crd_manifest,
    install_crd,
    new_test_crd,
    status_of,
)
from tests.polling import wait_until

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_crd_status_is_established(cluster: Cluster, widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        crd = http.get(f"{CRDS}/{widget_crd.name}").json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]


def test_namespaced_custom_resource_round_trip(cluster: Cluster, namespace: str,
                                               widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("w1", namespace=namespace))
        assert created.status_code == 201
        body = created.json()
        assert body["apiVersion"] == widget_crd.api_version
        assert body["kind"] == "Widget"
        assert body["metadata"]["namespace"] == namespace
        listed = http.get(widget_crd.path(namespace=namespace)).json()
        assert listed["kind"] == "WidgetList"
        assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
        everywhere = http.get(f"/apis/{widget_crd.group}/v1/{widget_crd.plural}").json()
        assert "w1" in [i["metadata"]["name"] for i in everywhere["items"]]


def test_cluster_scoped_custom_resource(cluster: Cluster, gadget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(gadget_crd.path(), json=gadget_crd.obj("g1"))
        assert created.status_code == 201
        assert "namespace" not in created.json()["metadata"]
        assert http.get(gadget_crd.path(name="g1")).status_code == 200
        namespaced = http.get(f"/apis/{gadget_crd.group}/v1/namespaces/default/"
                              f"{gadget_crd.plural}/g1")
        assert namespaced.status_code == 404
        assert http.delete(gadget_crd.path(name="g1")).status_code == 200


def test_printer_columns_in_a_table(cluster: Cluster, namespace: str,
                                    widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace), json=widget_crd.obj(
            "t1", namespace=namespace, spec={"color": "green", "size": 4})).raise_for_status()
        table = http.get(widget_crd.path(namespace=namespace), headers={"Accept": TABLE}).json()
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    columns = [(c["name"], c["type"]) for c in table["columnDefinitions"]]
    assert columns == [("Name", "string"), ("Color", "string"), ("Size", "integer"),
                       ("Phase", "string"), ("Ready", "string"), ("Age", "date")]
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 1, 0]
    row = table["rows"][0]
    assert row["cells"][:5] == ["t1", "green", 4, None, None]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "t1"


def test_printer_column_with_a_filter_shows_the_matching_item(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    """`.status.conditions[?(@.type=='Ready')].status`, the column KubeVirt's CRDs use."""
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace), json=widget_crd.obj(
            "t2", namespace=namespace, spec={"color": "blue"}))
        created.raise_for_status()
        body = created.json()
        body["status"] = {"conditions": [{"type": "Synced", "status": "False"},
                                         {"type": "Ready", "status": "True"}]}
        http.put(widget_crd.path(namespace=namespace, name="t2") + "/status",
                 json=body).raise_for_status()
        table = http.get(widget_crd.path(namespace=namespace, name="t2"),
                         headers={"Accept": TABLE}).json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert table["rows"][0]["cells"][names.index("Ready")] == "True"


def _invalid(cluster: Cluster, namespace: str, crd: ContractCRD,
             spec: dict[str, Any]) -> dict[str, Any]:
    with cluster.http() as http:
        response = http.post(crd.path(namespace=namespace), json=crd.obj("bad", namespace=namespace,
                                                                spec=spec))
    assert response.status_code == 422, response.text
    status = status_of(response)
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Widget"
    assert status["details"]["group"] == crd.group
    assert status["details"]["name"] == "bad"
    return status


def test_schema_required(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    status = _invalid(cluster, namespace, widget_crd, {"size": 1})
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.color"}]
    assert status["message"] == \
        f'Widget.{widget_crd.group} "bad" is invalid: spec.color: Required value'


def test_schema_enum(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    status = _invalid(cluster, namespace, widget_crd, {"color": "purple"})
    assert status["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "spec.color",
        "message": 'Unsupported value: "purple": supported values: "red", "green", "blue"'}]


def test_schema_type(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    status = _invalid(cluster, namespace, widget_crd, {"color": "red", "size": "big"})
    assert status["details"]["causes"] == [{
        "reason": "FieldValueTypeInvalid", "field": "spec.size",
        "message": 'Invalid value: "string": spec.size in body must be of type integer: '
                   '"string"'}]


def test_schema_pattern(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    status = _invalid(cluster, namespace, widget_crd, {"color": "red", "label": "No"})
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.label",
        "message": "Invalid value: \"No\": spec.label in body should match '^[a-z]+$'"}]


def test_several_schema_errors_are_listed_together(cluster: Cluster, namespace: str,
                                                   widget_crd: ContractCRD) -> None:
    status = _invalid(cluster, namespace, widget_crd, {"size": -1})
    fields = [c["field"] for c in status["details"]["causes"]]
    assert sorted(fields) == ["spec.color", "spec.size"]
    assert status["message"].startswith(f'Widget.{widget_crd.group} "bad" is invalid: [')
    assert status["message"].endswith("]")


def test_unknown_fields_are_pruned_with_a_warning(cluster: Cluster, namespace: str,
                                                  widget_crd: ContractCRD) -> None:
    body = widget_crd.obj("p", namespace=namespace, spec={"color": "red", "bogus": 1})
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace), json=body)
    assert created.status_code == 201
    assert "bogus" not in created.json()["spec"]
    assert created.headers.get_list("warning") == ['299 - "unknown field \\"spec.bogus\\""']


def test_unknown_fields_with_strict_validation_are_400(cluster: Cluster, namespace: str,
                                                       widget_crd: ContractCRD) -> None:
    body = widget_crd.obj("p", namespace=namespace, spec={"color": "red", "bogus": 1})
    with cluster.http() as http:
        response = http.post(widget_crd.path(namespace=namespace),
                             params={"fieldValidation": "Strict"},
                             json=body)
    assert response.status_code == 400
    status = status_of(response)
    assert status["reason"] == "BadRequest"
    assert status["message"] == ('Widget in version "v1" cannot be handled as a Widget: strict '
                                 'decoding error: unknown field "spec.bogus"')


def test_invalid_crd_is_422(cluster: Cluster) -> None:
    crd = new_test_crd(kind="Broken", plural="brokens", namespaced=True)
    manifest = crd_manifest(crd)
    manifest["metadata"]["name"] = f"wrong.{crd.group}"
    with cluster.http() as http:
        response = http.post(CRDS, json=manifest)
    assert response.status_code == 422
    status = status_of(response)
    assert status["details"]["kind"] == "CustomResourceDefinition"
    assert status["details"]["group"] == "apiextensions.k8s.io"
    causes = {(c["field"], c["message"]) for c in status["details"]["causes"]}
    assert ("metadata.name",
            f'Invalid value: "wrong.{crd.group}": must be spec.names.plural+"."+spec.group'
            ) in causes


def test_a_crd_with_an_unknown_scope_is_422(cluster: Cluster) -> None:
    crd = new_test_crd(kind="Scoped", plural="scopeds", namespaced=True)
    manifest = crd_manifest(crd)
    manifest["spec"]["scope"] = "Galaxy"
    with cluster.http() as http:
        response = http.post(CRDS, json=manifest)
        assert http.get(f"{CRDS}/{crd.name}").status_code == 404  # nothing was stored
    assert response.status_code == 422
    causes = {(c["reason"], c["field"], c["message"])
              for c in status_of(response)["details"]["causes"]}
    assert ("FieldValueNotSupported", "spec.scope",
            'Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"') in causes


def test_deleting_a_crd_removes_its_objects_and_endpoint(cluster: Cluster,
                                                         namespace: str) -> None:
    crd = new_test_crd(kind="Doomed", plural="dooms", namespaced=True)
    with cluster.http() as http:
        install_crd(http, crd)
        http.post(crd.path(namespace=namespace), json=crd.obj("d1", namespace=namespace)
                  ).raise_for_status()
        deleted = http.delete(f"{CRDS}/{crd.name}")
        assert deleted.status_code == 200
        assert deleted.json()["metadata"]["deletionTimestamp"]
        wait_until(lambda: http.get(f"{CRDS}/{crd.name}").status_code == 404,
                   what="the CRD to be removed")
        wait_until(lambda: http.get(crd.path(namespace=namespace)).status_code == 404,
                   what="the resource to stop being served")
        groups = http.get("/apis", headers={"Accept": "application/json"}).json()["groups"]
    assert crd.group not in {g["name"] for g in groups}
