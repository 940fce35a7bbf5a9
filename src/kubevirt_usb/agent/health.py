"""The agent's small HTTP endpoint for the kubelet and Prometheus.

- `GET /healthz`: 200 while the agent's loops are running (liveness);
- `GET /readyz`: 200 once the first publish is done and the API server answered the latest
  request, else 503 with the reason (readiness);
- `GET /metrics`: Prometheus metrics.

A plain asyncio server (one request per connection) keeps the agent small.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kubevirt_usb import listen as listening

Check = Callable[[], str | None]  # None when fine, else why not
Metrics = Callable[[], tuple[bytes, str]]

_MAX_HEADER_BYTES = 16 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def respond(method: str, path: str, *, live: Check, ready: Check, metrics: Metrics) -> Response:
    """The answer to one request."""
    if method not in ("GET", "HEAD"):
        return Response(405, b"only GET\n")
    route = path.split("?", 1)[0]
    if route in ("/healthz", "/livez", "/readyz"):
        problem = (ready if route == "/readyz" else live)()
        return Response(503, f"{problem}\n".encode()) if problem else Response(200, b"ok\n")
    if route == "/metrics":
        body, content_type = metrics()
        return Response(200, body, content_type)
    return Response(404, b"not found\n")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets) as (host, port); an empty host is 0.0.0.0."""
    return listening.parse_listen(text, default_host="0.0.0.0")


class HealthServer:
    """Serves `respond` on a TCP port."""

    def __init__(self, *, host: str, port: int, live: Check, ready: Check,
                 metrics: Metrics) -> None:
        self.host, self.port = host, port
        self.live, self.ready, self.metrics = live, ready, metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):  # not wait_for: see kubevirt_usb.tasks
                head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(head) > _MAX_HEADER_BYTES or len(request_line) != 3:
                answer = Response(400, b"bad request\n")
            else:
                answer = respond(request_line[0], request_line[1], live=self.live,
                                 ready=self.ready, metrics=self.metrics)
            body = b"" if request_line[:1] == ["HEAD"] else answer.body
            writer.write(
                f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, '')}\r\n"
                f"Content-Type: {answer.content_type}\r\nContent-Length: {len(answer.body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
