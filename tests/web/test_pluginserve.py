"""`kubevirt-usb plugin-serve`: the console plugin's files over HTTPS with a service-CA-like
certificate, and one clear line when there is nothing to serve."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from kubevirt_usb.apiserver.tls import generate
from kubevirt_usb.cli import cli
from kubevirt_usb.web.pluginserve import MANIFEST, PluginDistError, check_dist, plugin_app
from kubevirt_usb.web.server import start

MANIFEST_TEXT = '{"name":"kubevirt-usb","loadScripts":["plugin-entry.abc.min.js"]}'


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    built = tmp_path / "dist"
    built.mkdir()
    (built / MANIFEST).write_text(MANIFEST_TEXT)
    (built / "plugin-entry.abc.min.js").write_text("window.loadPluginEntry();")
    return built


async def test_serves_the_manifest_and_bundles_over_https(dist: Path, tmp_path: Path) -> None:
    cert = generate(tmp_path / "pki", ips=("127.0.0.1",), names=("localhost",))
    running = await start(plugin_app(dist), tls_cert=cert.cert_path, tls_key=cert.key_path)
    try:
        trust = ssl.create_default_context(cafile=str(cert.ca_path))
        async with httpx.AsyncClient(verify=trust, base_url=running.url) as client:
            manifest = await client.get(f"/{MANIFEST}")
            bundle = await client.get("/plugin-entry.abc.min.js")
            missing = await client.get("/nothing.js")
            health = await client.get("/healthz")
    finally:
        await running.stop()
    assert running.url.startswith("https://127.0.0.1:")
    assert manifest.json()["name"] == "kubevirt-usb"
    assert manifest.headers["cache-control"] == "no-cache"
    assert manifest.headers["x-content-type-options"] == "nosniff"
    assert bundle.text == "window.loadPluginEntry();"
    assert "javascript" in bundle.headers["content-type"]
    assert "cache-control" not in bundle.headers
    assert missing.status_code == 404
    assert health.text == "ok"


def test_a_directory_without_a_built_plugin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginDistError, match=r"holds no plugin-manifest\.json: build the plugin"):
        check_dist(tmp_path)


def test_the_command_says_what_to_do_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin-serve", "--dist", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path} holds no plugin-manifest.json: build the plugin "
                             "first (cd console-plugin && npm run build) and pass its dist/ "
                             "directory\n")


def test_the_command_wants_certificate_and_key_together(dist: Path, tmp_path: Path) -> None:
    cert = generate(tmp_path / "pki")
    result = CliRunner().invoke(cli, ["plugin-serve", "--dist", str(dist),
                                      "--tls-cert", str(cert.cert_path)])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_the_command_refuses_a_bad_listen_address(dist: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin-serve", "--dist", str(dist), "--listen", "nope"])
    assert result.exit_code == 2
    assert "--listen" in result.output


async def test_nothing_outside_dist_is_served(dist: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for the console")
    running = await start(plugin_app(dist))
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            escaped = await client.get("/..%2Fsecret.txt")
    finally:
        await running.stop()
    assert escaped.status_code == 404
    assert "not for the console" not in escaped.text
