"""The HTTP face: path parsing, authentication, authorization, bodies, responses, watches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient, WebSocketDenialResponse

from kubevirt_usb.apiserver import bootstrap, errors, protobuf
from kubevirt_usb.apiserver.api import RequestContext
from kubevirt_usb.apiserver.app import (
    Authenticator,
    build_app,
    decode_body,
    json_response,
    negotiate,
    new_cluster_state,
    parse_request_path,
    prefers_protobuf,
    warning_header,
)
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.resources import ResourceInfo

ADMIN = UserInfo(name="admin", groups=("system:masters", "system:authenticated"))
ALICE = UserInfo(name="alice", groups=("system:authenticated",))


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/configmaps", {}, ("list", "", "v1", "ns", "configmaps", "",
                                                     "")),
    ("GET", "/api/v1/namespaces/ns/configmaps/a", {}, ("get", "", "v1", "ns", "configmaps",
                                                       "a", "")),
    ("GET", "/api/v1/namespaces/ns/configmaps", {"watch": "true"},
     ("watch", "", "v1", "ns", "configmaps", "", "")),
    ("GET", "/api/v1/watch/namespaces/ns/configmaps/a", {},
     ("watch", "", "v1", "ns", "configmaps", "a", "")),
    ("POST", "/apis/example.com/v1/namespaces/ns/widgets", {},
     ("create", "example.com", "v1", "ns", "widgets", "", "")),
    ("PUT", "/apis/example.com/v1/namespaces/ns/widgets/w/status", {},
     ("update", "example.com", "v1", "ns", "widgets", "w", "status")),
    ("PATCH", "/api/v1/nodes/n", {}, ("patch", "", "v1", "", "nodes", "n", "")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", {},
     ("deletecollection", "", "v1", "ns", "configmaps", "", "")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "v1", "ns", "namespaces", "ns", "")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {},
     ("update", "", "v1", "ns", "namespaces", "ns", "finalize")),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", {},
     ("create", "", "v1", "ns", "serviceaccounts", "sa", "token")),
    ("POST", "/api/v1/namespaces/ns/configmaps/a", {}, ("create", "", "v1", "ns", "configmaps",
                                                        "a", "")),
    ("PUT", "/api/v1/namespaces/ns/configmaps", {}, ("update", "", "v1", "ns", "configmaps", "",
                                                     "")),
])
def test_parse_request_path(method: str, path: str, query: dict[str, str],
                            expected: tuple[str, ...]) -> None:
    info = parse_request_path(method, path, query)
    assert info is not None
    assert (info.verb, info.group, info.version, info.namespace, info.resource, info.name,
            info.subresource) == expected


@pytest.mark.parametrize(("method", "path", "served"), [
    ("POST", "/api/v1/namespaces/ns/configmaps", True),
    ("POST", "/api/v1/namespaces/ns/configmaps/a", False),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", True),
    ("PUT", "/api/v1/namespaces/ns/configmaps", False),
    ("PATCH", "/api/v1/namespaces/ns/configmaps", False),
    ("DELETE", "/api/v1/namespaces/ns/configmaps/a/status", False),
    ("DELETE", "/api/v1/namespaces/ns/configmaps/a", True),
    ("OPTIONS", "/api/v1/namespaces/ns/configmaps/a", False),
])
def test_methods_a_path_does_not_serve_keep_their_verb(method: str, path: str,
                                                       served: bool) -> None:
    """The verb is asked of RBAC first; whether a handler serves it decides 405 afterwards."""
    info = parse_request_path(method, path, {})
    assert info is not None
    assert info.served is served


@pytest.mark.parametrize("path", ["/", "/version", "/api", "/apis/group", "/openapi/v2",
                                  "/api/v1/a/b/c/d"])
def test_paths_that_name_no_resource(path: str) -> None:
    assert parse_request_path("GET", path, {}) is None


def test_warning_header_quotes_the_text() -> None:
    assert warning_header('unknown field "spec.x"') == '299 - "unknown field \\"spec.x\\""'


def test_decode_body_formats_and_errors() -> None:
    api, _control = new_cluster_state()
    info = api.registry.get("", "v1", "configmaps")
    assert info is not None
    assert decode_body(b'{"a": 1}', "application/json; charset=utf-8", info) == {"a": 1}
    assert decode_body(b"a: 1\n", "application/yaml", info) == {"a": 1}
    assert decode_body(b'{"a": 1}', "", info) == {"a": 1}
    with pytest.raises(errors.APIError) as unsupported:
        decode_body(b"x", "text/plain", info)
    assert unsupported.value.code == 415
    with pytest.raises(errors.APIError) as not_object:
        decode_body(b"[1]", "application/json", info)
    assert not_object.value.code == 400
    with pytest.raises(errors.APIError) as malformed:
        decode_body(b"{", "application/json", info)
    assert malformed.value.code == 400


def test_decode_body_reads_protobuf_for_built_in_kinds_only() -> None:
    api, _control = new_cluster_state()
    configmaps = api.registry.get("", "v1", "configmaps")
    assert configmaps is not None
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert decode_body(protobuf.encode(cm), protobuf.MEDIA_TYPE, configmaps) == cm
    with pytest.raises(errors.APIError) as garbage:
        decode_body(b"{}", protobuf.MEDIA_TYPE, configmaps)
    assert garbage.value.code == 400
    custom = ResourceInfo(group="example.com", version="v1", resource="widgets", kind="Widget",
                          singular="widget", namespaced=True, custom=True)
    with pytest.raises(errors.APIError) as no_protobuf:
        decode_body(protobuf.encode(cm), protobuf.MEDIA_TYPE, custom)
    assert no_protobuf.value.code == 415


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{protobuf.MEDIA_TYPE},application/json", True),
    (protobuf.MEDIA_TYPE, True),
    (f"application/json,{protobuf.MEDIA_TYPE}", False),
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", False),
    ("*/*", False),
    ("", False),
])
def test_prefers_protobuf(accept: str, expected: bool) -> None:
    assert prefers_protobuf(accept) is expected


def test_negotiate_keeps_json_where_protobuf_cannot_say_it() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    first = f"{protobuf.MEDIA_TYPE},application/json"
    answer = negotiate(json_response(cm, status=201, warnings=["w"]), custom=False,
                       accept=first)
    assert (answer.status_code, answer.media_type) == (201, protobuf.MEDIA_TYPE)
    assert protobuf.decode(bytes(answer.body)) == cm
    assert (b"warning", b'299 - "w"') in answer.raw_headers
    assert negotiate(json_response(cm), custom=True, accept=first).media_type == "application/json"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}  # no table: JSON
    assert negotiate(json_response(pod), custom=False, accept=first).media_type == \
        "application/json"


@pytest.fixture
def client() -> Iterator[TestClient]:
    api, control = new_cluster_state()
    authenticator = Authenticator(tokens={"admin": ADMIN, "alice": ALICE})
    ctx = RequestContext(user=ADMIN, field_manager="bootstrap")
    for obj in [*bootstrap.namespaces(), *bootstrap.cluster_roles(),
                *bootstrap.cluster_role_bindings()]:
        info = api.registry.by_kind(obj["apiVersion"], obj["kind"])
        assert info is not None
        api.create(info, namespace="", body=obj, ctx=ctx)
    api.store.compact()
    app, _server = build_app(api=api, control=control, authenticator=authenticator)
    with TestClient(app, base_url="https://testserver") as test_client:
        test_client.headers["Authorization"] = "Bearer admin"
        yield test_client


def _status(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status"
    assert body["code"] == response.status_code
    return body


def test_unknown_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/namespaces", headers={"Authorization": "Bearer nobody"})
    assert response.status_code == 401
    assert _status(response)["reason"] == "Unauthorized"


def test_anonymous_requests_are_authorized_as_system_anonymous(client: TestClient) -> None:
    del client.headers["Authorization"]
    assert client.get("/version").status_code == 200
    assert client.get("/healthz").text == "ok"
    listed = client.get("/api/v1/namespaces")
    assert listed.status_code == 403
    assert _status(listed)["message"] == ('namespaces is forbidden: User "system:anonymous" '
                                          'cannot list resource "namespaces" in API group "" at '
                                          "the cluster scope")
    discovery = client.get("/apis")
    assert discovery.status_code == 403
    assert _status(discovery)["message"] == \
        'forbidden: User "system:anonymous" cannot get path "/apis"'


def test_authenticated_users_may_discover(client: TestClient) -> None:
    response = client.get("/api/v1", headers={"Authorization": "Bearer alice"})
    assert response.status_code == 200
    forbidden = client.get("/api/v1/namespaces/default/configmaps/x",
                           headers={"Authorization": "Bearer alice"})
    assert _status(forbidden)["message"] == (
        'configmaps "x" is forbidden: User "alice" cannot get resource "configmaps" in API group '
        '"" in the namespace "default"')


def _page_not_found(response: Any) -> bool:
    return (response.status_code, response.headers["content-type"], response.text) == (
        404, "text/plain; charset=utf-8", "404 page not found\n")


def test_paths_and_methods_not_served(client: TestClient) -> None:
    for path in ("/apis/nothing.example.com/v1/things", "/apis/nothing.example.com/v1",
                 "/apis/nothing.example.com", "/nothing"):
        assert _page_not_found(client.get(path)), path
    for path in ("/api/v2", "/api/v2/pods", "/apis/authorization.k8s.io/v9",
                 "/apis/authorization.k8s.io/v9/selfsubjectaccessreviews"):
        below_a_built_in_group = client.get(path)
        assert below_a_built_in_group.status_code == 404, path
        assert below_a_built_in_group.json()["details"] == {}, path
    bare = client.get("/openapi/v3/apis/nothing.example.com/v1")
    assert (bare.status_code, bare.content, "content-type" in bare.headers) == (404, b"", False)
    unknown_resource = client.get("/api/v1/things")
    assert unknown_resource.status_code == 404
    assert unknown_resource.json()["details"] == {}
    not_allowed = client.post("/api/v1/namespaces/default/configmaps/x", json={})
    assert not_allowed.status_code == 405
    assert _status(not_allowed)["message"] == \
        "the server does not allow this method on the requested resource"
    review_list = client.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert review_list.status_code == 405
    assert client.post("/version").status_code == 405


def test_what_the_crd_handler_does_not_serve(client: TestClient) -> None:
    """Below a custom resource's group the CRD handler answers: what it does not serve goes to
    the last handler (text 404), a subresource the CRD lacks is the object's NotFound."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.example.com"}, "spec": {
               "group": "example.com", "scope": "Namespaced",
               "names": {"plural": "things", "kind": "Thing"},
               "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                   "openAPIV3Schema": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       json=crd).status_code == 201
    path = "/apis/example.com/v1/namespaces/default/things"
    assert client.post(path, json={"metadata": {"name": "t"}}).status_code == 201
    assert _page_not_found(client.get("/apis/example.com/v1/namespaces/default/nosuch"))
    assert _page_not_found(client.get("/apis/example.com/v1/things/t"))
    assert _page_not_found(client.post("/apis/example.com/v1/things", json={}))
    assert client.get("/apis/example.com/v1/things").status_code == 200
    scale = client.get(f"{path}/t/scale")
    assert scale.status_code == 404
    assert scale.json()["message"] == 'things.example.com "t" not found'
    assert scale.json()["details"] == {"name": "t", "group": "example.com", "kind": "things"}


