"""Serving the web UI with uvicorn: on the current event loop, until told to stop (the
`kubevirt-usb web` command and the sandbox both use it)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from kubevirt_usb import listen as listening
from kubevirt_usb.tasks import end_task


class WebStartError(RuntimeError):
    """The UI could not start; the message says what to change."""


def listen(host: str, port: int) -> socket.socket:
    try:
        return listening.bind(host, port)
    except listening.ListenError as exc:
        raise WebStartError(str(exc)) from exc


def check_tls(cert: Path, key: Path | None) -> None:
    """WebStartError unless `cert` and `key` are a PEM certificate and its private key."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        detail = " ".join(str(exc).split())
        raise WebStartError(f"cannot serve HTTPS with --tls-cert {cert} and --tls-key {key}: "
                            f"they must be a PEM certificate and its private key ({detail})"
                            ) from exc


class _Server(uvicorn.Server):
    """uvicorn that says when it accepts connections and leaves signals to whoever runs it (the
    command's own handlers, the sandbox's)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningWeb:
    """The UI serving on `url`; `await stop()` ends it (open live pages included)."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self, *, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # live pages hold connections open: do not wait for them
        await end_task(self.task, within=timeout)

    async def wait(self) -> None:
        await self.task

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set or the server ends by itself, then stop it."""
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({stopping, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this wait is cancelled: the server does not outlive it
            stopping.cancel()
            await self.stop()


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (on the running loop): how a server is told to end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0,
                tls_cert: Path | None = None, tls_key: Path | None = None,
                access_log: bool = False) -> RunningWeb:
    """Start serving `app` on this event loop; returns once it accepts connections."""
    if tls_cert is not None:
        check_tls(tls_cert, tls_key)
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=access_log,
                            ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None,
                            timeout_graceful_shutdown=2, proxy_headers=False,
                            server_header=False)
    server = _Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    ready = asyncio.ensure_future(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done():
        sock.close()
        task.result()
        raise WebStartError("the web UI stopped while starting")
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if tls_cert else "http"
    return RunningWeb(url=f"{scheme}://{shown}:{bound}", server=server, task=task)
