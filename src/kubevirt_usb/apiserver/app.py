"""The HTTP face of the API emulator: an ASGI app that parses Kubernetes REST paths into the
verbs of `api.API`, authenticates and authorizes each request, and maps every error once to a
`Status`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from kubevirt_usb.apiserver import discovery, errors, protobuf, rbac, tables
from kubevirt_usb.apiserver.api import (
    API,
    PATCH_APPLY,
    ListOptions,
    RequestContext,
    parse_resource_version,
    patch_types,
)
from kubevirt_usb.apiserver.auth import ANONYMOUS, UserInfo
from kubevirt_usb.apiserver.controllers import ControlPlane
from kubevirt_usb.apiserver.extension import Extension
from kubevirt_usb.apiserver.gotypes import body_type_error
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo, builtin_resources
from kubevirt_usb.apiserver.selectors import parse_field_selector, parse_label_selector
from kubevirt_usb.apiserver.store import Obj, Store
from kubevirt_usb.apiserver.watching import WatchOptions, WatchStream, watch_over_websocket
from kubevirt_usb.apiserver.yamljson import YAMLBodyError, load_yaml_as_json
from kubevirt_usb.clock import rfc3339

log = logging.getLogger(__name__)

# nginx's status for a request whose client closed the connection before the answer
CLIENT_CLOSED_REQUEST = 499

JSON = "application/json"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
# verbs each subresource serves (kube-apiserver installs only these handlers)
_SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update"),
                      "finalize": ("update",), "token": ("create",)}


@dataclass
class Authenticator:
    """Static bearer tokens (a kube-apiserver `--token-auth-file`) plus minted tokens."""

    tokens: dict[str, UserInfo] = field(default_factory=dict)

    def user_for(self, header: str) -> UserInfo | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.tokens.get(token.strip())

    def mint(self, user: UserInfo) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = user
        return token


@dataclass(frozen=True, kw_only=True)
class RequestInfo:
    """What a REST path names (k8s.io/apiserver/pkg/endpoints/request.RequestInfo): the verb
    is the method's, as the authorizer sees it; `served` is False where no handler takes that
    method on such a path (a POST to a name, a PUT to a collection: 405 once authorized)."""

    verb: str
    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str
    served: bool = True


def _verb(method: str, *, name: str, watch: bool) -> str:
    """The verb RequestInfoFactory derives from the method alone (what RBAC is asked)."""
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _served(method: str, *, name: str, subresource: str) -> bool:
    """Whether kube-apiserver installs a handler for the method on such a path."""
    if method == "POST":
        return not name or bool(subresource)
    if method in ("PUT", "PATCH"):
        return bool(name)
    if method == "DELETE":
        return not subresource
    return method in ("GET", "HEAD")


def parse_request_path(method: str, path: str, query: dict[str, str]) -> RequestInfo | None:
    """The resource request a path names, or None when it names no resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = False
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    if not rest:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if len(rest) > 3:
        return None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    is_watch = watch or query.get("watch", "").lower() in ("1", "true")
    verb = _verb(method, name=name, watch=is_watch)
    return RequestInfo(verb=verb, group=group, version=version, namespace=namespace,
                       resource=resource, name=name, subresource=subresource,
                       served=_served(method, name=name, subresource=subresource))


