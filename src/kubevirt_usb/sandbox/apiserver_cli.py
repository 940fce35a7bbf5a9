"""`kubevirt-usb sandbox apiserver`: the API emulator in the foreground."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from kubevirt_usb.apiserver.kubeconfig import TokenFileError, parse_token_file
from kubevirt_usb.apiserver.server import (
    APIServer,
    ServerOptions,
    ServerStartError,
    load_manifests,
    parse_listen,
)


@click.command("apiserver")
@click.option("--listen", default="127.0.0.1:6443", show_default=True, metavar="HOST:PORT",
              help="Address to serve HTTPS on (port 0 picks a free one).")
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Where to write a kubeconfig with a cluster-admin token.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="Where the generated CA and certificates go (default: beside the kubeconfig).")
@click.option("--token-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="Extra users: token,user,uid,\"group1,group2\" lines.")
@click.option("--rbac-file", "rbac_files", multiple=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="YAML objects (Roles, Bindings, CRDs...) created at start. Repeatable.")
def apiserver(listen: str, kubeconfig_path: Path, state_dir: Path | None,
              token_file: Path | None, rbac_files: tuple[Path, ...]) -> None:
    """Serve a loopback Kubernetes API (HTTPS) until SIGINT or SIGTERM."""
    try:
        host, port = parse_listen(listen)
        tokens = parse_token_file(_text(token_file), source=str(token_file)) \
            if token_file else {}
        manifests = [doc for path in rbac_files for doc in load_manifests(path)]
        options = ServerOptions(host=host, port=port, tokens=tokens, manifests=manifests,
                                state_dir=state_dir or kubeconfig_path.parent / "apiserver")
        asyncio.run(_serve(options, kubeconfig_path))
    except (ServerStartError, TokenFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not a text file") from exc


async def _serve(options: ServerOptions, kubeconfig_path: Path) -> None:
    server = APIServer(options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)

    def ready() -> None:
        server.write_kubeconfig(kubeconfig_path)
        click.echo(f"API emulator serving {server.url}; kubeconfig: {kubeconfig_path}", err=True)

    await server.serve(on_ready=ready)
