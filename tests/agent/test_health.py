"""/healthz, /readyz and /metrics, decided without I/O and served over real TCP."""

from __future__ import annotations

import asyncio
import socket

import pytest

from kubevirt_usb.agent.health import HealthServer, parse_listen, respond


def _metrics() -> tuple[bytes, str]:
    return b"metric 1\n", "text/plain; version=0.0.4"


def test_liveness_readiness_and_metrics_answers() -> None:
    fine = respond("GET", "/healthz", live=lambda: None, ready=lambda: "x", metrics=_metrics)
    not_ready = respond("GET", "/readyz", live=lambda: None, ready=lambda: "API down",
                        metrics=_metrics)
    metrics = respond("GET", "/metrics?x=1", live=lambda: None, ready=lambda: None,
                      metrics=_metrics)
    assert (fine.status, fine.body) == (200, b"ok\n")
    assert (not_ready.status, not_ready.body) == (503, b"API down\n")
    assert (metrics.status, metrics.body, metrics.content_type) == (
        200, b"metric 1\n", "text/plain; version=0.0.4")
    assert respond("GET", "/other", live=lambda: None, ready=lambda: None,
                   metrics=_metrics).status == 404
    assert respond("POST", "/healthz", live=lambda: None, ready=lambda: None,
                   metrics=_metrics).status == 405


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen("[::1]:9") == ("::1", 9)
    assert parse_listen(":8080") == ("0.0.0.0", 8080)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("8080")


async def _get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_served_over_tcp() -> None:
    problem: list[str] = ["starting"]
    server = HealthServer(host="127.0.0.1", port=0, live=lambda: None,
                          ready=lambda: problem[0] if problem else None, metrics=_metrics)
    port = await server.start()
    try:
        assert await _get(port, "/readyz") == (503, b"starting\n")
        problem.clear()
        assert await _get(port, "/readyz") == (200, b"ok\n")
        assert await _get(port, "/metrics") == (200, b"metric 1\n")
    finally:
        await server.close()


async def test_a_connection_whose_handler_is_cancelled_as_its_request_arrives_is_not_answered(
        ) -> None:
    server = HealthServer(host="127.0.0.1", port=0, live=lambda: None, ready=lambda: None,
                          metrics=_metrics)
    ours, theirs = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=ours)
    their_reader, their_writer = await asyncio.open_connection(sock=theirs)
    request = asyncio.StreamReader()  # what the handler reads: fed by this test
    handling = asyncio.create_task(server._handle(request, writer))
    await asyncio.sleep(0)  # it waits for the request
    request.feed_data(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the request arrives
    handling.cancel()  # as the agent stops
    with pytest.raises(asyncio.CancelledError):
        await handling
    assert await their_reader.read() == b""  # closed, not answered
    their_writer.close()
