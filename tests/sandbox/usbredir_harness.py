"""Test helpers for the usbredir path: a fake API context, fake VM slots (unix sockets), a bearer
token authenticator, the virt-api emulator on a real uvicorn server, and a throwaway TLS CA."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator, slot_socket_name

NAMESPACE = "default"


def make_vmi(
    name: str = "testvmi",
    *,
    namespace: str = NAMESPACE,
    uid: str = "uid-1",
    phase: str = "Running",
    client_passthrough: bool = True,
    architecture: str | None = None,
) -> dict[str, Any]:
    devices: dict[str, Any] = {"clientPassthrough": {}} if client_passthrough else {}
    spec: dict[str, Any] = {"domain": {"devices": devices}}
    if architecture is not None:
        spec["architecture"] = architecture
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": spec,
        "status": {"phase": phase},
    }


@dataclass
class FakeContext:
    """VMIs by (namespace, name) and the users RBAC lets open usbredir."""

    vmis: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    allowed_users: set[str] = field(default_factory=set)

    def add(self, vmi: dict[str, Any]) -> None:
        meta = vmi["metadata"]
        self.vmis[(meta["namespace"], meta["name"])] = vmi

    async def get_object(
        self, *, group: str, resource: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        assert (group, resource) == ("kubevirt.io", "virtualmachineinstances")
        return self.vmis.get((namespace, name))

    async def is_allowed(self, *, user: UserInfo, verb: str, group: str, resource: str,
                         subresource: str = "", namespace: str = "", name: str = ""
                         ) -> bool:
        wanted = ("get", "subresources.kubevirt.io", "virtualmachineinstances", "usbredir")
        return (verb, group, resource, subresource) == wanted and user.name in self.allowed_users


# ----------------------------------------------------------------------------- VM slots


class SlotPeer:
    """The VM's end of one stream on a slot."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = bytearray()
        self.ended = asyncio.Event()


class FakeSlot:
    """A `virt-usbredir-<N>` unix socket server; echoes what it receives unless told not to."""

    def __init__(self, path: Path, *, echo: bool) -> None:
        self.path = path
        self.echo = echo
        self.peers: list[SlotPeer] = []
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in self.peers:
            peer.writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = SlotPeer(reader, writer)
        self.peers.append(peer)
        if not self.echo:
            return
        try:
            while data := await reader.read(65536):
                peer.received += data
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            peer.ended.set()
            writer.close()


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="vu-", dir="/tmp") as name:
        yield Path(name)


@contextlib.asynccontextmanager
async def fake_slots(
    root: Path, *, slots: Mapping[int, str] | None = None, echo: bool = True
) -> AsyncIterator[dict[int, FakeSlot]]:
    """Slot sockets in `root`; `slots` maps a slot to "listen" (default for 0..3), "refuse"
    (a socket file nobody listens on) or "missing"."""
    kinds = dict(slots) if slots is not None else {n: "listen" for n in range(4)}
    servers: dict[int, FakeSlot] = {}
    for slot, kind in kinds.items():
        path = root / slot_socket_name(slot)
        if kind == "listen":
            servers[slot] = FakeSlot(path, echo=echo)
            await servers[slot].start()
        elif kind == "refuse":
            dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            dead.bind(str(path))
            dead.close()
    try:
        yield servers
    finally:
        for server in servers.values():
            await server.stop()


# ----------------------------------------------------------------------------- the server


class FakeAuthenticator:
    """What the API emulator does before an extension: bearer token -> user in scope state;
    an unknown token is a 401 `Status`. Remembers the tokens it saw."""

    def __init__(self, app: ASGIApp, *, tokens: Mapping[str, UserInfo], seen: list[str]) -> None:
        self.app = app
        self.tokens = tokens
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode()
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        self.seen.append(token)
        user = self.tokens.get(token)
        if user is None:
            response = JSONResponse(errors.unauthorized().status(), status_code=401)
            if scope["type"] == "websocket":
                await WebSocket(scope, receive, send).send_denial_response(response)
            else:
                await response(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


def make_app(extension: VirtAPIEmulator, context: FakeContext, *,
             tokens: Mapping[str, UserInfo], seen: list[str]) -> Starlette:
    return Starlette(
        routes=extension.routes(context),
        middleware=[Middleware(FakeAuthenticator, tokens=tokens, seen=seen)],
    )


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, *, certfile: Path | None = None, keyfile: Path | None = None,
                ws: str = "wsproto") -> AsyncIterator[int]:
    """The app on a real uvicorn server at 127.0.0.1:<random port>. uvicorn's `wsproto` websocket
    implementation by default: `websockets-sansio` logs a spurious ERROR after every denial
    response (uvicorn 0.54); both behave the same otherwise."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws=ws,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done())
    if task.done():
        task.result()
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


# ----------------------------------------------------------------------------- waiting


async def eventually(condition: Callable[[], bool], *, deadline: float = 20.0) -> None:
    """Wait until `condition()` holds; fail after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


async def settled(value: Callable[[], int], *, quiet: float = 0.5, deadline: float = 30.0) -> int:
    """Wait until `value()` stops changing for `quiet` seconds (a stalled flow); return it."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last, since = value(), loop.time()
    while loop.time() - since < quiet:
        if loop.time() > end:
            raise AssertionError("value kept changing until the deadline")
        await asyncio.sleep(0.05)
        now = value()
        if now != last:
            last, since = now, loop.time()
    return last


async def pump(write: Callable[[bytes], Awaitable[None]], *, total: int, chunk: int,
               progress: list[int]) -> None:
    """Write `total` bytes of a counting pattern, recording progress in `progress[0]`."""
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        await write(pattern(sent, size))
        sent += size
        progress[0] = sent


_CYCLE = bytes(range(251))


def pattern(offset: int, size: int) -> bytes:
    """Bytes whose value depends on their position, so reordering or loss shows."""
    start = offset % len(_CYCLE)
    return (_CYCLE * ((start + size) // len(_CYCLE) + 1))[start:start + size]


# ----------------------------------------------------------------------------- TLS


@dataclass(frozen=True, kw_only=True)
class TLSFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(directory: Path) -> TLSFiles:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-cluster-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, san: list[x509.GeneralName] | None,
             usage: x509.ObjectIdentifier) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    server_cert, server_key = leaf(
        "kube-apiserver",
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client_cert, client_key = leaf("alice", None, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    files = TLSFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt", server_key=directory / "server.key",
        client_cert=directory / "client.crt", client_key=directory / "client.key",
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert)
    files.server_key.write_bytes(server_key)
    files.client_cert.write_bytes(client_cert)
    files.client_key.write_bytes(client_key)
    return files
