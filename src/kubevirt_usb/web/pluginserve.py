"""`kubevirt-usb plugin-serve`: the OpenShift console plugin's built files (console-plugin/dist,
in the image at /opt/kubevirt-usb/console-plugin) over HTTPS, for the console's ConsolePlugin
backend Service. The console fetches them with its own client and proxies them to browsers under
/api/plugins/kubevirt-usb/; the files are static, so this server holds no credentials and talks
to no API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubevirt_usb import listen as listening

MANIFEST = "plugin-manifest.json"
DEFAULT_DIST = Path("/opt/kubevirt-usb/console-plugin")


class PluginDistError(ValueError):
    """The directory is not a built console plugin; the message says what to do."""


def check_dist(dist: Path) -> Path:
    """`dist` if it holds a built plugin (its plugin-manifest.json), else PluginDistError."""
    if not (dist / MANIFEST).is_file():
        raise PluginDistError(f"{dist} holds no {MANIFEST}: build the plugin first "
                              "(cd console-plugin && npm run build) and pass its dist/ directory")
    return dist


async def _healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


def _with_headers(app: ASGIApp) -> ASGIApp:
    """The manifest is never cached (it names the current bundle); nothing is sniffed."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if scope.get("path") == f"/{MANIFEST}":
                    headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, sending)

    return wrapped


def plugin_app(dist: Path) -> ASGIApp:
    """The plugin's files under /, and /healthz for the pod's probes."""
    files = StaticFiles(directory=check_dist(dist))
    return _with_headers(Starlette(routes=[Route("/healthz", _healthz),
                                           Mount("/", app=files)]))


@click.command(name="plugin-serve")
@click.option("--dist", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DIST,
              show_default=True, help="The built plugin (console-plugin/dist).")
@click.option("--listen", default="127.0.0.1:9001", show_default=True,
              help="HOST:PORT to serve on.")
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Serve HTTPS with this certificate (and --tls-key), e.g. the service CA's.")
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def plugin_serve(dist: Path, listen: str, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the OpenShift console plugin's files (the ConsolePlugin's backend)."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        host, port = listening.parse_listen(listen)
    except listening.ListenError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    try:
        app = plugin_app(dist)
    except PluginDistError as exc:
        raise click.ClickException(str(exc)) from exc
    asyncio.run(_serve(app, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key))


async def _serve(app: ASGIApp, *, host: str, port: int, tls_cert: Path | None,
                 tls_key: Path | None) -> None:
    from kubevirt_usb.web.server import WebStartError, start, stop_on_signals

    try:
        running = await start(app, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
    except WebStartError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"kubevirt-usb console plugin on {running.url}")
    await running.serve_until(stop_on_signals())
