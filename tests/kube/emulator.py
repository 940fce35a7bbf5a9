"""Test helpers around the API emulator: a running cluster with the project's CRDs, a transport that
answers some requests with errors, a TCP relay that can stand in for an API server that is down,
and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube.config.kubeconfig import SingleConfig

from kubevirt_usb import crds
from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from kubevirt_usb.kube.client import KubeClient, connect
from kubevirt_usb.kube.config import load_config

NAMESPACE = "kubevirt-usb"


@dataclass
class Emulator:
    """A running API emulator with the project's CRDs and the kubevirt-usb namespace."""

    background: BackgroundAPIServer
    server: APIServer
    kubeconfig: Path

    def config(self) -> SingleConfig:
        return load_config(kubeconfig=self.kubeconfig)

    def client(self, *, field_manager: str = "kubevirt-usb-test",
               wrap: Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport] | None = None,
               ) -> KubeClient:
        return connect(self.config(), field_manager=field_manager, wrap=wrap)


@contextlib.contextmanager
def emulator(state_dir: Path) -> Iterator[Emulator]:
    background = BackgroundAPIServer(ServerOptions(state_dir=state_dir))
    server = background.start()
    try:
        for crd in crds.all_crds():
            server.create_object(crd)
        server.create_object({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE}})
        yield Emulator(background, server, server.write_kubeconfig(state_dir / "kubeconfig"))
    finally:
        background.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Emulator]:
    """A running emulator for one test (its files under tmp_path/apiserver), for the test
    packages that use it (their conftest.py re-exports this fixture)."""
    with emulator(tmp_path / "apiserver") as running:
        yield running


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass
class Fault:
    """Answer the next `times` requests with this method (and path part) with an error."""

    method: str
    path_contains: str
    code: int
    reason: str
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # instead of a Status (e.g. something that is not JSON at all)


class FaultyTransport(httpx2.AsyncBaseTransport):
    """Passes requests on, except those a pending `Fault` matches; records every request."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, faults: list[Fault]) -> None:
        self.inner = inner
        self.faults = faults
        self.requests: list[tuple[str, str]] = []
        self.injected: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        method, path = request.method, request.url.path
        self.requests.append((method, path))
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path_contains in path:
                fault.times -= 1
                self.injected.append((method, path, fault.code))
                headers = {"Content-Type": "application/json", **fault.headers}
                if fault.body is not None:
                    return httpx2.Response(fault.code, headers=headers, content=fault.body,
                                           request=request)
                return httpx2.Response(
                    fault.code, headers=headers,
                    json=status_body(fault.code, fault.reason, f"injected {fault.reason}"),
                    request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Relay:
    """A TCP port that refuses connections until `start`, then relays them to `target`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @staticmethod
    def free_port() -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", port)
        self.port = port

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0,
                     interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@contextlib.asynccontextmanager
async def running(coro: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run a coroutine as a task for the duration of the block, then cancel it."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
