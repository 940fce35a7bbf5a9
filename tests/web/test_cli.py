"""`kubevirt-usb web`: options, where the API server is, and serving until stopped."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml
from click.testing import CliRunner

from kubevirt_usb.cli import cli
from kubevirt_usb.web.cli import api_from_kubeconfig, parse_listen
from tests.web.support import Cluster


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", ":8080", "host:http", "host:70000"):
        with pytest.raises(click.BadParameter):
            parse_listen(bad)


def test_the_api_server_and_ca_come_from_a_kubeconfig_never_its_token(tmp_path: Path) -> None:
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "k", "cluster": {
                  "server": "https://api.example:6443",
                  "certificate-authority-data": base64.b64encode(b"PEM").decode()}}],
              "users": [{"name": "u", "user": {"token": "admin-secret"}}],
              "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    assert api_from_kubeconfig(path, None) == ("https://api.example:6443", "PEM", None, False)
    config["clusters"][0]["cluster"] = {"server": "https://x", "certificate-authority": "ca.crt"}
    path.write_text(yaml.safe_dump(config))
    assert api_from_kubeconfig(path, None) == ("https://x", None, tmp_path / "ca.crt", False)
    with pytest.raises(click.ClickException, match="kubeconfig"):
        api_from_kubeconfig(tmp_path / "missing", None)


def test_an_unusable_api_server_or_ca_is_one_line_before_anything_starts(
        tmp_path: Path) -> None:
    runner = CliRunner()
    for url in ("not a url", "ftp://api.example", "https://api.example:port", "https://"):
        answer = runner.invoke(cli, ["web", "--api-server", url])
        assert answer.exit_code == 2, url
        assert "Invalid value for '--api-server'" in answer.output
    (tmp_path / "words.crt").write_text("not a certificate\n")
    answer = runner.invoke(cli, ["web", "--api-server", "https://x", "--ca-file",
                                 str(tmp_path / "words.crt")])
    assert answer.exit_code == 1
    assert answer.output.startswith(f"Error: the API server's CA file {tmp_path}/words.crt is not "
                                    "a PEM certificate bundle (")
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "k", "cluster": {"server": "https://x",
                                                     "certificate-authority": "gone.crt"}}],
              "contexts": [{"name": "c", "context": {"cluster": "k"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    answer = runner.invoke(cli, ["web", "--kubeconfig", str(path)])
    assert answer.exit_code == 1
    assert answer.output == f"Error: the API server's CA file {tmp_path}/gone.crt does not exist\n"
    config["clusters"][0]["cluster"] = {"server": "https://x",
                                        "certificate-authority-data": "!!!notbase64"}
    path.write_text(yaml.safe_dump(config))
    answer = runner.invoke(cli, ["web", "--kubeconfig", str(path)])
    assert answer.exit_code == 1
    assert answer.output.startswith(f"Error: kubeconfig {path}: its certificate-authority-data is "
                                    "not a base64-encoded PEM certificate (")
    path.write_text("clusters: [\n")
    answer = runner.invoke(cli, ["web", "--kubeconfig", str(path)])
    assert answer.exit_code == 1
    assert answer.output.startswith(f"Error: kubeconfig {path} is not valid YAML (line 2")
    assert answer.exception is None or isinstance(answer.exception, SystemExit)


def test_bad_options_are_refused_before_anything_starts(tmp_path: Path) -> None:
    runner = CliRunner()
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    answer = runner.invoke(cli, ["web", "--api-server", "https://x", "--tls-cert", str(cert)])
    assert answer.exit_code == 2
    assert "--tls-cert and --tls-key go together" in answer.output
    answer = runner.invoke(cli, ["web", "--listen", "nowhere"])
    assert answer.exit_code == 2
    assert "expected HOST:PORT" in answer.output


def test_serves_until_sigterm(cluster: Cluster, tmp_path: Path) -> None:
    kubeconfig = cluster.server.write_kubeconfig(tmp_path / "kubeconfig")
    process = subprocess.Popen(
        [sys.executable, "-m", "kubevirt_usb", "web", "--kubeconfig", str(kubeconfig),
         "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("kubevirt-usb web UI on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert f"API server {cluster.url}" in line
        assert httpx.get(f"{url}/healthz").text == "ok"
        assert httpx.get(f"{url}/devices").headers["location"] == "/login"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        assert cluster.server.admin_token not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