def warning_header(text: str) -> str:
    """One `Warning` header value (RFC 7234: code 299, agent "-", a quoted string)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def json_response(body: Any, *, status: int = 200, warnings: Sequence[str] = ()) -> Response:
    response = Response(orjson.dumps(body), status_code=status, media_type=JSON)
    for text in warnings:
        response.raw_headers.append((b"warning", warning_header(text).encode()))
    return response


def status_response(error: errors.APIError) -> Response:
    if error.plain_text and not error.message:
        return Response(b"", status_code=error.code)
    if error.plain_text:
        return Response(f"{error.message}\n", status_code=error.code,
                        media_type="text/plain; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})
    headers = None
    if error.retry_after_seconds is not None:
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return Response(orjson.dumps(error.status()), status_code=error.code, media_type=JSON,
                    headers=headers)


class AuthenticationMiddleware:
    """Puts the request's `UserInfo` in `scope["state"]["user"]`: the token's user, anonymous
    without an Authorization header, and 401 for a token nobody issued."""

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = ""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                header = value.decode("latin-1")
        user = self.authenticator.user_for(header) if header else ANONYMOUS
        if user is None:
            await self._reject(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send) -> None:
        body = orjson.dumps(errors.unauthorized().status())
        if scope["type"] == "http":
            await Response(body, status_code=401, media_type=JSON)(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": [(b"content-type", JSON.encode())]})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


class APIServerApp:
    """Everything behind the routes: discovery, OpenAPI, resources, extensions."""

    def __init__(self, *, api: API, control: ControlPlane, authenticator: Authenticator,
                 extensions: Sequence[Extension] = (), server_address: str = "",
                 bookmark_interval: float = 60.0, watch_timeout: float = 1800.0) -> None:
        self.api = api
        self.control = control
        self.authenticator = authenticator
        self.extensions = list(extensions)
        self.server_address = server_address
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout

    # ---- the APIContext extensions see ---------------------------------------------------

    async def get_object(self, *, group: str, resource: str, namespace: str, name: str
                         ) -> dict[str, Any] | None:
        return self.api.store.get((group, resource), namespace, name)

    async def is_allowed(self, *, user: UserInfo, verb: str, group: str, resource: str,
                         subresource: str = "", namespace: str = "", name: str = ""
                         ) -> bool:
        attrs = rbac.RequestAttributes(verb=verb, api_group=group, resource=resource,
                                       subresource=subresource, namespace=namespace, name=name,
                                       path="", is_resource_request=True)
        return self.control.authorizer.authorize(user, attrs).allowed

    # ---- entry ------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except errors.APIError as error:
            return status_response(error)
        except ClientDisconnect:
            # the client went away before its body arrived (a cut connection, a timeout):
            # normal on a flaky network, so one line, no traceback; nobody reads the answer
            log.info("request %s %s: the client went away before its body arrived",
                     request.method, request.url.path)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception as exc:  # the emulator never crashes on a request
            log.exception("request %s %s failed", request.method, request.url.path)
            return status_response(errors.internal(f"{type(exc).__name__}: {exc}"))

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """A watch asked for with `Upgrade: websocket`, as browsers (the OpenShift console) ask:
        kube-apiserver serves it with each event as one text message; anything else on a
        websocket is refused with the Status the same request would get over plain HTTP."""
        path = websocket.url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(websocket.url.query).items()}
        user: UserInfo = websocket.scope["state"]["user"]
        try:
            info = parse_request_path("GET", path, query)
            if info is None or info.verb != "watch":
                raise errors.bad_request("only watches are served over a websocket")
            self._authorize(user, info)
            resource = self._resource(info)
            if not resource.stored:
                raise errors.method_not_allowed()
            namespace = info.namespace if resource.namespaced else ""
            stream = self._watch_stream(resource, info, namespace, query,
                                        websocket.headers.get("accept", ""))
        except errors.APIError as error:
            await _refuse_websocket(websocket, error)
            return
        await watch_over_websocket(websocket, stream)

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(request.url.query).items()}
        user: UserInfo = request.state.user
        info = parse_request_path(request.method, path, query)
        if info is None:
            return self._non_resource(request, path, user)
        # kube-apiserver authorizes before it routes: a user without the right learns nothing
        # of what exists (403 for a missing object, an unknown resource or group, a verb the
        # resource does not serve)
        accept = request.headers.get("accept", "")
        try:
            self._authorize(user, info)
            resource = self._resource(info)
            response = await self._serve(request, info, resource, query, user)
        except errors.APIError as error:
            # a Status is a built-in kind: protobuf when preferred, for custom resources too
            return negotiate(status_response(error), custom=False, accept=accept)
        return negotiate(response, custom=resource.custom, accept=accept)

    def _non_resource(self, request: Request, path: str, user: UserInfo) -> Response:
        verb = {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch",
                "DELETE": "delete"}.get(request.method, request.method.lower())
        attrs = rbac.RequestAttributes(verb=verb, path=request.url.path,
                                       is_resource_request=False)
        if not self.control.authorizer.authorize(user, attrs).allowed:
            raise errors.APIError(
                code=403, reason="Forbidden", empty_details=True,
                message=f'forbidden: User "{user.name}" cannot {verb} path '
                f'"{request.url.path}"')
        if path == "/openapi/v2" and request.method in ("GET", "HEAD"):
            return self._openapi_v2(request.headers.get("accept", ""))
        fixed = self._fixed_document(path)
        if fixed is None:
            raise errors.page_not_found()
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        if isinstance(fixed, str):
            return Response(fixed, media_type="text/plain; charset=utf-8")
        return json_response(fixed)

    def _openapi_v2(self, accept: str) -> Response:
        media_type = discovery.openapi_v2_media_type(accept)
        if media_type is None:
            return Response(b"", status_code=406, headers={"Vary": "Accept"})
        document = discovery.openapi_v2(self.api.registry)
        if media_type == JSON:
            body = orjson.dumps(document)
        else:
            body = discovery.openapi_v2_protobuf(document)
        return Response(body, media_type=media_type, headers={"Vary": "Accept"})

    def _fixed_document(self, path: str) -> Any:
        api = self.api
        if path == "/version":
            return discovery.version()
        if path in ("/healthz", "/readyz", "/livez"):
            return "ok"
        if path == "/api":
            return discovery.api_versions(server_address=self.server_address)
        if path == "/apis":
            return discovery.api_group_list(api.registry, self.extensions)
        if path == "/openapi/v3":
            return discovery.openapi_v3_root(api.registry)
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4])
            doc = discovery.openapi_v3_group_version(api.registry, group, version)
            if doc is None:  # kube-openapi answers a bare 404
                raise errors.APIError(code=404, reason="NotFound", message="", plain_text=True)
            return doc
        if len(parts) == 2 and parts[0] == "api":
            found = discovery.api_resource_list(api.registry, self.extensions, "", parts[1])
            return found or _raise(self._not_served(""))
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(api.registry, self.extensions, parts[1]) or \
                _raise(errors.page_not_found())
        if len(parts) == 3 and parts[0] == "apis":
            found = discovery.api_resource_list(api.registry, self.extensions, parts[1],
                                                parts[2])
            return found or _raise(self._not_served(parts[1]))
        return None

    def _not_served(self, group: str) -> errors.APIError:
        """The 404 for a group version the server does not serve: below a built-in group
        (`/api`, `/apis/apps`...) go-restful's Status, elsewhere the last handler's text."""
        builtin = group == "" or any(r.group == group and not r.custom
                                     for r in self.api.registry.all())
        return errors.path_not_found() if builtin else errors.page_not_found()

    def _resource(self, info: RequestInfo) -> ResourceInfo:
        """The resource a request names, or the 404/405 kube-apiserver answers: built-in group
        versions are go-restful routes (a Status), custom resources the CRD handler, which hands
        what it does not serve to the last handler (`404 page not found`)."""
        registry = self.api.registry
        if not registry.has_group_version(info.group, info.version):
            raise self._not_served(info.group)
        custom_group = any(r.custom for r in registry.in_group_version(info.group, info.version))
        resource = registry.get(info.group, info.version, info.resource)
        if resource is None:
            raise errors.page_not_found() if custom_group else errors.path_not_found()
        if resource.custom:
            _check_custom_resource_path(info, resource)
        elif info.subresource and info.subresource not in resource.subresources:
            raise errors.path_not_found()
        if not resource.namespaced and info.namespace and info.resource != "namespaces":
            raise errors.path_not_found()
        allowed = _SUBRESOURCE_VERBS.get(info.subresource, ()) if info.subresource \
            else resource.verbs
        if not info.served or info.verb not in allowed:
            raise errors.method_not_allowed()
        return resource

    def _authorize(self, user: UserInfo, info: RequestInfo) -> None:
        attrs = rbac.RequestAttributes(
            verb=info.verb, api_group=info.group, resource=info.resource,
            subresource=info.subresource, namespace=info.namespace, name=info.name, path="",
            is_resource_request=True)
        if not self.control.authorizer.authorize(user, attrs).allowed:
            raise errors.forbidden(user=user.name, verb=info.verb, resource=info.resource,
                                   group=info.group, subresource=info.subresource,
                                   namespace=info.namespace, name=info.name)

    # ---- resource verbs ---------------------------------------------------------------------

    async def _serve(self, request: Request, info: RequestInfo, resource: ResourceInfo,
                     query: dict[str, str], user: UserInfo) -> Response:
        if not resource.stored:
            return await self._review(request, info, resource, user)
        namespace = info.namespace if resource.namespaced else ""
        verb = info.verb
        accept = request.headers.get("accept", "")
        if verb == "get":
            obj = self.api.get(resource, namespace=namespace, name=info.name)
            return self._object_response(resource, obj, accept, query)
        if verb == "list":
            return self._list(resource, namespace or None, query, accept)
        if verb == "watch":
            return self._watch(resource, info, namespace, query, accept)
        ctx = _write_context(request, query, user)
        if verb == "create":
            body = await _read_body(request, resource)
            if info.subresource == "token":
                return self._token_request(info, body)
            obj = self.api.create(resource, namespace=namespace, body=body, ctx=ctx, posted=True)
            return json_response(obj, status=201, warnings=ctx.warnings)
        if verb == "update":
            body = await _read_body(request, resource)
            existed = self.api.store.get(resource.group_resource, namespace, info.name)
            obj = self.api.update(resource, namespace=namespace, name=info.name, body=body,
                                  ctx=ctx, subresource=info.subresource)
            return json_response(obj, status=200 if existed else 201, warnings=ctx.warnings)
        if verb == "patch":
            return await self._patch(request, info, resource, namespace, query, ctx)
        if verb == "delete":
            return await self._delete(request, info, resource, namespace, ctx)
        return await self._delete_collection(request, resource, namespace, query, ctx)

    def _object_response(self, resource: ResourceInfo, obj: Obj, accept: str,
                         query: dict[str, str]) -> Response:
        if tables.wants_table(accept):
            return json_response(tables.table(
                resource, [obj], now=self.api.clock(),
                include_object=query.get("includeObject", "Metadata"),
                resource_version=obj["metadata"].get("resourceVersion", "")))
        return json_response(obj)

    @staticmethod
    def _selectors(resource: ResourceInfo, query: dict[str, str]) -> tuple[Any, Any]:
        labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") \
            else None
        fields = None
        if query.get("fieldSelector"):
            supported = ("metadata.name", "metadata.namespace", *resource.field_selectors)
            # kinds without a field label conversion of their own use the default one
            fields = parse_field_selector(query["fieldSelector"], supported=supported,
                                          default_conversion=not resource.custom
                                          and not resource.field_selectors)
        return labels, fields

    def _list_options(self, resource: ResourceInfo, query: dict[str, str]) -> ListOptions:
        labels, fields = self._selectors(resource, query)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise errors.bad_request(
                f'strconv.ParseInt: parsing "{query.get("limit")}": invalid syntax') from None
        return ListOptions(labels=labels, fields=fields, limit=max(limit, 0),
                           continue_token=query.get("continue", ""),
                           resource_version=query.get("resourceVersion", ""),
                           resource_version_match=query.get("resourceVersionMatch", ""))

    def _list(self, resource: ResourceInfo, namespace: str | None, query: dict[str, str],
              accept: str) -> Response:
        result = self.api.list(resource, namespace=namespace,
                               options=self._list_options(resource, query))
        if tables.wants_table(accept):
            return json_response(tables.table(
                resource, result.items, now=self.api.clock(),
                include_object=query.get("includeObject", "Metadata"),
                resource_version=str(result.resource_version),
                continue_token=result.continue_token))
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
            if result.remaining is not None:
                meta["remainingItemCount"] = result.remaining
        return json_response({"kind": resource.kind_list, "apiVersion": resource.api_version,
                              "metadata": meta, "items": result.items})

    async def _patch(self, request: Request, info: RequestInfo, resource: ResourceInfo,
                     namespace: str, query: dict[str, str], ctx: RequestContext) -> Response:
        header = request.headers.get("content-type", "")
        accepted = patch_types(resource)
        if not resource.custom and not _route_consumes(header, accepted):
            raise errors.route_unsupported_media_type()
        content_type = header.split(";")[0]  # as the patch handler cuts it
        if content_type not in accepted:
            raise errors.unsupported_media_type(accepted)
        force = query.get("force", "").lower() in ("1", "true")
        _check_patch_options(content_type, force=force, field_manager=ctx.field_manager)
        raw = await request.body()
        try:
            patch = load_yaml_as_json(raw) if content_type == PATCH_APPLY else orjson.loads(raw)
        except (orjson.JSONDecodeError, YAMLBodyError) as exc:
            raise errors.bad_request(f"error decoding patch: {_first_line(exc)}") from exc
        existed = self.api.store.get(resource.group_resource, namespace, info.name) is not None
        obj = self.api.patch(resource, namespace=namespace, name=info.name, patch=patch,
                             content_type=content_type, ctx=ctx, subresource=info.subresource,
                             force=force)
        return json_response(obj, status=200 if existed else 201, warnings=ctx.warnings)

    async def _delete(self, request: Request, info: RequestInfo, resource: ResourceInfo,
                      namespace: str, ctx: RequestContext) -> Response:
        options = await _read_delete_options(request)
        if options.get("dryRun") == ["All"]:
            ctx.dry_run = True
        result = self.api.delete(resource, namespace=namespace, name=info.name,
                                 options=options, ctx=ctx)
        code = 202 if not result.removed and options.get("orphanDependents") is False else 200
        if result.removed and not resource.returns_deleted_object:
            details: dict[str, Any] = {"name": info.name, "kind": resource.resource,
                                       "uid": result.obj["metadata"].get("uid")}
            if resource.group:
                details["group"] = resource.group
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success", "details": details}, status=code)
        return json_response(result.obj, status=code)

    async def _delete_collection(self, request: Request, resource: ResourceInfo,
                                 namespace: str, query: dict[str, str],
                                 ctx: RequestContext) -> Response:
        options = await _read_delete_options(request)
        result = self.api.list(resource, namespace=namespace or None,
                               options=self._list_options(resource, query))
        for obj in result.items:
            with contextlib.suppress(errors.APIError):
                self.api.delete(resource, namespace=obj["metadata"].get("namespace", ""),
                                name=obj["metadata"]["name"], options=options, ctx=ctx)
        return json_response({"kind": resource.kind_list, "apiVersion": resource.api_version,
                              "metadata": {"resourceVersion": str(
                                  self.api.store.resource_version)}, "items": result.items})

    # ---- watch ------------------------------------------------------------------------------

    def _watch(self, resource: ResourceInfo, info: RequestInfo, namespace: str,
               query: dict[str, str], accept: str) -> Response:
        return StreamingResponse(self._watch_stream(resource, info, namespace, query, accept),
                                 media_type=JSON)

    def _watch_stream(self, resource: ResourceInfo, info: RequestInfo, namespace: str,
                      query: dict[str, str], accept: str) -> WatchStream:
        labels, fields = self._selectors(resource, query)
        rv_text = query.get("resourceVersion", "")
        since = parse_resource_version(rv_text) if rv_text not in ("", "0") else None
        try:
            timeout = float(query.get("timeoutSeconds") or self.watch_timeout)
        except ValueError:
            raise errors.bad_request(
                f'strconv.ParseInt: parsing "{query["timeoutSeconds"]}": invalid syntax'
            ) from None
        if info.name:
            fields = parse_field_selector(f"metadata.name={info.name}",
                                          supported=("metadata.name",))
        options = WatchOptions(since=since, labels=labels, fields=fields, timeout=timeout,
                               bookmarks=query.get("allowWatchBookmarks", "").lower()
                               in ("1", "true"), table=tables.wants_table(accept),
                               include_object=query.get("includeObject", "Metadata"))

        def matches(obj: Obj) -> bool:
            return self.api.matches(resource, obj, labels=labels, fields=fields)

        return WatchStream(store=self.api.store, resource=resource,
                           namespace=namespace if resource.namespaced and namespace else None,
                           options=options,
                           matches=matches if labels is not None or fields is not None
                           else None,
                           clock=self.api.clock, bookmark_interval=self.bookmark_interval)

    # ---- virtual resources ------------------------------------------------------------------

    async def _review(self, request: Request, info: RequestInfo, resource: ResourceInfo,
                      user: UserInfo) -> Response:
        body = await _read_body(request, resource)
        problem = body_type_error(resource.group, resource.kind, body)
        if problem is not None:
            raise errors.undecodable(kind=resource.kind, version=resource.version, problem=problem)
        spec = body.get("spec") or {}
        authorizer = self.control.authorizer
        kind = resource.kind
        if kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
            if kind == "LocalSubjectAccessReview":
                attrs = dict(spec.get("resourceAttributes") or {})
                attrs["namespace"] = info.namespace
                spec = {**spec, "resourceAttributes": attrs}
            status = rbac.access_review(spec, authorizer=authorizer)
        elif kind == "SelfSubjectAccessReview":
            status = rbac.access_review(spec, authorizer=authorizer, user=user)
        elif kind == "SelfSubjectRulesReview":
            status = rbac.rules_review(user, namespace=spec.get("namespace", ""),
                                       authorizer=authorizer)
        elif kind == "SelfSubjectReview":
            status = {"userInfo": _user_info(user)}
        else:  # TokenReview
            found = self.authenticator.user_for(f"Bearer {spec.get('token', '')}")
            status = {"authenticated": found is not None,
                      **({"user": _user_info(found)} if found else {})}
        return json_response({"kind": kind, "apiVersion": resource.api_version,
                              "metadata": body.get("metadata") or {}, "spec": spec,
                              "status": status}, status=201)

    def _token_request(self, info: RequestInfo, body: Obj) -> Response:
        sa = self.api.store.get(("", "serviceaccounts"), info.namespace, info.name)
        if sa is None:
            raise errors.not_found(resource="serviceaccounts", group="", name=info.name)
        token = self.authenticator.mint(UserInfo.service_account(namespace=info.namespace,
                                                                 name=info.name))
        problem = body_type_error("authentication.k8s.io", "TokenRequest", body)
        if problem is not None:
            raise errors.undecodable(kind="TokenRequest", version="v1", problem=problem)
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        expiry = self.api.clock() + dt.timedelta(seconds=seconds)
        return json_response({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": info.name, "namespace": info.namespace,
                         "creationTimestamp": None},
            "spec": {"audiences": ["https://kubernetes.default.svc.cluster.local"], **spec,
                     "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": rfc3339(expiry)}}, status=201)


def _write_context(request: Request, query: dict[str, str], user: UserInfo) -> RequestContext:
    dry_run = query.get("dryRun")
    if dry_run not in (None, "All"):
        raise errors.bad_request(f'unsupported dry run directive: "{dry_run}"')
    ctx = RequestContext(user=user, dry_run=dry_run == "All",
                         field_manager=query.get("fieldManager", ""),
                         field_validation=query.get("fieldValidation", "Warn") or "Warn",
                         user_agent=request.headers.get("user-agent", ""))
    if ctx.field_validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f"fieldValidation: Invalid value: {ctx.field_validation!r}: fieldValidation must be "
            'one of "Ignore", "Warn", or "Strict"')
    if len(ctx.field_manager.encode()) > 128:
        raise errors.invalid(kind="PatchOptions", group="meta.k8s.io", name="", causes=[
            errors.Cause(type="FieldValueTooLong", field="fieldManager",
                         message="Too long: may not be longer than 128")])
    return ctx


def _route_consumes(header: str, accepted: Sequence[str]) -> bool:
    """Whether go-restful routes a PATCH with this Content-Type to a built-in resource's
    handler: one of the comma-separated types, parameters and spaces cut, is one the route
    consumes (exactly); no Content-Type at all counts as application/octet-stream."""
    for part in (header or "application/octet-stream").split(","):
        media = part.split(";")[0].strip()
        if not media:
            return False
        if media in accepted:
            return True
    return False


def _check_patch_options(content_type: str, *, force: bool, field_manager: str) -> None:
    causes: list[errors.Cause] = []
    if content_type == PATCH_APPLY and not field_manager:
        causes.append(errors.Cause(type="FieldValueRequired", field="fieldManager",
                                   message="Required value: is required for apply patch"))
    if content_type != PATCH_APPLY and force:
        causes.append(errors.Cause(type="FieldValueForbidden", field="force",
                                   message="Forbidden: may not be specified for non-apply patch"))
    if causes:
        raise errors.invalid(kind="PatchOptions", group="meta.k8s.io", name="", causes=causes)


def _user_info(user: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    return out


def _check_custom_resource_path(info: RequestInfo, resource: ResourceInfo) -> None:
    """What the CRD handler refuses: a scope the CRD does not have (a namespaced resource by
    name without its namespace: only list and watch span namespaces) goes to the last handler;
    a subresource it does not serve is the object's NotFound."""
    if resource.namespaced != bool(info.namespace) and \
            not (resource.namespaced and info.verb in ("list", "watch")):
        raise errors.page_not_found()
    if info.subresource and info.subresource not in resource.subresources:
        raise errors.not_found(resource=resource.resource, group=resource.group, name=info.name)


