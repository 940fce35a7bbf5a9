"""Running the API emulator: TLS, tokens, bootstrap objects, and the uvicorn server, in the
foreground (`kubevirt-usb sandbox apiserver`) or on a background thread (tests, the sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
import yaml

from kubevirt_usb import listen
from kubevirt_usb.apiserver import bootstrap, errors
from kubevirt_usb.apiserver.api import RequestContext
from kubevirt_usb.apiserver.app import APIServerApp, Authenticator, build_app, new_cluster_state
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.extension import Extension
from kubevirt_usb.apiserver.kubeconfig import kubeconfig, write_kubeconfig
from kubevirt_usb.apiserver.resources import workload_resources
from kubevirt_usb.apiserver.tls import ServingCertificate, generate

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_GRACE_SECONDS = 0.2
ADMIN = UserInfo(name="kubernetes-admin", groups=("system:masters", "system:authenticated"))


class ServerStartError(RuntimeError):
    """The emulator could not start; the message says what to change."""


@dataclass(kw_only=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    state_dir: Path
    tokens: dict[str, UserInfo] = field(default_factory=dict)
    manifests: Sequence[dict[str, Any]] = ()  # applied at start (RBAC file, CRDs...)
    extensions: Sequence[Extension] = ()
    bookmark_interval: float = 60.0
    history_size: int = 10_000


def parse_listen(text: str) -> tuple[str, int]:
    try:
        return listen.parse_listen(text)
    except listen.ListenError as exc:
        raise ServerStartError(f"--listen {exc}") from exc


def load_manifests(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except UnicodeDecodeError as exc:
        raise ServerStartError(f"cannot read {path}: it is not a text file") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ServerStartError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ServerStartError(f"{path}: every document must be a Kubernetes object")
        out.extend(doc.get("items") or [] if doc["kind"].endswith("List") else [doc])
    return out


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        return listen.bind(host, port, backlog=512)
    except listen.ListenError as exc:
        raise ServerStartError(str(exc)) from exc


class APIServer:
    """One emulated cluster: state, certificates, tokens and the HTTPS server."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.api, self.control = new_cluster_state()
        self.api.store.history_size = options.history_size
        for info in workload_resources():
            self.api.registry.add(info)
        self.authenticator = Authenticator(tokens=dict(options.tokens))
        self.admin_token = self.authenticator.mint(ADMIN)
        self.certificate: ServingCertificate = generate(options.state_dir / "pki")
        self.control.root_ca_pem = self.certificate.ca_pem().decode()
        self._socket = bind_socket(options.host, options.port)
        self.port: int = self._socket.getsockname()[1]
        self.app, self.server_app = build_app(
            api=self.api, control=self.control, authenticator=self.authenticator,
            extensions=options.extensions, server_address=f"{options.host}:{self.port}",
            bookmark_interval=options.bookmark_interval)
        self._uvicorn: _Uvicorn | None = None
        self._bootstrap()

    @property
    def url(self) -> str:
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        return f"https://{host}:{self.port}"

    @property
    def context(self) -> APIServerApp:
        return self.server_app

    def _bootstrap(self) -> None:
        objects = [*bootstrap.namespaces(), *bootstrap.cluster_roles(),
                   *bootstrap.cluster_role_bindings()]
        for obj in objects:
            self.create_object(obj)
        for obj in self.options.manifests:
            self.create_object(obj)
        # Like etcd after its periodic compaction: watches cannot start before this point.
        self.api.store.compact()

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace) an object as the cluster admin, from inside the server."""
        info = self.api.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if info is None:
            raise ServerStartError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}: "
                                   "register its CRD first")
        ctx = RequestContext(user=ADMIN, field_manager="kubevirt-usb-bootstrap")
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace", "default") if info.namespaced else ""
        try:
            return self.api.create(info, namespace=namespace, body=obj, ctx=ctx)
        except errors.APIError as exc:
            if exc.reason != "AlreadyExists":
                raise ServerStartError(f"{info.kind} {meta.get('name')!r}: {exc.message}") from exc
            current = self.api.get(info, namespace=namespace, name=meta["name"])
            body = {**obj, "metadata": {**meta, "resourceVersion": current["metadata"][
                "resourceVersion"]}}
            return self.api.update(info, namespace=namespace, name=meta["name"], body=body,
                                   ctx=ctx)

    def kubeconfig(self, *, token: str | None = None, user: str = "admin") -> dict[str, Any]:
        return kubeconfig(server=self.url, ca_pem=self.certificate.ca_pem(),
                          token=token or self.admin_token, user=user)

    def write_kubeconfig(self, path: Path, *, token: str | None = None,
                         user: str = "admin") -> Path:
        write_kubeconfig(path, self.kubeconfig(token=token, user=user))
        return path

    def add_user(self, user: UserInfo, *, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(32)
        self.authenticator.tokens[token] = user
        return token

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate.ca_path))

    async def serve(self, *, on_ready: Callable[[], None] | None = None) -> None:
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False,
            ssl_certfile=str(self.certificate.cert_path),
            ssl_keyfile=str(self.certificate.key_path), timeout_keep_alive=60,
            ws="wsproto", ws_ping_interval=None, ws_max_size=64 * 1024 * 1024,
            timeout_graceful_shutdown=5)
        server = _Uvicorn(config, on_exit=self._close_watches_soon)
        self._uvicorn = server
        task = asyncio.ensure_future(server.serve(sockets=[self._socket]))
        ready = asyncio.ensure_future(server.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()
            raise ServerStartError("the API emulator stopped while starting")
        if on_ready is not None:
            on_ready()
        await task

    def _close_watches_soon(self) -> None:
        """A signal asked uvicorn to stop: end watches and connections as `request_stop` does
        (scheduled, as a signal handler may interrupt the loop anywhere)."""
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_soon_threadsafe(self.request_stop)

    def request_stop(self) -> None:
        """Stop serving now: end watches and drop open connections (clients reconnect, as they
        do when a real API server restarts) instead of waiting for idle keep-alives."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            self.api.store.close_watchers()
            # the streams just ended send their last chunk on the next turns of the loop;
            # whatever is still open then (idle keep-alives) is dropped
            asyncio.get_running_loop().call_later(STOP_GRACE_SECONDS,
                                                  self._uvicorn.drop_connections)


