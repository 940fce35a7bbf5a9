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
    with pytest.raises(ConfigError, match=r"has no context 'three' \(contexts: one, two\)"):
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


def _broken(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "problem"), [
    ("a: [b\n", r"is not valid YAML \(line 2, column 1\): expected ',' or '\]'"),
    ("", "is not a kubeconfig: expected a YAML mapping with clusters, contexts and users"),
    ("- one\n- two\n", "is not a kubeconfig: expected a YAML mapping"),
    ("just words\n", "is not a kubeconfig: expected a YAML mapping"),
    ("contexts: []\n", "is not a kubeconfig: no list of clusters"),
    ("clusters: [x]\ncontexts: []\n", "every entry of clusters needs a name and a cluster"),
    ("clusters: []\ncontexts: []\nusers: {}\n", "no list of users"),
])
def test_a_file_that_is_not_a_kubeconfig_says_so_in_one_line(tmp_path: Path, text: str,
                                                              problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        load_config(kubeconfig=_broken(tmp_path / "config", text), environ={})
    assert "\n" not in str(raised.value)


def test_a_binary_file_or_a_directory_is_not_a_kubeconfig(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ConfigError, match="is not a text file"):
        load_config(kubeconfig=binary, environ={})
    with pytest.raises(ConfigError, match="is a directory: name the kubeconfig file in it"):
        load_config(environ={"KUBECONFIG": str(tmp_path)}, service_account=tmp_path / "no-sa")


def test_contexts_that_name_what_is_not_there(tmp_path: Path) -> None:
    config = yaml.safe_load(_kubeconfig(tmp_path / "config").read_text())
    del config["current-context"]
    config["contexts"].append({"name": "lost", "context": {"cluster": "gone", "user": "one"}})
    config["contexts"].append({"name": "anon", "context": {"cluster": "one", "user": "nobody"}})
    path = _broken(tmp_path / "config", yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="has no current-context: name one with --context "
                                          r"\(contexts: anon, lost, one, two\)"):
        load_config(kubeconfig=path, environ={})
    with pytest.raises(ConfigError, match="context 'lost' names cluster 'gone', which is not in "
                                          "the file"):
        load_config(kubeconfig=path, context="lost", environ={})
    with pytest.raises(ConfigError, match="context 'anon' names user 'nobody', which is not in "
                                          "the file"):
        load_config(kubeconfig=path, context="anon", environ={})


def test_several_files_in_kubeconfig_are_refused_not_mistaken_for_one(tmp_path: Path) -> None:
    one, two = _kubeconfig(tmp_path / "one"), _kubeconfig(tmp_path / "two")
    with pytest.raises(ConfigError, match=r"names several files .* set it to one file, or pass "
                                          "--kubeconfig"):
        load_config(service_account=tmp_path / "no-sa", environ={"KUBECONFIG": f"{one}:{two}"})
    chosen = load_config(kubeconfig=one, environ={"KUBECONFIG": f"{one}:{two}"})
    assert chosen.cluster.server == "https://one:6443"
    trailing = load_config(service_account=tmp_path / "no-sa", environ={"KUBECONFIG": f"{one}:"})
    assert trailing.cluster.server == "https://one:6443"
