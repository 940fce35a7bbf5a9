"""Kubeconfig files for the API emulator's users, and the kube-apiserver token file format."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

import yaml

from kubevirt_usb.apiserver.auth import UserInfo


def kubeconfig(*, server: str, ca_pem: bytes, token: str, user: str = "admin",
               cluster: str = "kubevirt-usb-sandbox", namespace: str = "default") -> dict[str, Any]:
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user,
                                                   "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


class TokenFileError(ValueError):
    pass


def parse_token_file(text: str, *, source: str = "token file") -> dict[str, UserInfo]:
    """`token,user,uid[,"group1,group2"]` lines, as kube-apiserver's --token-auth-file reads."""
    tokens: dict[str, UserInfo] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].strip().startswith("#"):
            continue
        if len(row) < 3:
            raise TokenFileError(f"{source}:{number}: expected token,user,uid[,groups], "
                                 f"got {len(row)} field(s)")
        token, name, uid = (c.strip() for c in row[:3])
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        if not token or not name:
            raise TokenFileError(f"{source}:{number}: token and user must not be empty")
        tokens[token] = UserInfo(name=name, uid=uid, groups=(*groups, "system:authenticated"))
    return tokens
