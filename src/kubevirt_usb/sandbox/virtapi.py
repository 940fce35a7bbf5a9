"""The virt-api stand-in: KubeVirt's `usbredir` subresource of a VMI, served by the API emulator.

What a client sees is what kubevirt/kubevirt's virt-api and virt-handler do together
(pkg/virt-api/streaming, pkg/virt-handler/rest/console.go):

- RBAC first (`get` on `virtualmachineinstances/usbredir` in `subresources.kubevirt.io`), then the
  VMI checks in upstream's order: 404, 409 s390x, 409 no `clientPassthrough`, 400 not running.
- Then the lowest free slot of four; none free is virt-handler's 503, which virt-api reports as
  500 `Internal error occurred: Can't connect to websocket (503): websocket: bad handshake`.
- Every error is a JSON `Status` answered before the websocket upgrade (ASGI
  `websocket.http.response`; uvicorn supports it in all its websocket implementations).
- After the upgrade (subprotocol `plain.kubevirt.io`), binary frames are copied to and from the
  slot's unix socket `virt-usbredir-<N>`; text frames are dropped. The slot is free again as soon as
  either side closes.
- Gauge `kubevirt_usbredir_active_connections{namespace,vmi}`: upstream labels the VMI `vmi`, and
  counts every authorized request from the moment its handler starts until it returns.

Where the slot sockets live is not this module's business: `slot_dir(namespace, name, uid)` says.
Unlike virt-handler, a slot whose socket is missing or refuses counts as taken and the next one is
tried; virt-handler would pick it anyway and fail the stream after the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.auth import ANONYMOUS, UserInfo
from kubevirt_usb.apiserver.errors import APIError
from kubevirt_usb.apiserver.extension import APIContext

GROUP = "subresources.kubevirt.io"
VERSION = "v1"
SUBPROTOCOL = "plain.kubevirt.io"
SLOT_COUNT = 4
"""`v1.UsbClientPassthroughMaxNumberOf`: the `redirdev` devices of a `clientPassthrough` VMI."""
FRAME_SIZE = 10240 - 14
"""virt-handler's copy buffer: `WebsocketMessageBufferSize` minus a websocket frame header."""
GAUGE_NAME = "kubevirt_usbredir_active_connections"
BASE = f"/apis/{GROUP}/{VERSION}"
USBREDIR_PATH = BASE + "/namespaces/{namespace}/virtualmachineinstances/{name}/usbredir"
DEFAULT_VERSION_INFO: Mapping[str, str] = {
    "gitVersion": "v1.6.0",
    "gitCommit": "kubevirt-usb-virt-api-emulator",
    "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z",
    "goVersion": "none (Python emulator)",
    "compiler": "none",
    "platform": "linux/amd64",
}
"""The shape of virt-api's `version.Info` answer; the values describe this emulator."""

SlotDirResolver = Callable[[str, str, str], Path]
"""`slot_dir(namespace, name, uid)`: the directory holding a VMI's `virt-usbredir-<N>` sockets."""


# ----------------------------------------------------------------------------- decisions


def api_resources() -> list[dict[str, Any]]:
    """This group/version's discovery entries: the one subresource served here, as a generic
    apiserver lists a GET-only connecter (virt-api lists many more that this emulator lacks)."""
    return [
        {
            "name": "virtualmachineinstances/usbredir",
            "singularName": "",
            "namespaced": True,
            "kind": "VirtualMachineInstance",
            "verbs": ["get"],
        }
    ]


def forbidden(*, user: UserInfo, namespace: str, name: str) -> APIError:
    """The 403 kube-apiserver and virt-api give a user without `get` on the subresource."""
    return errors.forbidden(
        user=user.name, verb="get", resource="virtualmachineinstances", group=GROUP,
        subresource="usbredir", namespace=namespace, name=name,
    )


def vmi_not_found(name: str) -> APIError:
    return errors.not_found(resource="virtualmachineinstance", group="kubevirt.io", name=name)


def validate_vmi(vmi: Mapping[str, Any], *, name: str) -> APIError | None:
    """virt-api's checks of an existing VMI before it dials virt-handler, in upstream's order."""
    spec = vmi.get("spec") or {}
    if spec.get("architecture") == "s390x":
        return _conflict(name, "No USB support on s390x")
    devices = (spec.get("domain") or {}).get("devices") or {}
    if devices.get("clientPassthrough") is None:
        return _conflict(name, "Not configured with USB Redirection")
    if (vmi.get("status") or {}).get("phase") != "Running":
        return errors.bad_request("VMI is not running")
    return None