def test_create_get_list_and_delete_responses(client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    created = client.post(path, json={"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert created.status_code == 201
    assert client.get(f"{path}/c").json() == created.json()
    listed = client.get(path, params={"limit": "1"}).json()
    assert listed["kind"] == "ConfigMapList"
    assert listed["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    deleted = client.delete(f"{path}/c")
    assert deleted.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "details": {
                                  "name": "c", "kind": "configmaps",
                                  "uid": created.json()["metadata"]["uid"]}}


def test_put_of_a_missing_lease_answers_201(client: TestClient) -> None:
    response = client.put("/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
                          json={"metadata": {"name": "l"}, "spec": {}})
    assert response.status_code == 201


def test_patch_content_types_and_options(client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    client.post(path, json={"metadata": {"name": "p"}})
    unsupported = client.patch(f"{path}/p", content=b"{}",
                               headers={"Content-Type": "application/json"})
    assert unsupported.status_code == 415
    no_manager = client.patch(f"{path}/p", content=b"{}",
                              headers={"Content-Type": "application/apply-patch+yaml"})
    assert no_manager.status_code == 422
    forced = client.patch(f"{path}/p", params={"force": "true"}, content=b"{}",
                          headers={"Content-Type": "application/merge-patch+json"})
    assert _status(forced)["details"]["causes"][0]["field"] == "force"
    garbage = client.patch(f"{path}/p", content=b"{",
                           headers={"Content-Type": "application/merge-patch+json"})
    assert garbage.status_code == 400
    applied = client.patch(f"{path}/new", params={"fieldManager": "me"},
                           content=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n",
                           headers={"Content-Type": "application/apply-patch+yaml"})
    assert applied.status_code == 201


def test_write_options_are_checked(client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    dry = client.post(path, params={"dryRun": "Sometimes"}, json={"metadata": {"name": "x"}})
    assert dry.status_code == 400
    validation = client.post(path, params={"fieldValidation": "Loose"},
                             json={"metadata": {"name": "x"}})
    assert validation.status_code == 400
    manager = client.post(path, params={"fieldManager": "m" * 129},
                          json={"metadata": {"name": "x"}})
    assert manager.status_code == 422


def test_warnings_become_warning_headers(client: TestClient) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.example.com"}, "spec": {
               "group": "example.com", "scope": "Namespaced",
               "names": {"plural": "things", "kind": "Thing"},
               "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                   "openAPIV3Schema": {"type": "object", "properties": {
                       "spec": {"type": "object"}}}}}]}}
    assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       json=crd).status_code == 201
    created = client.post("/apis/example.com/v1/namespaces/default/things",
                          json={"metadata": {"name": "t"}, "spec": {}, "a": 1, "b": 2})
    assert created.status_code == 201
    assert created.headers.get_list("warning") == ['299 - "unknown field \\"a\\""',
                                                   '299 - "unknown field \\"b\\""']


