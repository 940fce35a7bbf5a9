"""Where the API server is and which credentials to use: kubeconfig, in-cluster, rotating tokens."""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path
from typing import Any

import pytest

from kubevirt_usb.stream.endpoint import (
    APIEndpoint,
    EndpointError,
    StaticToken,
    TokenFile,
    from_kubeconfig,
    in_cluster,
    load_kubeconfig,
    usbredir_path,
)
from tests.sandbox.usbredir_harness import make_tls


def kubeconfig(*, user: dict[str, Any], cluster: dict[str, Any] | None = None,
               current: str = "dev") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [
            {"name": "lab", "cluster": cluster or {"server": "https://api.lab:6443",
                                                   "certificate-authority": "ca.crt"}},
            {"name": "other", "cluster": {"server": "https://other:6443"}},
        ],
        "users": [{"name": "me", "user": user}, {"name": "robot", "user": {"token": "robot"}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "lab", "user": "me", "namespace": "vms"}},
            {"name": "ops", "context": {"cluster": "other", "user": "robot"}},
        ],
    }


def test_current_context_with_a_token_and_a_relative_ca(tmp_path: Path) -> None:
    endpoint = from_kubeconfig(kubeconfig(user={"token": "abc"}), base_dir=tmp_path)
    assert endpoint.server == "https://api.lab:6443"
    assert endpoint.ca_file == tmp_path / "ca.crt"
    assert endpoint.bearer_token() == "abc"


def test_named_context_wins_over_the_current_one(tmp_path: Path) -> None:
    endpoint = from_kubeconfig(kubeconfig(user={}), base_dir=tmp_path, context="ops")
    assert (endpoint.server, endpoint.bearer_token()) == ("https://other:6443", "robot")


def test_token_file_ca_data_tls_name_proxy_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    cluster = {"server": "https://10.0.0.1:6443/prefix",
               "certificate-authority-data": base64.b64encode(b"PEM").decode(),
               "tls-server-name": "api.lab", "proxy-url": "http://proxy:3128",
               "insecure-skip-tls-verify": True}
    endpoint = from_kubeconfig(kubeconfig(user={"tokenFile": "token"}, cluster=cluster),
                               base_dir=tmp_path)
    assert endpoint.bearer_token() == "from-file"
    assert endpoint.ca_data == b"PEM"
    assert (endpoint.tls_server_name, endpoint.proxy) == ("api.lab", "http://proxy:3128")
    assert endpoint.insecure_skip_tls_verify
    assert endpoint.websocket_url("/x") == "wss://10.0.0.1:6443/prefix/x"


@pytest.mark.parametrize(
    ("config", "context", "complaint"),
    [
        (kubeconfig(user={"exec": {"command": "aws"}}), None, "credential plugins"),
        (kubeconfig(user={"token": "t"}), "nope", "no context named 'nope'"),
        (kubeconfig(user={"token": "t"}, cluster={"certificate-authority": "x"}), None,
         "the cluster has no server"),
    ],
)
def test_unusable_kubeconfigs_say_why(tmp_path: Path, config: dict[str, Any],
                                      context: str | None, complaint: str) -> None:
    with pytest.raises(EndpointError, match=complaint):
        from_kubeconfig(config, base_dir=tmp_path, context=context)


def test_load_kubeconfig_resolves_paths_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    path.write_text(
        "current-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8080', "
        "certificate-authority: ca.pem}}]\n"
        "users: [{name: u, user: {client-certificate: u.crt, client-key: u.key}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    endpoint = load_kubeconfig(path)
    assert endpoint.ca_file == path.parent / "ca.pem"
    assert (endpoint.client_cert_file, endpoint.client_key_file) == (
        path.parent / "u.crt", path.parent / "u.key")
    assert endpoint.bearer_token() is None
    assert not endpoint.is_tls()
    assert endpoint.websocket_url("/apis") == "ws://127.0.0.1:8080/apis"


def test_in_cluster_uses_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    endpoint = in_cluster(environ=env, sa_dir=tmp_path)
    assert endpoint.server == "https://10.96.0.1:443"
    assert endpoint.ca_file == tmp_path / "ca.crt"
    assert endpoint.bearer_token() == "sa-token"


def test_in_cluster_brackets_ipv6_and_needs_the_service_env(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(environ=env, sa_dir=tmp_path).server == "https://[fd00::1]:443"
    with pytest.raises(EndpointError, match="not running in a cluster"):
        in_cluster(environ={}, sa_dir=tmp_path)


def test_token_file_is_reread_when_the_kubelet_rotates_it(tmp_path: Path) -> None:
    """The kubelet writes a new file and swaps the `..data` symlink; the name stays."""
    for generation in ("gen1", "gen2"):
        (tmp_path / generation).mkdir()
        (tmp_path / generation / "token").write_text(f"token-{generation}")
    (tmp_path / "..data").symlink_to("gen1")
    (tmp_path / "token").symlink_to("..data/token")
    source = TokenFile(tmp_path / "token")
    assert source.token() == "token-gen1"
    (tmp_path / "..data_tmp").symlink_to("gen2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert source.token() == "token-gen2"


def test_token_file_rewritten_in_place_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    source = TokenFile(path)
    assert source.token() == "aaaa"
    path.write_text("bbbb")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert source.token() == "bbbb"


def test_tokens_from_values_and_callables() -> None:
    assert APIEndpoint(server="https://x", token=StaticToken("s")).bearer_token() == "s"
    assert APIEndpoint(server="https://x", token=lambda: "fn").bearer_token() == "fn"
    assert APIEndpoint(server="https://x", token=lambda: "").bearer_token() is None


def test_websocket_url_needs_http_or_https() -> None:
    with pytest.raises(EndpointError, match="unsupported protocol"):
        APIEndpoint(server="ftp://x").websocket_url("/")


def test_usbredir_path() -> None:
    assert usbredir_path(namespace="vms", vmi="win11") == (
        "/apis/subresources.kubevirt.io/v1/namespaces/vms/virtualmachineinstances/win11/usbredir")


def test_ssl_context_trusts_the_cluster_ca_and_loads_inline_client_certs(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    endpoint = APIEndpoint(
        server="https://127.0.0.1:6443",
        ca_data=tls.ca_cert.read_bytes(),
        client_cert_data=tls.client_cert.read_bytes(),
        client_key_data=tls.client_key.read_bytes(),
    )
    ctx = endpoint.ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test-cluster-ca"),),)]
    files = APIEndpoint(server="https://x", ca_file=tls.ca_cert, client_cert_file=tls.client_cert,
                        client_key_file=tls.client_key)
    assert len(files.ssl_context().get_ca_certs()) == 1
    insecure = APIEndpoint(server="https://x", insecure_skip_tls_verify=True).ssl_context()
    assert insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname


def test_client_key_without_certificate_or_a_bad_certificate_is_refused() -> None:
    endpoint = APIEndpoint(server="https://x", client_key_data=b"key")
    with pytest.raises(EndpointError, match="a client key needs a client certificate"):
        endpoint.ssl_context()
    broken = APIEndpoint(server="https://x", client_cert_data=b"not a pem")
    with pytest.raises(ssl.SSLError):
        broken.ssl_context()