def no_free_slot() -> APIError:
    """virt-handler's 503 as virt-api wraps it (`errors.NewInternalError(EnrichError(...))`)."""
    return errors.internal(_HANDSHAKE_503)


def status_body(error: APIError) -> dict[str, Any]:
    """The `Status` a client reads; internal errors carry their cause as `NewInternalError` does."""
    body = error.status()
    if error.reason == "InternalError":
        cause = error.message.removeprefix("Internal error occurred: ")
        body.setdefault("details", {})["causes"] = [{"message": cause}]
    return body


def free_slots(in_use: frozenset[int], *, count: int = SLOT_COUNT) -> list[int]:
    """The slots a new stream may take, lowest first."""
    return [slot for slot in range(count) if slot not in in_use]


def slot_socket_name(slot: int) -> str:
    return f"virt-usbredir-{slot}"


def _conflict(name: str, detail: str) -> APIError:
    return errors.conflict(
        resource="virtualmachineinstance", group="kubevirt.io", name=name, detail=detail
    )


_HANDSHAKE_503 = "Can't connect to websocket (503): websocket: bad handshake"


# ----------------------------------------------------------------------------- slots


@dataclass(frozen=True, kw_only=True)
class _VMIKey:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True, kw_only=True)
class _SlotStream:
    slot: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


SlotOpener = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]]


class _SlotTable:
    """Which slots of which VMI carry a stream; one chooser at a time, like virt-handler's lock."""

    def __init__(self, *, count: int) -> None:
        self._count = count
        self._in_use: dict[_VMIKey, set[int]] = {}
        self._lock = asyncio.Lock()

    async def take(self, key: _VMIKey, open_slot: SlotOpener) -> _SlotStream | None:
        async with self._lock:
            used = self._in_use.setdefault(key, set())
            for slot in free_slots(frozenset(used), count=self._count):
                streams = await open_slot(slot)
                if streams is not None:
                    used.add(slot)
                    return _SlotStream(slot=slot, reader=streams[0], writer=streams[1])
            if not used:
                del self._in_use[key]
            return None

    def release(self, key: _VMIKey, slot: int) -> None:
        used = self._in_use.get(key, set())
        used.discard(slot)
        if not used:
            self._in_use.pop(key, None)

    def active(self, *, namespace: str, name: str) -> tuple[int, ...]:
        return tuple(sorted(
            slot
            for key, used in self._in_use.items()
            if key.namespace == namespace and key.name == name
            for slot in used
        ))


# ----------------------------------------------------------------------------- the extension


