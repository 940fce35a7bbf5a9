"""Kubeconfig files and the token file format."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from kubevirt_usb.apiserver.kubeconfig import (
    TokenFileError,
    kubeconfig,
    parse_token_file,
    write_kubeconfig,
)


def test_kubeconfig_names_server_ca_token_and_namespace() -> None:
    config = kubeconfig(server="https://127.0.0.1:6443", ca_pem=b"PEM", token="t", user="u",
                        namespace="work")
    assert config["current-context"] == "u@kubevirt-usb-sandbox"
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"PEM"
    assert config["users"] == [{"name": "u", "user": {"token": "t"}}]
    assert config["contexts"][0]["context"]["namespace"] == "work"


def test_write_kubeconfig_is_private(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "kubeconfig"
    write_kubeconfig(path, {"kind": "Config"})
    assert yaml.safe_load(path.read_text()) == {"kind": "Config"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert not path.with_suffix(".tmp").exists()


def test_token_file() -> None:
    tokens = parse_token_file('# comment\nt1,alice,1\n\nt2,bob,2,"dev,ops"\n')
    assert tokens["t1"].name == "alice"
    assert tokens["t1"].groups == ("system:authenticated",)
    assert tokens["t2"].uid == "2"
    assert tokens["t2"].groups == ("dev", "ops", "system:authenticated")


@pytest.mark.parametrize(("text", "error"), [
    ("t1,alice\n", "tokens:1: expected token,user,uid[,groups], got 2 field(s)"),
    (",alice,1\n", "tokens:1: token and user must not be empty"),
])
def test_bad_token_files(text: str, error: str) -> None:
    with pytest.raises(TokenFileError) as bad:
        parse_token_file(text, source="tokens")
    assert str(bad.value) == error