class _Uvicorn(uvicorn.Server):
    """uvicorn that also ends open watch streams when a signal stops it, so the graceful
    shutdown does not wait for them."""

    def __init__(self, config: uvicorn.Config, *, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._on_exit()

    def drop_connections(self) -> None:
        """Abort every open connection (TLS shutdown would wait for each client to answer)."""
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()


class BackgroundAPIServer:
    """The emulator on its own thread and event loop (tests, `kubevirt-usb sandbox up`)."""

    def __init__(self, options: ServerOptions) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self.server: APIServer | None = None
        self._thread = threading.Thread(target=self._run, args=(options,), daemon=True,
                                        name="kubevirt-usb-apiserver")

    def start(self, *, timeout: float = 30.0) -> APIServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ServerStartError("the API emulator did not start within "
                                   f"{timeout:.0f} s")
        if self._error is not None:
            raise self._error
        assert self.server is not None
        return self.server

    def _run(self, options: ServerOptions) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = self.loop.run_until_complete(self._create(options))
            self.loop.run_until_complete(self.server.serve(on_ready=self._ready.set))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @staticmethod
    async def _create(options: ServerOptions) -> APIServer:
        return APIServer(options)

    def call(self, fn: Callable[[], T], *, timeout: float = 10.0) -> T:
        """Run `fn` on the server's loop (the store is not thread-safe) and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.server is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_stop)
        self._thread.join(timeout)
