"""Discovery: /version, /api, /apis, group and group/version documents, OpenAPI v2 and v3."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import ContractCRD

PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def test_version_names_a_1_30_or_newer_server(cluster: Cluster) -> None:
    with cluster.http() as http:
        body = http.get("/version").json()
    assert body["major"] == "1"
    assert int(body["minor"].rstrip("+")) >= 30
    assert body["gitVersion"].startswith("v1.")


def test_core_api_lists_v1(cluster: Cluster) -> None:
    with cluster.http() as http:
        body = http.get("/api", headers={"Accept": "application/json"}).json()
    assert body["kind"] == "APIVersions"
    assert body["versions"] == ["v1"]


def test_core_v1_resources_with_verbs_and_short_names(cluster: Cluster) -> None:
    with cluster.http() as http:
        body = http.get("/api/v1").json()
    assert body["kind"] == "APIResourceList"
    assert body["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in body["resources"]}
    for name in ("namespaces", "events", "configmaps", "secrets", "serviceaccounts", "nodes",
                 "pods"):
        assert name in by_name, name
    configmaps = by_name["configmaps"]
    assert configmaps["kind"] == "ConfigMap"
    assert configmaps["namespaced"] is True
    assert "cm" in configmaps["shortNames"]
    assert set(configmaps["verbs"]) >= {"create", "delete", "deletecollection", "get", "list",
                                        "patch", "update", "watch"}
    assert by_name["namespaces"]["namespaced"] is False
    assert "namespaces/status" in by_name
    assert "serviceaccounts/token" in by_name


def test_group_list_holds_the_groups_the_project_uses(cluster: Cluster) -> None:
    with cluster.http() as http:
        body = http.get("/apis", headers={"Accept": "application/json"}).json()
    assert body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in body["groups"]}
    for name in ("coordination.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io",
                 "authorization.k8s.io", "authentication.k8s.io"):
        assert name in groups, name
    rbac = groups["rbac.authorization.k8s.io"]
    assert rbac["preferredVersion"] == {"groupVersion": "rbac.authorization.k8s.io/v1",
                                        "version": "v1"}


def test_one_group_and_its_resources(cluster: Cluster) -> None:
    with cluster.http() as http:
        group = http.get("/apis/coordination.k8s.io").json()
        resources = http.get("/apis/coordination.k8s.io/v1").json()
    assert group["kind"] == "APIGroup"
    assert group["name"] == "coordination.k8s.io"
    leases = next(r for r in resources["resources"] if r["name"] == "leases")
    assert leases["kind"] == "Lease"
    assert leases["namespaced"] is True


@pytest.mark.parametrize("path", ["/apis/no-such-group.contract.kubevirt-usb.io/v1",
                                  "/apis/no-such-group.contract.kubevirt-usb.io"])
def test_unknown_group_is_a_plain_404(cluster: Cluster, path: str) -> None:
    with cluster.http() as http:
        response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "404 page not found\n"


def test_a_crd_appears_in_discovery_with_its_short_name(cluster: Cluster,
                                                        widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        body = http.get(f"/apis/{widget_crd.group}/{widget_crd.version}").json()
        groups = http.get("/apis", headers={"Accept": "application/json"}).json()["groups"]
    by_name = {r["name"]: r for r in body["resources"]}
    main = by_name[widget_crd.plural]
    assert main["kind"] == "Widget"
    assert main["namespaced"] is True
    assert main["shortNames"] == [widget_crd.short_name]
    assert main["singularName"] == "widget"
    assert by_name[f"{widget_crd.plural}/status"]["verbs"] == ["get", "patch", "update"]
    assert widget_crd.group in {g["name"] for g in groups}


def test_openapi_v3_describes_patch_with_field_validation(cluster: Cluster) -> None:
    """What kubectl's QueryParamVerifierV3 reads before `apply --validate=strict`."""
    with cluster.http() as http:
        root = http.get("/openapi/v3").json()
        url = root["paths"]["api/v1"]["serverRelativeURL"]
        doc = http.get(url).json()
    patches = [op["patch"] for op in doc["paths"].values() if "patch" in op]
    configmap_patch = next(
        p for p in patches
        if p.get("x-kubernetes-group-version-kind") == {"group": "", "version": "v1",
                                                         "kind": "ConfigMap"})
    assert "fieldValidation" in {p["name"] for p in configmap_patch["parameters"]}


def test_openapi_v3_for_a_crd_group(cluster: Cluster, widget_crd: ContractCRD) -> None:
    key = f"apis/{widget_crd.group}/{widget_crd.version}"
    with cluster.http() as http:
        root = http.get("/openapi/v3").json()
        doc = http.get(root["paths"][key]["serverRelativeURL"]).json()
    assert any(path.endswith(f"/{widget_crd.plural}/{{name}}") for path in doc["paths"])


def test_openapi_v2_json_and_protobuf(cluster: Cluster) -> None:
    with cluster.http() as http:
        as_json = http.get("/openapi/v2", headers={"Accept": "application/json"})
        as_protobuf = http.get("/openapi/v2", headers={"Accept": PROTOBUF_V2})
    assert as_json.json()["swagger"] == "2.0"
    assert as_protobuf.status_code == 200
    assert as_protobuf.headers["content-type"] == \
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    # field 1 (swagger), length-delimited, "2.0"
    assert as_protobuf.content.startswith(b"\x0a\x032.0")


def test_openapi_v2_refuses_what_it_cannot_serve(cluster: Cluster) -> None:
    with cluster.http() as http:
        response = http.get("/openapi/v2", headers={"Accept": "text/html"})
    assert response.status_code == 406
