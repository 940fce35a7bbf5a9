"""Running the emulator: start, serve HTTPS, stop; options and clear start errors."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.server import (
    APIServer,
    BackgroundAPIServer,
    ServerOptions,
    ServerStartError,
    bind_socket,
    load_manifests,
    parse_listen,
)

ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "from-manifest"}, "rules": []}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundAPIServer]:
    background = BackgroundAPIServer(ServerOptions(
        state_dir=tmp_path_factory.mktemp("apiserver"), manifests=[ROLE],
        tokens={"static": UserInfo(name="static", groups=("system:authenticated",))}))
    background.start()
    yield background
    background.stop()


def _client(server: APIServer, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=server.ssl_context(),
                        headers={"Authorization": f"Bearer {token or server.admin_token}"})


def test_serves_https_with_its_own_ca(running: BackgroundAPIServer) -> None:
    assert running.server is not None
    with _client(running.server) as http:
        assert http.get("/version").json()["major"] == "1"
        assert http.get("/api/v1/namespaces/default").status_code == 200
    with pytest.raises(httpx.ConnectError), \
            httpx.Client(base_url=running.server.url, verify=ssl.create_default_context()) as bad:
        bad.get("/version")


def test_manifests_and_static_tokens(running: BackgroundAPIServer) -> None:
    assert running.server is not None
    with _client(running.server) as http:
        assert http.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/from-manifest"
                        ).status_code == 200
    with _client(running.server, "static") as http:
        review = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={})
    assert review.json()["status"]["userInfo"]["username"] == "static"


def test_history_starts_compacted(running: BackgroundAPIServer) -> None:
    assert running.server is not None
    with _client(running.server) as http:
        first = http.get("/api/v1/namespaces", params={"watch": "1", "resourceVersion": "1"})
    assert '"reason":"Expired"' in first.text


def test_kubeconfig_users_and_create_object(running: BackgroundAPIServer,
                                            tmp_path: Path) -> None:
    server = running.server
    assert server is not None
    token = server.add_user(UserInfo(name="bob", groups=("system:authenticated",)))
    path = server.write_kubeconfig(tmp_path / "kc", token=token, user="bob")
    config = yaml.safe_load(path.read_text())
    assert config["users"][0] == {"name": "bob", "user": {"token": token}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
                                                                "namespace": "default"},
          "data": {"v": "1"}}
    running.call(lambda: server.create_object(cm))
    replaced = running.call(lambda: server.create_object({**cm, "data": {"v": "2"}}))
    assert replaced["data"] == {"v": "2"}
    with pytest.raises(ServerStartError) as unknown:
        running.call(lambda: server.create_object({"apiVersion": "x/v1", "kind": "Nope"}))
    assert str(unknown.value) == "unknown kind x/v1/Nope: register its CRD first"


def test_a_port_in_use_is_a_clear_error(running: BackgroundAPIServer, tmp_path: Path) -> None:
    assert running.server is not None
    with pytest.raises(ServerStartError) as busy:
        APIServer(ServerOptions(state_dir=tmp_path, port=running.server.port))
    assert str(busy.value) == (f"127.0.0.1:{running.server.port} is already in use: stop what "
                               "listens there or choose another port with --listen")


def test_bind_errors_other_than_in_use() -> None:
    with pytest.raises(ServerStartError) as bad:
        bind_socket("192.0.2.1", 0)
    assert str(bad.value).startswith("cannot listen on 192.0.2.1:0: ")


def test_stop_ends_open_watches(tmp_path: Path) -> None:
    background = BackgroundAPIServer(ServerOptions(state_dir=tmp_path))
    server = background.start()
    with _client(server) as http, http.stream(
            "GET", "/api/v1/namespaces", params={"watch": "1"}) as stream:
        lines = stream.iter_lines()
        assert '"ADDED"' in next(lines)
        background.stop()
        rest = list(lines)
    assert all('"ADDED"' in line for line in rest if line)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:6443", ("127.0.0.1", 6443)),
    ("[::1]:0", ("::1", 0)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["6443", "host:", ":80", "host:port"])
def test_parse_listen_errors(text: str) -> None:
    with pytest.raises(ServerStartError) as bad:
        parse_listen(text)
    assert "expected HOST:PORT" in str(bad.value)


def test_load_manifests(tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all([ROLE, {"apiVersion": "v1", "kind": "List",
                                               "items": [ROLE, ROLE]}, None]))
    assert len(load_manifests(path)) == 3
    path.write_text("- just a list\n")
    with pytest.raises(ServerStartError) as bad:
        load_manifests(path)
    assert "every document must be a Kubernetes object" in str(bad.value)
    with pytest.raises(ServerStartError) as missing:
        load_manifests(tmp_path / "absent.yaml")
    assert str(missing.value).startswith(f"cannot read {tmp_path / 'absent.yaml'}")
    path.write_text("a: [b\n")
    with pytest.raises(ServerStartError, match=r"cannot read .*: while parsing a flow sequence "
                                               "in .* line 1, column 4: .*expected ','") as yml:
        load_manifests(path)
    assert "\n" not in str(yml.value)
    path.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ServerStartError, match="it is not a text file"):
        load_manifests(path)
