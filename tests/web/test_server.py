"""Serving the UI with uvicorn on the current event loop."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kubevirt_usb.web.server import WebStartError, listen, start, stop_on_signals


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def test_start_serves_until_stopped() -> None:
    running = await start(Starlette(routes=[Route("/", _hello)]))
    assert running.url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        assert (await client.get(running.url)).text == "hello"
    await running.stop()
    assert running.task.done()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(running.url)


async def test_serve_until_serves_until_the_event_then_stops() -> None:
    running = await start(Starlette(routes=[Route("/", _hello)]))
    stop = asyncio.Event()
    serving = asyncio.create_task(running.serve_until(stop))
    async with httpx.AsyncClient() as client:
        assert (await client.get(running.url)).text == "hello"
    assert not serving.done()
    stop.set()
    await serving
    assert running.task.done()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(running.url)


async def test_serve_until_cancelled_stops_the_server() -> None:
    running = await start(Starlette(routes=[Route("/", _hello)]))
    serving = asyncio.create_task(running.serve_until(asyncio.Event()))
    async with httpx.AsyncClient() as client:
        assert (await client.get(running.url)).text == "hello"
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert running.task.done()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(running.url)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_sigint_set_the_stop_event(sig: signal.Signals) -> None:
    stop = stop_on_signals()
    assert not stop.is_set()
    os.kill(os.getpid(), sig)
    await asyncio.wait_for(stop.wait(), timeout=30)
    loop = asyncio.get_running_loop()
    for each in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(each)


def test_a_taken_port_is_reported() -> None:
    taken = listen("127.0.0.1", 0)
    try:
        with pytest.raises(WebStartError, match=r"127\.0\.0\.1:\d+ is already in use: stop what"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


async def test_a_certificate_and_key_that_cannot_serve_https_are_reported(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    with pytest.raises(WebStartError, match=f"cannot serve HTTPS with --tls-cert {cert} and "
                                            f"--tls-key {cert}: they must be a PEM certificate "
                                            "and its private key"):
        await start(Starlette(routes=[Route("/", _hello)]), tls_cert=cert, tls_key=cert)


async def test_stopping_that_is_itself_cancelled_is_cancelled_and_ends_the_server() -> None:
    running = await start(Starlette(routes=[Route("/", _hello)]))
    stopping = asyncio.create_task(running.stop())
    await asyncio.sleep(0)  # it waits for the server to end
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert running.task.done()