def _raise(error: errors.APIError) -> Any:
    raise error


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def prefers_protobuf(accept: str) -> bool:
    """Whether the first media type of an Accept header that a built-in resource's endpoint
    serves is protobuf (kubectl 1.33 sends `application/vnd.kubernetes.protobuf,
    application/json`); a Table request is JSON."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if any(p.replace(" ", "").startswith("as=") for p in params):
            return False
        if media == protobuf.MEDIA_TYPE:
            return True
        if media in (JSON, *YAML_TYPES, "*/*", "application/*"):
            return False
    return False


def negotiate(response: Response, *, custom: bool, accept: str) -> Response:
    """The answer in protobuf where kube-apiserver writes it so: a built-in kind (a custom
    resource has no protobuf, but an error about it is a Status, which has), a client that
    prefers it, and an object the emulator has the message table for; otherwise as it is (JSON,
    the client's other choice). Watches stay JSON lines."""
    if custom or response.media_type != JSON or not prefers_protobuf(accept) \
            or isinstance(response, StreamingResponse):
        return response
    try:
        body = protobuf.encode(orjson.loads(response.body))
    except (protobuf.ProtobufError, orjson.JSONDecodeError, ValueError):
        return response
    answer = Response(body, status_code=response.status_code, media_type=protobuf.MEDIA_TYPE)
    answer.raw_headers.extend((key, value) for key, value in response.raw_headers
                              if key not in (b"content-type", b"content-length"))
    return answer


def body_media_types(resource: ResourceInfo) -> tuple[str, ...]:
    """The body formats an endpoint decodes (custom resources have no protobuf)."""
    if resource.custom:
        return ("application/json", "application/yaml")
    return errors.BODY_MEDIA_TYPES


def decode_body(raw: bytes, content_type: str, resource: ResourceInfo) -> Obj:
    """A request body as an object; 415 for a format the endpoint does not take, 400 when it
    does not decode to a JSON object."""
    media = (content_type or JSON).split(";")[0].strip().lower()
    if media == protobuf.MEDIA_TYPE and not resource.custom:
        try:
            return protobuf.decode(raw)
        except (protobuf.ProtobufError, UnicodeDecodeError, ValueError) as exc:
            raise errors.bad_request(
                f"the body of the request could not be decoded: {_first_line(exc)}") from exc
    if media not in (JSON, *YAML_TYPES):
        raise errors.unsupported_media_type(body_media_types(resource))
    try:
        body = orjson.loads(raw) if media == JSON else load_yaml_as_json(raw)
    except (orjson.JSONDecodeError, YAMLBodyError, UnicodeDecodeError) as exc:
        raise errors.bad_request(
            f"the body of the request could not be decoded: {_first_line(exc)}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {resource.kind}): couldn't "
            f"get version/kind; json parse error: cannot unmarshal "
            f"{type(body).__name__} into Go value of type struct")
    return body


async def _read_body(request: Request, resource: ResourceInfo) -> Obj:
    raw = await request.body()
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    return decode_body(raw, request.headers.get("content-type", ""), resource)


async def _read_delete_options(request: Request) -> Obj:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding DeleteOptions: {_first_line(exc)}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    return body


async def _refuse_websocket(websocket: WebSocket, error: errors.APIError) -> None:
    """Answer the upgrade request with the error's Status (plain HTTP, before any handshake)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(status_response(error))
    else:  # a server without the extension can only refuse the handshake
        await websocket.close(code=1008)


def build_app(*, api: API, control: ControlPlane, authenticator: Authenticator,
              extensions: Sequence[Extension] = (), server_address: str = "",
              bookmark_interval: float = 60.0) -> tuple[ASGIApp, APIServerApp]:
    server = APIServerApp(api=api, control=control, authenticator=authenticator,
                          extensions=extensions, server_address=server_address,
                          bookmark_interval=bookmark_interval)
    routes: list[BaseRoute] = []
    for ext in extensions:
        routes.extend(ext.routes(server))
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes.append(Route("/{path:path}", server.handle, methods=methods))
    routes.append(WebSocketRoute("/{path:path}", server.handle_websocket))
    app = Starlette(routes=routes)
    return AuthenticationMiddleware(app, authenticator=authenticator), server


def new_cluster_state(*, store: Store | None = None) -> tuple[API, ControlPlane]:
    """An empty cluster: built-in resources registered, nothing stored."""
    registry = Registry()
    for info in builtin_resources():
        registry.add(info)
    api = API(registry=registry, store=store or Store())
    return api, ControlPlane(api)
