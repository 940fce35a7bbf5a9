"""The project's one door to the Kubernetes API: an async client over lightkube, plain dicts in and
out, and every failure raised as a `kubevirt_usb.kube.errors.KubeError`.

    client = connect(load_config(kubeconfig=path), field_manager="kubevirt-usb-agent")
    device = await client.get(USBDevice, "46f4-0001-aaa1")
    await client.patch(USBDevice.Status, name, {"status": {...}}, resource_version=rv)

Writes carry the client's field manager. `patch` is a JSON merge patch unless told otherwise; with
`resource_version` it only applies to that version of the object (else `Conflict`). `delete`
takes the same precondition, so an object changed by someone else since it was read is not
deleted. `connect(..., wrap=...)` puts a transport of the caller's around the real one (an
`ObservedTransport` sees every request before it is sent: benchmarks count them).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import httpx2
import lightkube
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import User
from lightkube.types import PatchType

from kubevirt_usb.kube.config import tls_problem
from kubevirt_usb.kube.errors import API_EXCEPTIONS, KubeError, translate
from kubevirt_usb.kube.objects import Obj, ObjectList, WatchEvent

ResourceType = type[Any]
RequestObserver = Callable[[httpx2.Request], None]
TransportWrapper = Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport]
Patch = Obj | list[Any]  # a merge patch, or a JSON patch (a list of operations)

MERGE = PatchType.MERGE
JSON_PATCH = PatchType.JSON
STRATEGIC = PatchType.STRATEGIC


def to_dict(obj: Any) -> Obj:
    """A lightkube object (generic or typed) as a plain dict."""
    if obj is None:
        return {}
    out: Obj = obj.to_dict()
    return out


class ObservedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport that shows each request to `observe` before sending it on."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, observe: RequestObserver) -> None:
        self.inner = inner
        self.observe = observe

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.observe(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class KubeClient:
    """Async Kubernetes API access; see the module docstring."""

    def __init__(self, client: lightkube.AsyncClient) -> None:
        self.lightkube = client

    @property
    def namespace(self) -> str:
        """The default namespace of the configuration (used when none is given)."""
        return str(self.lightkube.namespace)

    async def get(self, res: ResourceType, name: str, *, namespace: str | None = None) -> Obj:
        try:
            return to_dict(await self.lightkube.get(res, name, namespace=namespace))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def list(self, res: ResourceType, *, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None,
                   chunk_size: int | None = None) -> ObjectList:
        """Every matching object and the list's resourceVersion (fetched `chunk_size` objects per
        request when given)."""
        try:
            pages = self.lightkube.list(res, namespace=namespace, chunk_size=chunk_size,
                                        labels=dict(labels) if labels else None)
            items = [to_dict(item) async for item in pages]
            return ObjectList(items=items, resource_version=str(pages.resourceVersion))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def list_each(self, res: ResourceType, consume: Callable[[Obj], None], *,
                        namespace: str | None = None, labels: Mapping[str, str] | None = None,
                        chunk_size: int = 500) -> str:
        """Hand every matching object to `consume`, one page of `chunk_size` at a time, without
        holding them all (big lists in small memory); returns the list's resourceVersion."""
        try:
            pages = self.lightkube.list(res, namespace=namespace, chunk_size=chunk_size,
                                        labels=dict(labels) if labels else None)
            async for item in pages:
                consume(to_dict(item))
            return str(pages.resourceVersion)
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def watch(self, res: ResourceType, *, resource_version: str,
                    namespace: str | None = None,
                    labels: Mapping[str, str] | None = None) -> AsyncGenerator[WatchEvent, None]:
        """Events after `resource_version`, forever (reconnecting when the server ends a watch
        normally). A too old version raises `Gone`; list again and watch from the new one."""
        stream = self.lightkube.watch(res, namespace=namespace, resource_version=resource_version,
                                      labels=dict(labels) if labels else None)
        try:
            async for kind, obj in stream:
                yield WatchEvent(type=str(kind), object=to_dict(obj))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def create(self, res: ResourceType, obj: Obj) -> Obj:
        try:
            return to_dict(await self.lightkube.create(res.from_dict(obj)))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def apply(self, res: ResourceType, obj: Obj, *, force: bool = False) -> Obj:
        """Server-side apply of `obj` (pass `res.Status` to apply the status subresource)."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        namespace = (obj.get("metadata") or {}).get("namespace")
        try:
            return to_dict(await self.lightkube.apply(res.from_dict(obj), name,
                                                      namespace=namespace, force=force))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def patch(self, res: ResourceType, name: str, patch: Patch, *,
                    namespace: str | None = None, patch_type: PatchType = MERGE,
                    resource_version: str | None = None) -> Obj:
        """Patch `name` (pass `res.Status` to patch the status subresource)."""
        if resource_version is not None:
            if not isinstance(patch, dict) or patch_type is not MERGE:
                raise ValueError("a resourceVersion precondition needs a merge patch")
            patch = {**patch, "metadata": {**(patch.get("metadata") or {}),
                                           "resourceVersion": resource_version}}
        try:
            return to_dict(await self.lightkube.patch(res, name, patch, namespace=namespace,
                                                      patch_type=patch_type))
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def delete(self, res: ResourceType, name: str, *, namespace: str | None = None,
                     resource_version: str | None = None, uid: str | None = None) -> None:
        """Delete `name`, only if it still has `resource_version` / `uid` when they are given."""
        preconditions = {key: value for key, value in
                         (("resourceVersion", resource_version), ("uid", uid)) if value}
        # lightkube's delete() sends no body; DeleteOptions with preconditions need one, so the
        # request is built with its lower layer (the same one delete() uses).
        inner = self.lightkube._client
        try:
            request = inner.prepare_request("delete", res=res, name=name, namespace=namespace)
            if preconditions:
                request.data = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "preconditions": preconditions}
            response = await inner.send(inner.build_adapter_request(request))  # type: ignore[no-untyped-call]
            inner.handle_response("delete", response, request)
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc

    async def get_path(self, path: str) -> Obj:
        """GET a non-resource path (e.g. /version, a KubeVirt subresource group's /version) and
        return its JSON object; a KubeError (with the HTTP code) when it is not one."""
        inner: httpx2.AsyncClient = self.lightkube._client._client
        try:
            response = await inner.get(path)
        except API_EXCEPTIONS as exc:
            raise translate(exc) from exc
        if response.status_code != 200:
            raise KubeError(f"GET {path}: {response.status_code} {response.reason_phrase}",
                            code=response.status_code)
        try:
            body = json.loads(response.text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise KubeError(f"GET {path}: not a JSON object", code=response.status_code)
        return body

    async def close(self) -> None:
        with contextlib.suppress(*API_EXCEPTIONS):
            await self.lightkube.close()


def connect(config: SingleConfig, *, field_manager: str, timeout: float | None = 10.0,
            wrap: TransportWrapper | None = None) -> KubeClient:
    """A client for `config` whose writes are recorded under `field_manager`; each request may
    take `timeout` seconds (None: no limit). A CA or client certificate that cannot be loaded is
    a `kubevirt_usb.kube.config.ConfigError`.

    `wrap` receives the HTTP transport and returns the one to use (e.g. an `ObservedTransport`
    around it, to count requests).
    """
    transport: httpx2.AsyncBaseTransport | None = None
    try:
        if wrap is not None:
            # A custom transport replaces httpx2's own, TLS settings included: rebuild them.
            verify = verify_cluster(config.cluster, config.user or User(), config.abs_file)
            transport = wrap(httpx2.AsyncHTTPTransport(verify=verify))
        client = lightkube.AsyncClient(config, field_manager=field_manager,
                                       timeout=httpx2.Timeout(timeout), transport=transport)
    except (OSError, ValueError) as exc:  # a CA or client certificate that cannot be loaded
        raise tls_problem(config, exc) from exc
    return KubeClient(client)
