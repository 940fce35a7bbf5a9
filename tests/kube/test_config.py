"""Finding the API: a kubeconfig (with a context), the pod's service account, or $KUBECONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubevirt_usb.kube.config import ConfigError, in_cluster_config, load_config


def _kubeconfig(path: Path) -> Path:
    def context(name: str, server: str) -> tuple[dict[str, object], ...]:
        return ({"name": name, "cluster": {"server": server, "insecure-skip-tls-verify": True}},
                {"name": name, "user": {"token": f"token-{name}"}},
                {"name": name, "context": {"cluster": name, "user": name, "namespace": name}})

    one, two = context("one", "https://one:6443"), context("two", "https://two:6443")
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "one",
        "clusters": [one[0], two[0]], "users": [one[1], two[1]], "contexts": [one[2], two[2]]}))
    return path


def _service_account(directory: Path) -> Path:
    directory.mkdir()
    (directory / "token").write_text("sa-token\n")
    (directory / "namespace").write_text("kubevirt-usb")
    (directory / "ca.crt").write_text("not read until a connection is made")
    return directory


def test_a_kubeconfig_uses_its_current_context_or_the_one_named(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config")
    assert load_config(kubeconfig=path, environ={}).cluster.server == "https://one:6443"
    chosen = load_config(kubeconfig=path, context="two", environ={})
    assert (chosen.cluster.server, chosen.namespace) == ("https://two:6443", "two")


def test_an_unknown_context_or_a_missing_file_says_what_is_wrong(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config")
    with pytest.raises(ConfigError, match="Context 'three' not found"):
        load_config(kubeconfig=path, context="three", environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(kubeconfig=tmp_path / "missing", environ={})


def test_in_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    account = _service_account(tmp_path / "sa")
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = load_config(service_account=account, environ=environ)
    assert config.cluster.server == "https://10.0.0.1:443"
    assert config.namespace == "kubevirt-usb"
    assert config.user is not None
    assert config.user.token_file == str(account / "token")


def test_ipv6_service_hosts_are_bracketed(tmp_path: Path) -> None:
    account = _service_account(tmp_path / "sa")
    config = in_cluster_config(service_account=account, environ={
        "KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"})
    assert config is not None
    assert config.cluster.server == "https://[fd00::1]:443"


def test_outside_a_pod_kubeconfig_from_the_environment_is_used(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config")
    config = load_config(service_account=tmp_path / "no-sa", environ={"KUBECONFIG": str(path)})
    assert config.cluster.server == "https://one:6443"
    with pytest.raises(ConfigError):
        load_config(service_account=tmp_path / "no-sa",
                    environ={"KUBECONFIG": str(tmp_path / "absent")})
