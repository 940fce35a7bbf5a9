"""Where the Kubernetes API server is and how to prove who we are to it.

Built from a kubeconfig (people, `kubectl usb`) or from the pod's service account (the node agent).
The service-account token is a projected token the kubelet rotates, so it is re-read whenever the
file changes; the CA file is read again for every connection.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@runtime_checkable
class TokenSource(Protocol):
    def token(self) -> str:
        """The bearer token to send now."""
        ...


@dataclass(frozen=True)
class StaticToken:
    """A token that never changes (a kubeconfig `token:`)."""

    value: str

    def token(self) -> str:
        return self.value


class TokenFile:
    """A token file, re-read when it changes: the kubelet swaps projected tokens atomically, so the
    file's identity or mtime changes with each rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int, int] | None = None
        self._value = ""

    def token(self) -> str:
        st = os.stat(self.path)  # follows the kubelet's `..data` symlink to the current file
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._value = self.path.read_text().strip()
            self._stamp = stamp
        return self._value


Token = TokenSource | Callable[[], str]


class EndpointError(ValueError):
    """The kubeconfig or the pod environment does not describe a usable API server."""


@dataclass(frozen=True, kw_only=True)
class APIEndpoint:
    """An API server and the credentials to use with it."""

    server: str
    """`https://host:port`, optionally with a path prefix."""
    token: Token | None = None
    ca_file: Path | None = None
    ca_data: bytes | None = None
    """PEM, as a kubeconfig's `certificate-authority-data` decodes."""
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    tls_server_name: str | None = None
    insecure_skip_tls_verify: bool = False
    proxy: str | None = None
    """An `http://` proxy URL (kubeconfig `proxy-url`); None connects directly."""

    def bearer_token(self) -> str | None:
        if self.token is None:
            return None
        value = self.token.token() if isinstance(self.token, TokenSource) else self.token()
        return value or None

    def websocket_url(self, path: str) -> str:
        """The `ws(s)://` URL of an API path on this server."""
        parts = urlsplit(self.server)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme)
        if scheme is None:
            raise EndpointError(f"unsupported protocol {parts.scheme!r} in {self.server!r}")
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))

    def is_tls(self) -> bool:
        return urlsplit(self.server).scheme == "https"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the cluster CA (read now, so a rotated CA is picked up)."""
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=str(self.ca_file) if self.ca_file else None,
            cadata=self.ca_data.decode() if self.ca_data else None,
        )
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if (self.client_cert_file or self.client_cert_data or self.client_key_file
                or self.client_key_data):
            _load_client_cert(ctx, self)
        return ctx


def usbredir_path(*, namespace: str, vmi: str) -> str:
    return (
        f"/apis/subresources.kubevirt.io/v1/namespaces/{quote(namespace, safe='')}"
        f"/virtualmachineinstances/{quote(vmi, safe='')}/usbredir"
    )


def in_cluster(
    *, environ: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> APIEndpoint:
    """The API server as a pod sees it, with the pod's service-account token and CA."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise EndpointError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
            "must be set"
        )
    if ":" in host:
        host = f"[{host}]"
    return APIEndpoint(
        server=f"https://{host}:{port}",
        token=TokenFile(sa_dir / "token"),
        ca_file=sa_dir / "ca.crt",
    )


def from_kubeconfig(
    config: Mapping[str, Any], *, base_dir: Path, context: str | None = None
) -> APIEndpoint:
    """The cluster and user of a kubeconfig context (the current one unless named).
    Relative file paths are relative to the kubeconfig's directory, as kubectl resolves them."""
    name = context or config.get("current-context") or ""
    ctx = _named(config, "contexts", "context", name)
    cluster = _named(config, "clusters", "cluster", str(ctx.get("cluster", "")))
    user = _named(config, "users", "user", str(ctx.get("user", ""))) if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise EndpointError(f"context {name!r}: credential plugins (exec, auth-provider) are not "
                            "supported; use a token, tokenFile or client certificate")
    if "server" not in cluster:
        raise EndpointError(f"context {name!r}: the cluster has no server")

    def path(key: str, entry: Mapping[str, Any]) -> Path | None:
        return base_dir / str(entry[key]) if entry.get(key) else None

    def data(key: str, entry: Mapping[str, Any]) -> bytes | None:
        return base64.b64decode(str(entry[key])) if entry.get(key) else None

    token: Token | None = None
    if user.get("token"):
        token = StaticToken(str(user["token"]))
    elif user.get("tokenFile"):
        token = TokenFile(base_dir / str(user["tokenFile"]))
    return APIEndpoint(
        server=str(cluster["server"]),
        token=token,
        ca_file=path("certificate-authority", cluster),
        ca_data=data("certificate-authority-data", cluster),
        client_cert_file=path("client-certificate", user),
        client_key_file=path("client-key", user),
        client_cert_data=data("client-certificate-data", user),
        client_key_data=data("client-key-data", user),
        tls_server_name=cluster.get("tls-server-name") or None,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        proxy=cluster.get("proxy-url") or None,
    )


def load_kubeconfig(path: Path, *, context: str | None = None) -> APIEndpoint:
    """`from_kubeconfig` of a kubeconfig file."""
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, Mapping):
        raise EndpointError(f"{path}: not a kubeconfig")
    return from_kubeconfig(config, base_dir=path.parent, context=context)


def _named(config: Mapping[str, Any], section: str, field: str, name: str) -> Mapping[str, Any]:
    for entry in config.get(section) or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            value = entry.get(field) or {}
            if isinstance(value, Mapping):
                return value
    raise EndpointError(f"kubeconfig has no {field} named {name!r}")


def _load_client_cert(ctx: ssl.SSLContext, endpoint: APIEndpoint) -> None:
    """`load_cert_chain` reads files only: inline kubeconfig data passes through a private dir."""
    with tempfile.TemporaryDirectory(prefix="kubevirt-usb-tls-") as tmp:
        cert = endpoint.client_cert_file
        key = endpoint.client_key_file
        if endpoint.client_cert_data is not None:
            cert = Path(tmp) / "client.crt"
            cert.write_bytes(endpoint.client_cert_data)
        if endpoint.client_key_data is not None:
            key = Path(tmp) / "client.key"
            key.write_bytes(endpoint.client_key_data)
        if cert is None:
            raise EndpointError("a client key needs a client certificate")
        ctx.load_cert_chain(str(cert), str(key) if key else None)
