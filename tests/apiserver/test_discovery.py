"""Discovery documents and OpenAPI, as pure functions of the registry."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import BaseRoute

from kubevirt_usb.apiserver import discovery
from kubevirt_usb.apiserver.extension import APIContext
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo, builtin_resources


class _Extension:
    group = "subresources.example.com"
    version = "v1"

    def api_resources(self) -> list[dict[str, Any]]:
        return [{"name": "things/connect", "namespaced": True, "kind": "", "verbs": ["get"]}]

    def routes(self, context: APIContext) -> list[BaseRoute]:
        return []


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    for info in builtin_resources():
        registry.add(info)
    registry.add(ResourceInfo(group="example.com", version="v1", resource="widgets",
                              kind="Widget", singular="widget", namespaced=True, custom=True,
                              schema={"type": "object", "properties": {"spec": {
                                  "type": "object"}}}))
    return registry


def test_version_and_core_versions() -> None:
    assert discovery.version()["minor"] == "36"
    core = discovery.api_versions(server_address="127.0.0.1:6443")
    assert core["versions"] == ["v1"]
    assert core["serverAddressByClientCIDRs"][0]["serverAddress"] == "127.0.0.1:6443"


def test_group_list_includes_extensions(registry: Registry) -> None:
    groups = discovery.api_group_list(registry, [_Extension()])["groups"]
    names = [g["name"] for g in groups]
    assert "example.com" in names
    assert names[-1] == "subresources.example.com"
    assert "" not in names
    extension = discovery.api_group(registry, [_Extension()], "subresources.example.com")
    assert extension is not None
    assert extension["preferredVersion"]["version"] == "v1"
    assert discovery.api_group(registry, [], "missing.example.com") is None


def test_resource_lists(registry: Registry) -> None:
    core = discovery.api_resource_list(registry, [], "", "v1")
    assert core is not None
    assert core["groupVersion"] == "v1"
    names = [r["name"] for r in core["resources"]]
    assert names == sorted(names, key=lambda n: n.split("/")[0])
    assert "namespaces/finalize" in names
    extension = discovery.api_resource_list(registry, [_Extension()],
                                            "subresources.example.com", "v1")
    assert extension is not None
    assert extension["resources"][0]["name"] == "things/connect"
    assert discovery.api_resource_list(registry, [], "example.com", "v2") is None


def test_openapi_v3_paths_carry_gvk_and_patch_parameters(registry: Registry) -> None:
    doc = discovery.openapi_v3_group_version(registry, "example.com", "v1")
    assert doc is not None
    item = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "example.com", "version": "v1", "kind": "Widget"}
    assert {p["name"] for p in item["patch"]["parameters"]} == {
        "dryRun", "fieldManager", "fieldValidation", "force"}
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["properties"] == {"spec": {"type": "object"}}
    assert discovery.openapi_v3_group_version(registry, "authorization.k8s.io", "v1") is None


def test_openapi_v3_root_links_every_group_version(registry: Registry) -> None:
    root = discovery.openapi_v3_root(registry)["paths"]
    assert root["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    assert "apis/example.com/v1" in root


@pytest.mark.parametrize(("accept", "media"), [
    ("", "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", discovery.OPENAPI_V2_PROTOBUF),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json",
     discovery.OPENAPI_V2_PROTOBUF),
    ("text/html;q=0.9, application/json;q=0.5", "application/json"),
    ("text/html", None),
    ("application/json;q=0", None),
])
def test_openapi_v2_negotiation(accept: str, media: str | None) -> None:
    assert discovery.openapi_v2_media_type(accept) == media


def test_openapi_v2_protobuf_encodes_swagger_and_info(registry: Registry) -> None:
    document = discovery.openapi_v2(registry)
    assert "com.example.v1.Widget" in document["definitions"]
    encoded = discovery.openapi_v2_protobuf(document)
    title = b"Kubernetes"
    version = document["info"]["version"].encode()
    info = b"\x0a" + bytes([len(title)]) + title + b"\x12" + bytes([len(version)]) + version
    assert encoded == b"\x0a\x032.0" + b"\x12" + bytes([len(info)]) + info


def test_long_protobuf_fields_use_multi_byte_lengths() -> None:
    encoded = discovery.openapi_v2_protobuf({"swagger": "x" * 200, "info": {}})
    assert encoded[:3] == b"\x0a\xc8\x01"
