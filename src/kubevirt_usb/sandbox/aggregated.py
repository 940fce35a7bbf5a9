"""The virt-api emulator as an aggregated API server behind a real kube-apiserver, the way KubeVirt
serves `subresources.kubevirt.io` (pkg/virt-api: an APIService with a CA bundle and a Service).

kube-apiserver authenticates and authorizes the user, then proxies the request (websocket upgrades
included) over TLS with its front-proxy client certificate and the user in `X-Remote-User`,
`X-Remote-Group` and `X-Remote-Extra-*`. This server trusts those headers only on a connection
whose client certificate is signed by the request-header CA that kube-apiserver publishes in the
ConfigMap `kube-system/extension-apiserver-authentication` and, when that ConfigMap lists allowed
names, whose common name is one of them (what kube-apiserver's own request-header authenticator
checks; virt-api itself checks only the CA). Then, as virt-api's authorizer does, it asks the
API server with a SubjectAccessReview whether that user may `get` the subresource.

Discovery (`/apis`, `/apis/subresources.kubevirt.io/v1`), `/version`, `/healthz` and
`/openapi/v2` need no user, as in virt-api; `/openapi/v3` is 404, which makes the aggregator
convert v2. Unlike virt-api, a connection without a client certificate is refused at the TLS
handshake (virt-api accepts it and answers only the no-user paths).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from kubevirt_usb import listen
from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.tls import ServingCertificate, generate
from kubevirt_usb.sandbox.virtapi import GROUP, VERSION, VirtAPIEmulator
from kubevirt_usb.tasks import end_task

AUTH_CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
SERVICE_NAMESPACE = "kubevirt-usb-sandbox"
SERVICE_NAME = "virt-api"
APISERVICE_NAME = f"{VERSION}.{GROUP}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubevirt-usb-sandbox"}
NO_USER_PATHS = frozenset({
    "/", "/apis", "/healthz", "/openapi/v2", "/openapi/v3",
    f"/apis/{GROUP}/{VERSION}", f"/apis/{GROUP}/{VERSION}/version",
    f"/apis/{GROUP}/{VERSION}/healthz",
})
"""virt-api's `noAuthEndpoints` that this server answers."""
PEER_NAME = "front_proxy_peer"


class AggregationError(RuntimeError):
    """The API server cannot host the aggregated API; the message says what to change."""


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True, kw_only=True)
class RequestHeaderConfig:
    """kube-apiserver's --requestheader-* flags as it publishes them for aggregated servers."""

    client_ca_pem: str
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_prefixes: tuple[str, ...]


def _json_list(data: Mapping[str, str], key: str) -> tuple[str, ...]:
    try:
        value = json.loads(data.get(key) or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def request_header_config(configmap: Mapping[str, Any]) -> RequestHeaderConfig:
    """Read `extension-apiserver-authentication`; AggregationError when it has no front proxy."""
    data = configmap.get("data") or {}
    ca = data.get("requestheader-client-ca-file") or ""
    users = _json_list(data, "requestheader-username-headers")
    if not ca.strip() or not users:
        raise AggregationError(
            "the API server has no front-proxy (request-header) configuration, so it cannot "
            "proxy to aggregated APIs: start kube-apiserver with --requestheader-client-ca-file, "
            "--requestheader-username-headers=X-Remote-User, --requestheader-group-headers="
            "X-Remote-Group, --proxy-client-cert-file and --proxy-client-key-file")
    return RequestHeaderConfig(
        client_ca_pem=ca, allowed_names=_json_list(data, "requestheader-allowed-names"),
        username_headers=users, group_headers=_json_list(data, "requestheader-group-headers"),
        extra_prefixes=_json_list(data, "requestheader-extra-headers-prefix"))


def proxied_user(headers: Iterable[tuple[bytes, bytes]], *, config: RequestHeaderConfig,
                 peer_name: str | None) -> UserInfo | None:
    """The user kube-apiserver vouches for, or None when the connection or headers do not say.

    The first username header present wins (its first value); every value of the first group
    header present is a group, as virt-api's authorizer reads them."""
    if peer_name is None:
        return None
    if config.allowed_names and peer_name not in config.allowed_names:
        return None
    values: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        values.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1"))
    name = next((values[h.lower()][0] for h in config.username_headers if h.lower() in values),
                None)
    if not name:
        return None
    groups = next((values[h.lower()] for h in config.group_headers if h.lower() in values), [])
    return UserInfo(name=name, groups=tuple(groups))


def subject_access_review(*, user: UserInfo, verb: str, group: str, resource: str,
                          subresource: str, namespace: str, name: str) -> dict[str, Any]:
    """The SubjectAccessReview virt-api's authorizer sends for a subresource request."""
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user.name, "groups": list(user.groups),
                     "resourceAttributes": {"namespace": namespace, "verb": verb,
                                            "group": group, "version": VERSION,
                                            "resource": resource, "subresource": subresource,
                                            "name": name}}}


