"""Discovery documents and OpenAPI: what clients (kubectl, lightkube, kopf) read to learn what the
server serves. Pure functions of the registry and the mounted extensions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from kubevirt_usb import __version__
from kubevirt_usb.apiserver.extension import Extension
from kubevirt_usb.apiserver.protobuf import length_delimited
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo

# kube-apiserver 1.36, whose texts the emulator speaks; kubectl 1.33 and later (which gcloud's
# kubectl dispatcher runs for such a server) write built-in kinds as protobuf (protobuf.py).
KUBE_VERSION = {"major": "1", "minor": "36", "gitVersion": "v1.36.2-kubevirt-usb-emulator",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64",
                "emulator": f"kubevirt-usb {__version__}"}


def version() -> dict[str, Any]:
    return dict(KUBE_VERSION)


def api_versions(*, server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(group: str, versions: Sequence[str], preferred: str) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred},
    }


def api_group_list(registry: Registry, extensions: Sequence[Extension]) -> dict[str, Any]:
    groups = [_group_entry(g, vs, p) for g, vs, p in registry.groups() if g]
    groups += [_group_entry(e.group, [e.version], e.version) for e in extensions]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, extensions: Sequence[Extension], group: str
              ) -> dict[str, Any] | None:
    for g, versions, preferred in registry.groups():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, versions, preferred)}
    for ext in extensions:
        if ext.group == group:
            return {"kind": "APIGroup", "apiVersion": "v1",
                    **_group_entry(group, [ext.version], ext.version)}
    return None


def api_resource_list(registry: Registry, extensions: Sequence[Extension], group: str,
                      version: str) -> dict[str, Any] | None:
    group_version = f"{group}/{version}" if group else version
    for ext in extensions:
        if ext.group == group and ext.version == version:
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                    "resources": ext.api_resources()}
    if not registry.has_group_version(group, version):
        return None
    resources: list[dict[str, Any]] = []
    for info in sorted(registry.in_group_version(group, version), key=lambda i: i.resource):
        resources.extend(info.discovery_entry())
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


# ---- OpenAPI --------------------------------------------------------------------------------

_WRITE_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query",
     "schema": {"type": "string", "uniqueItems": True}},
]
_PATCH_PARAMS = [*_WRITE_PARAMS,
                 {"name": "force", "in": "query", "schema": {"type": "boolean"}}]


def _definition_name(info: ResourceInfo) -> str:
    group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{group}.{info.version}.{info.kind}"


def _schema_for(info: ResourceInfo) -> dict[str, Any]:
    gvk = [{"group": info.group, "version": info.version, "kind": info.kind}]
    body: dict[str, Any] = dict(info.schema) if info.schema else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    body["x-kubernetes-group-version-kind"] = gvk
    return body


def _operations(info: ResourceInfo) -> dict[str, dict[str, Any]]:
    gvk = {"group": info.group, "version": info.version, "kind": info.kind}
    ref = {"$ref": f"#/components/schemas/{_definition_name(info)}"}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}

    def op(action: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"operationId": f"{action}{info.kind}", "parameters": params, "responses": ok,
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}

    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    scope = "/namespaces/{namespace}" if info.namespaced else ""
    collection = f"{prefix}{scope}/{info.resource}"
    item = f"{collection}/{{name}}"
    paths: dict[str, dict[str, Any]] = {
        collection: {"get": op("list", []), "post": op("post", list(_WRITE_PARAMS))},
        item: {"get": op("get", []), "put": op("put", list(_WRITE_PARAMS)),
               "patch": op("patch", list(_PATCH_PARAMS)), "delete": op("delete", [])},
    }
    for sub in info.subresources:
        paths[f"{item}/{sub}"] = {"get": op("get", []), "put": op("put", list(_WRITE_PARAMS)),
                                  "patch": op("patch", list(_PATCH_PARAMS))}
    return paths


def openapi_v3_group_version(registry: Registry, group: str, version: str
                             ) -> dict[str, Any] | None:
    infos = [i for i in registry.in_group_version(group, version) if i.stored]
    if not infos:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for info in infos:
        paths.update(_operations(info))
        schemas[_definition_name(info)] = _schema_for(info)
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions, _preferred in registry.groups():
        for v in versions:
            key = f"apis/{group}/{v}" if group else f"api/{v}"
            doc = openapi_v3_group_version(registry, group, v)
            digest = hashlib.sha256(orjson.dumps(doc)).hexdigest()[:16].upper()
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_OPENAPI_V2_TYPES = (("application", "json"),
                     ("application", "com.github.proto-openapi.spec.v2@v1.0+protobuf"),
                     ("application", "com.github.proto-openapi.spec.v2.v1.0+protobuf"))


def openapi_v2_media_type(accept: str) -> str | None:
    """The media type /openapi/v2 answers an Accept header with (kube-openapi's negotiation:
    the first acceptable clause wins), or None for 406 Not Acceptable."""
    clauses = []
    for index, part in enumerate((accept or "*/*").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind, _, sub = media.partition("/")
        if quality > 0:
            clauses.append((-quality, index, kind, sub))
    for _q, _i, kind, sub in sorted(clauses):
        for offered_kind, offered_sub in _OPENAPI_V2_TYPES:
            if kind in (offered_kind, "*") and sub in (offered_sub, "*"):
                return "application/json" if offered_sub == "json" else OPENAPI_V2_PROTOBUF
    return None


def openapi_v2_protobuf(document: dict[str, Any]) -> bytes:
    """The gnostic `openapi_v2.Document` protobuf kubectl asks for: swagger version and info.

    Definitions are left out: kubectl then finds no client-side schema for a kind and leaves
    validation to the server (fieldValidation=Strict), which is what it does on a real server
    for a kind the document does not describe.
    """
    info = document.get("info") or {}
    info_pb = length_delimited(1, str(info.get("title", "")).encode()) + \
        length_delimited(2, str(info.get("version", "")).encode())
    swagger = length_delimited(1, str(document.get("swagger", "2.0")).encode())
    return swagger + length_delimited(2, info_pb)


def openapi_v2(registry: Registry) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for info in registry.all():
        if info.stored:
            schema = _schema_for(info)
            definitions[_definition_name(info)] = schema
    return {"swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
            "paths": {}, "definitions": definitions}