def test_token_request_mints_a_token_for_the_service_account(client: TestClient) -> None:
    client.post("/api/v1/namespaces/default/serviceaccounts", json={"metadata": {"name": "sa"}})
    answer = client.post("/api/v1/namespaces/default/serviceaccounts/sa/token",
                         json={"spec": {"expirationSeconds": 600}})
    assert answer.status_code == 201
    token = answer.json()["status"]["token"]
    review = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={},
                         headers={"Authorization": f"Bearer {token}"})
    assert review.json()["status"]["userInfo"]["username"] == \
        "system:serviceaccount:default:sa"
    missing = client.post("/api/v1/namespaces/default/serviceaccounts/none/token", json={})
    assert missing.status_code == 404


def test_watch_from_a_compacted_version_is_an_error_event(client: TestClient) -> None:
    response = client.get("/api/v1/namespaces/default/configmaps",
                          params={"watch": "1", "resourceVersion": "1"})
    assert response.status_code == 200
    event = orjson.loads(response.content.splitlines()[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_watch_replays_changes_until_its_timeout(client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    created = client.post(path, json={"metadata": {"name": "w"}}).json()
    client.patch(f"{path}/w", json={"data": {"a": "1"}},
                 headers={"Content-Type": "application/merge-patch+json"})
    response = client.get(path, params={"watch": "1", "timeoutSeconds": "0.2",
                                        "resourceVersion": created["metadata"]["resourceVersion"]})
    events = [orjson.loads(line) for line in response.content.splitlines()]
    assert [e["type"] for e in events] == ["MODIFIED"]


def test_a_watch_over_a_websocket_sees_objects_and_changes(client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    client.post(path, json={"metadata": {"name": "before"}})
    with client.websocket_connect(f"{path}?watch=true") as ws:
        first = orjson.loads(ws.receive_text())
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "before")
        client.post(path, json={"metadata": {"name": "after"}})
        second = orjson.loads(ws.receive_text())
        assert (second["type"], second["object"]["metadata"]["name"]) == ("ADDED", "after")


def test_a_websocket_gets_the_same_refusals_as_http(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as forbidden, client.websocket_connect(
            "/api/v1/namespaces/default/secrets?watch=true",
            headers={"Authorization": "Bearer alice"}):
        pass
    assert forbidden.value.status_code == 403
    assert forbidden.value.json()["message"] == (
        'secrets is forbidden: User "alice" cannot watch resource "secrets" in API group "" '
        'in the namespace "default"')
    with pytest.raises(WebSocketDenialResponse) as not_a_watch, client.websocket_connect(
            "/api/v1/namespaces/default/configmaps"):
        pass
    assert not_a_watch.value.status_code == 400
    assert not_a_watch.value.json()["message"] == "only watches are served over a websocket"
    with pytest.raises(WebSocketDenialResponse) as unknown, client.websocket_connect(
            "/apis/example.com/v1/widgets?watch=true"):
        pass
    assert unknown.value.status_code == 404


def test_openapi_v2_content_negotiation(client: TestClient) -> None:
    as_json = client.get("/openapi/v2", headers={"Accept": "application/json"})
    assert as_json.json()["swagger"] == "2.0"
    protobuf = client.get("/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert protobuf.headers["content-type"] == \
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert client.get("/openapi/v2", headers={"Accept": "text/html"}).status_code == 406


def test_tables_for_kubectl(client: TestClient) -> None:
    table = client.get("/api/v1/namespaces", headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]


class _Connect:
    """A mounted API group (like the virt-api emulator's subresources.kubevirt.io)."""

    group = "subresources.example.com"
    version = "v1"

    def api_resources(self) -> list[dict[str, Any]]:
        return [{"name": "widgets/connect", "namespaced": True, "kind": "", "verbs": ["get"]}]

    def routes(self, context: Any) -> list[Any]:
        async def connect(request: Request) -> JSONResponse:
            user: UserInfo = request.state.user
            allowed = await context.is_allowed(user=user, verb="get", group=self.group,
                                               resource="widgets", subresource="connect",
                                               namespace="default", name="w")
            namespace = await context.get_object(group="", resource="namespaces",
                                                 namespace="", name="default")
            return JSONResponse({"user": user.name, "allowed": allowed,
                                 "namespace": namespace["metadata"]["name"]})

        return [Route(f"/apis/{self.group}/{self.version}/namespaces/default/widgets/w/connect",
                      connect)]


def test_extensions_mount_routes_and_join_discovery() -> None:
    api, control = new_cluster_state()
    api.create(api.registry.get("", "v1", "namespaces"), namespace="",  # type: ignore[arg-type]
               body={"metadata": {"name": "default"}},
               ctx=RequestContext(user=ADMIN, field_manager="t"))
    app, _server = build_app(api=api, control=control, extensions=[_Connect()],
                             authenticator=Authenticator(tokens={"admin": ADMIN,
                                                                 "alice": ALICE}))
    with TestClient(app, base_url="https://testserver") as test_client:
        admin = {"Authorization": "Bearer admin"}
        answer = test_client.get(
            "/apis/subresources.example.com/v1/namespaces/default/widgets/w/connect",
            headers=admin).json()
        assert answer == {"user": "admin", "allowed": True, "namespace": "default"}
        alice = test_client.get(
            "/apis/subresources.example.com/v1/namespaces/default/widgets/w/connect",
            headers={"Authorization": "Bearer alice"}).json()
        assert alice["allowed"] is False
        rejected = test_client.get(
            "/apis/subresources.example.com/v1/namespaces/default/widgets/w/connect",
            headers={"Authorization": "Bearer stolen"})
        assert rejected.status_code == 401
        resources = test_client.get("/apis/subresources.example.com/v1", headers=admin).json()
        assert resources["resources"][0]["name"] == "widgets/connect"


def test_patch_content_types_are_matched_by_go_restful_then_by_the_handler(
        client: TestClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    assert client.post(path, json={"metadata": {"name": "p"}}).status_code == 201
    for header in ("application/json", "Application/Merge-Patch+json", ""):
        refused = client.patch(f"{path}/p", content=b"{}", headers={"Content-Type": header})
        assert (refused.status_code, refused.json()["message"], refused.json()["details"]) == (
            415, "415: Unsupported Media Type", {}), header
    for header in ("application/merge-patch+json; charset=utf-8",
                   "text/plain, application/merge-patch+json"):
        routed = client.patch(f"{path}/p", content=b"{}", headers={"Content-Type": header})
        assert routed.status_code in (200, 415), header
        if routed.status_code == 415:  # routed, then refused by the handler's exact match
            assert routed.json()["message"].startswith("the body of the request was in an "
                                                       "unknown format"), header


def test_field_selectors_of_kinds_without_a_conversion_use_the_default_one(
        client: TestClient) -> None:
    answers = {resource: client.get(f"/api/v1/namespaces/default/{resource}",
                                    params={"fieldSelector": "x=1"}).json()["message"]
               for resource in ("configmaps", "secrets", "events")}
    assert answers == {
        "configmaps": '"x" is not a known field selector: only "metadata.name", '
                      '"metadata.namespace"',
        "secrets": "field label not supported: x", "events": "field label not supported: x"}


def test_a_client_that_goes_away_mid_request_is_one_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    """A PATCH whose connection is cut before its body arrived (the soak's api-cut fault):
    one line in the log, no traceback, and the emulator keeps serving."""
    api, control = new_cluster_state()
    app, _server = build_app(api=api, control=control,
                             authenticator=Authenticator(tokens={"admin": ADMIN}))
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/l"
    scope = {"type": "http", "http_version": "1.1", "method": "PATCH", "scheme": "https",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "server": ("testserver", 443), "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"testserver"), (b"authorization", b"Bearer admin"),
                         (b"content-type", b"application/merge-patch+json"),
                         (b"content-length", b"100")]}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def serve() -> None:
        await app(scope, receive, send)

    with caplog.at_level(logging.DEBUG, logger="kubevirt_usb.apiserver.app"):
        asyncio.run(serve())
    records = [r for r in caplog.records if r.name == "kubevirt_usb.apiserver.app"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert records[0].getMessage() == (f"request PATCH {path}: "
                                       "the client went away before its body arrived")
    assert sent[0]["status"] == 499
