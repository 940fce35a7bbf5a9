"""`kubevirt-usb web`: the web UI. It needs no credentials of its own, only where the API server
is and its CA; users sign in with their own token (`--auth login`) or come through OpenShift's
oauth-proxy, which hands over theirs (`--auth proxy`)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubevirt_usb import listen as listening
from kubevirt_usb.web.config import AuthMode, WebConfig

if TYPE_CHECKING:
    from kubevirt_usb.web.kubeapi import UserAPI


def parse_listen(text: str) -> tuple[str, int]:
    try:
        return listening.parse_listen(text)
    except listening.ListenError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc


def api_server_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--api-server: an http(s) URL with a host, e.g. https://api.example:6443."""
    if value is None:
        return None
    try:
        url = urllib.parse.urlsplit(value)
        host, _port = url.hostname, url.port  # a port that is not a number raises
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from exc
    if url.scheme not in ("https", "http") or not host:
        raise click.BadParameter(f"{value!r}: expected the API server's URL, e.g. "
                                 "https://api.example:6443")
    return value


def ca_trust(*, ca_file: Path | None, ca_data: str | None, insecure: bool,
             ) -> ssl.SSLContext | bool:
    """How to check the API server's certificate; a one-line error when the CA is unusable."""
    from kubevirt_usb.web.kubeapi import trust

    try:
        return trust(ca_file=ca_file, ca_data=ca_data, insecure=insecure)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        where = f"CA file {ca_file}" if ca_file is not None else "the kubeconfig's CA"
        if ca_file is not None and not ca_file.is_file():
            raise click.ClickException(f"the API server's {where} does not exist") from exc
        detail = " ".join(str(exc).split())
        raise click.ClickException(f"the API server's {where} is not a PEM certificate bundle "
                                   f"({detail})") from exc


def api_from_kubeconfig(path: Path | None, context: str | None) -> tuple[str, str | None,
                                                                         Path | None, bool]:
    """The API server and CA of a kubeconfig (its credentials are not used)."""
    from kubevirt_usb.kube.config import ConfigError, load_config

    try:
        config = load_config(kubeconfig=path, context=context)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    cluster = config.cluster
    try:
        data = base64.b64decode(cluster.certificate_auth_data).decode() \
            if cluster.certificate_auth_data else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"kubeconfig {config.fname}: its certificate-authority-data "
                                   f"is not a base64-encoded PEM certificate ({exc})") from exc
    ca_file = Path(config.abs_file(cluster.certificate_auth)) if cluster.certificate_auth \
        else None
    return cluster.server, data, ca_file, cluster.insecure


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT to serve on.")
@click.option("--auth", type=click.Choice(["login", "proxy"]), default="login",
              show_default=True, help="login: users paste their token into a sign-in form; "
              "proxy: behind oauth-proxy, which sets X-Forwarded-Access-Token.")
@click.option("--api-server", callback=api_server_url,
              help="The Kubernetes API server's URL (default: the kubeconfig's).")
@click.option("--ca-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The API server's CA bundle (default: the kubeconfig's, else the system's).")
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Take the API server and CA from this kubeconfig (never its credentials).")
@click.option("--context", help="The kubeconfig context to use.")
@click.option("--sign-in-url", default="/oauth/start", show_default=True,
              help="--auth proxy: where a user whose token expired signs in again.")
@click.option("--default-namespace", default="default", show_default=True)
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Serve HTTPS with this certificate (and --tls-key).")
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--insecure-cookies", is_flag=True,
              help="Cookies without Secure, for plain HTTP on a non-local address (never in "
              "production: the session cookie would travel in clear text).")
@click.option("--access-log", is_flag=True, help="Log every request (paths only, no tokens).")
def web(listen: str, auth: str, api_server: str | None, ca_file: Path | None,
        kubeconfig: Path | None, context: str | None, sign_in_url: str,
        default_namespace: str, tls_cert: Path | None, tls_key: Path | None,
        insecure_cookies: bool, access_log: bool) -> None:
    """Serve the web UI: devices by node, VMs and their USB attachments, policies, the audit
    trail; attach, detach and grant with the signed-in user's own rights."""
    from kubevirt_usb.web.kubeapi import UserAPI

    host, port = parse_listen(listen)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    ca_data, insecure = None, False
    if api_server is None:
        api_server, ca_data, found_ca, insecure = api_from_kubeconfig(kubeconfig, context)
        ca_file = ca_file or found_ca
    mode: AuthMode = "proxy" if auth == "proxy" else "login"
    config = WebConfig(auth=mode, secure_cookies=not insecure_cookies, https=tls_cert is not None,
                       sign_in_url=sign_in_url, default_namespace=default_namespace)
    api = UserAPI(server=api_server, verify=ca_trust(ca_file=ca_file, ca_data=ca_data,
                                                     insecure=insecure))
    asyncio.run(_serve(config, api=api, host=host, port=port, tls_cert=tls_cert,
                       tls_key=tls_key, access_log=access_log))


async def _serve(config: WebConfig, *, api: UserAPI, host: str, port: int,
                 tls_cert: Path | None, tls_key: Path | None, access_log: bool) -> None:
    from kubevirt_usb.web.app import build_app
    from kubevirt_usb.web.context import WebContext
    from kubevirt_usb.web.server import WebStartError, start, stop_on_signals

    context = WebContext.create(config, api=api)
    try:
        running = await start(build_app(context), host=host, port=port, tls_cert=tls_cert,
                              tls_key=tls_key, access_log=access_log)
    except WebStartError as exc:
        await api.close()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"kubevirt-usb web UI on {running.url} (API server {api.server}, "
               f"sign-in: {config.auth})")
    await running.serve_until(stop_on_signals())
    await api.close()