class VirtAPIEmulator:
    """The `subresources.kubevirt.io/v1` API group as far as USB redirection needs it."""

    group = GROUP
    version = VERSION

    def __init__(
        self,
        *,
        slot_dir: SlotDirResolver,
        registry: CollectorRegistry | None = None,
        version_info: Mapping[str, str] = DEFAULT_VERSION_INFO,
        slot_count: int = SLOT_COUNT,
        frame_size: int = FRAME_SIZE,
        slot_connect_timeout: float = 2.0,
    ) -> None:
        self._slot_dir = slot_dir
        self._version_info = dict(version_info)
        self._frame_size = frame_size
        self._slot_connect_timeout = slot_connect_timeout
        self._slots = _SlotTable(count=slot_count)
        self.registry = registry if registry is not None else CollectorRegistry()
        self._gauge = Gauge(
            GAUGE_NAME,
            "Amount of active USB redirection connections, broken down by namespace and vmi name.",
            ["namespace", "vmi"],
            registry=self.registry,
        )

    def api_resources(self) -> list[dict[str, Any]]:
        return api_resources()

    def active_slots(self, *, namespace: str, name: str) -> tuple[int, ...]:
        """The slots of this VMI that carry a stream right now."""
        return self._slots.active(namespace=namespace, name=name)

    def routes(self, context: APIContext) -> list[BaseRoute]:
        async def version(request: Request) -> Response:
            return JSONResponse(self._version_info)

        async def usbredir_ws(websocket: WebSocket) -> None:
            await self._serve_websocket(websocket, context)

        async def usbredir_http(request: Request) -> Response:
            return await self._answer_plain_get(request, context)

        return [
            Route(BASE + "/version", version, methods=["GET"]),
            WebSocketRoute(USBREDIR_PATH, usbredir_ws),
            Route(USBREDIR_PATH, usbredir_http, methods=["GET"]),
        ]

    # -- request handling

    async def _admit(self, scope: Mapping[str, Any], context: APIContext,
                     namespace: str, name: str) -> APIError | None:
        """RBAC, as kube-apiserver and virt-api both check it before anything else."""
        user = _user_of(scope)
        allowed = await context.is_allowed(
            user=user, verb="get", group=GROUP, resource="virtualmachineinstances",
            subresource="usbredir", namespace=namespace, name=name,
        )
        return None if allowed else forbidden(user=user, namespace=namespace, name=name)

    async def _vmi(self, context: APIContext, namespace: str,
                   name: str) -> Mapping[str, Any] | APIError:
        """The VMI if a stream may be opened to it, else why not."""
        vmi = await context.get_object(
            group="kubevirt.io", resource="virtualmachineinstances", namespace=namespace, name=name
        )
        if vmi is None:
            return vmi_not_found(name)
        error = validate_vmi(vmi, name=name)
        return vmi if error is None else error

    async def _answer_plain_get(self, request: Request, context: APIContext) -> Response:
        """A GET without `Upgrade: websocket`: the errors above, or the upgrader's bare 400."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        outcome = await self._admit(request.scope, context, namespace, name) or await self._vmi(
            context, namespace, name
        )
        if isinstance(outcome, APIError):
            return JSONResponse(status_body(outcome), status_code=outcome.code)
        return PlainTextResponse("Bad Request\n", status_code=400,
                                 headers={"Sec-Websocket-Version": "13"})

    async def _serve_websocket(self, websocket: WebSocket, context: APIContext) -> None:
        namespace = websocket.path_params["namespace"]
        name = websocket.path_params["name"]
        denied = await self._admit(websocket.scope, context, namespace, name)
        if denied is not None:
            await _deny(websocket, denied)
            return
        gauge = self._gauge.labels(namespace=namespace, vmi=name)
        gauge.inc()
        try:
            vmi = await self._vmi(context, namespace, name)
            if isinstance(vmi, APIError):
                await _deny(websocket, vmi)
                return
            uid = str((vmi.get("metadata") or {}).get("uid", ""))
            await self._stream(websocket, _VMIKey(namespace=namespace, name=name, uid=uid))
        finally:
            gauge.dec()

    async def _stream(self, websocket: WebSocket, key: _VMIKey) -> None:
        stream = await self._slots.take(key, self._opener(key))
        if stream is None:
            await _deny(websocket, no_free_slot())
            return
        try:
            offered = websocket.scope.get("subprotocols") or []
            await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
            await _splice(websocket, stream, frame_size=self._frame_size)
        finally:
            stream.writer.close()
            self._slots.release(key, stream.slot)

    def _opener(self, key: _VMIKey) -> SlotOpener:
        async def open_slot(slot: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
            try:
                path = self._slot_dir(key.namespace, key.name, key.uid) / slot_socket_name(slot)
                async with asyncio.timeout(self._slot_connect_timeout):  # see kubevirt_usb.tasks
                    return await asyncio.open_unix_connection(str(path))
            except (OSError, TimeoutError, LookupError):
                return None

        return open_slot


# ----------------------------------------------------------------------------- plumbing


def _user_of(scope: Mapping[str, Any]) -> UserInfo:
    user = (scope.get("state") or {}).get("user")
    return user if isinstance(user, UserInfo) else ANONYMOUS


async def _deny(websocket: WebSocket, error: APIError) -> None:
    """Answer the upgrade request with a plain HTTP error and a `Status` body."""
    response = JSONResponse(status_body(error), status_code=error.code)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:  # a server without the extension can only refuse the handshake (uvicorn: bare 403)
        await websocket.close()


async def _splice(websocket: WebSocket, stream: _SlotStream, *, frame_size: int) -> None:
    """Copy until either side ends; the VM side ending closes the websocket normally."""
    to_vm = asyncio.create_task(_websocket_to_slot(websocket, stream.writer))
    to_client = asyncio.create_task(_slot_to_websocket(stream.reader, websocket, frame_size))
    try:
        await asyncio.wait({to_vm, to_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_vm, to_client):
            task.cancel()
        await asyncio.gather(to_vm, to_client, return_exceptions=True)
    if websocket.client_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1000)


async def _websocket_to_slot(websocket: WebSocket, writer: asyncio.StreamWriter) -> None:
    """Binary frames to the slot, one at a time, waiting for the socket to drain."""
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data:  # text frames are dropped, as virt-handler's binaryReader does
                writer.write(data)
                await writer.drain()


async def _slot_to_websocket(reader: asyncio.StreamReader, websocket: WebSocket,
                             frame_size: int) -> None:
    """Slot bytes as binary frames, read only as fast as the websocket takes them."""
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
        while data := await reader.read(frame_size):
            await websocket.send_bytes(data)