def service_manifest(*, port: int, target: str = "localhost") -> dict[str, Any]:
    """The Service the APIService names. Without kube-proxy a ClusterIP leads nowhere, so it is an
    ExternalName: kube-apiserver's service resolver dials `<externalName>:<APIService port>`."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE,
                         "labels": dict(MANAGED_BY)},
            "spec": {"type": "ExternalName", "externalName": target,
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}}


def apiservice_manifest(*, port: int, ca_bundle_pem: bytes) -> dict[str, Any]:
    """`v1.subresources.kubevirt.io` as KubeVirt registers it, pointing at this server."""
    import base64

    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": APISERVICE_NAME, "labels": dict(MANAGED_BY)},
            "spec": {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1000,
                     "versionPriority": 15,
                     "caBundle": base64.b64encode(ca_bundle_pem).decode(),
                     "service": {"namespace": SERVICE_NAMESPACE, "name": SERVICE_NAME,
                                 "port": port}}}


def service_dns_name() -> str:
    """The name kube-apiserver expects in this server's certificate: `<service>.<ns>.svc`."""
    return f"{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc"


def api_group_list() -> dict[str, Any]:
    version = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": GROUP, "versions": [version], "preferredVersion": version}]}


def api_resource_list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
            "resources": resources}


def openapi_v2() -> dict[str, Any]:
    """An empty but valid Swagger 2.0 document: the aggregator merges it into /openapi/v2."""
    return {"swagger": "2.0", "info": {"title": "KubeVirt API (kubevirt-usb virt-api emulator)",
                                       "version": VERSION}, "paths": {}}


# ----------------------------------------------------------------------------- the server


class RealAPIContext:
    """The APIContext of the virt-api emulator behind a real API server: objects through the
    sandbox's admin client, authorization through SubjectAccessReview."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def get_object(self, *, group: str, resource: str, namespace: str, name: str
                         ) -> dict[str, Any] | None:
        prefix = f"/apis/{group}/v1" if group else "/api/v1"
        where = f"/namespaces/{namespace}" if namespace else ""
        got = await self._http.get(f"{prefix}{where}/{resource}/{name}")
        if got.status_code == 404:
            return None
        got.raise_for_status()
        body: dict[str, Any] = got.json()
        return body

    async def is_allowed(self, *, user: UserInfo, verb: str, group: str, resource: str,
                         subresource: str = "", namespace: str = "", name: str = "") -> bool:
        review = subject_access_review(user=user, verb=verb, group=group, resource=resource,
                                       subresource=subresource, namespace=namespace, name=name)
        answer = await self._http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                       json=review)
        answer.raise_for_status()
        return bool((answer.json().get("status") or {}).get("allowed"))


class FrontProxyAuthentication:
    """ASGI middleware: the user from the front-proxy headers into `scope["state"]["user"]`;
    401 for any other path when the connection or headers do not name one."""

    def __init__(self, app: ASGIApp, *, config: RequestHeaderConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        user = proxied_user(scope.get("headers") or [], config=self.config,
                            peer_name=state.get(PEER_NAME))
        if user is not None:
            state["user"] = user
        elif scope["path"].rstrip("/") not in NO_USER_PATHS and scope["path"] != "/":
            await _refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(errors.unauthorized().status(), status_code=401)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008})


def build_app(virtapi: VirtAPIEmulator, *, context: RealAPIContext,
              config: RequestHeaderConfig) -> ASGIApp:
    async def apis(_: Request) -> Response:
        return JSONResponse(api_group_list())

    async def resources(_: Request) -> Response:
        return JSONResponse(api_resource_list(virtapi.api_resources()))

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def v2(_: Request) -> Response:
        return JSONResponse(openapi_v2())

    base = f"/apis/{GROUP}/{VERSION}"
    routes = [Route("/apis", apis), Route(base, resources), Route("/healthz", healthz),
              Route(base + "/healthz", healthz), Route("/openapi/v2", v2),
              *virtapi.routes(context)]
    return FrontProxyAuthentication(Starlette(routes=routes), config=config)


class _PeerNameH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that puts the TLS client certificate's common name into the
    state of every request (and of the websocket the connection upgrades to)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        self.app_state = {**self.app_state, PEER_NAME: _common_name(peer)}


def _common_name(peer: Any) -> str | None:
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass
class AggregatedServer:
    """The HTTPS server kube-apiserver proxies `subresources.kubevirt.io/v1` to."""

    app: ASGIApp
    certificate: ServingCertificate
    client_ca: Path
    sock: socket.socket
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False,
            ssl_certfile=str(self.certificate.cert_path),
            ssl_keyfile=str(self.certificate.key_path), ssl_ca_certs=str(self.client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED, http=_PeerNameH11, ws="wsproto",
            ws_ping_interval=None, ws_max_size=64 * 1024 * 1024, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise AggregationError("the aggregated virt-api server stopped while starting")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            for connection in list(self._server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        if self._task is not None:
            await end_task(self._task, within=10)
            self._task = None


def new_server(virtapi: VirtAPIEmulator, *, http: httpx.AsyncClient,
               config: RequestHeaderConfig, state_dir: Path) -> AggregatedServer:
    """Certificates under `state_dir` (a fresh CA; the serving certificate names the Service),
    a socket on the host's loopback, the app."""
    pki = state_dir / "virt-api-pki"
    certificate = generate(pki, ips=("127.0.0.1", "::1"),
                           names=(service_dns_name(), "localhost"))
    client_ca = pki / "requestheader-ca.crt"
    client_ca.write_text(config.client_ca_pem)
    sock = listen.bind("127.0.0.1", 0, backlog=128)
    app = build_app(virtapi, context=RealAPIContext(http), config=config)
    return AggregatedServer(app=app, certificate=certificate, client_ca=client_ca, sock=sock)
