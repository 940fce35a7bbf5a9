"""`kubectl usb list`: the devices of every node, who uses them, filters, script output."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster, one_line_error


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_both_identical_sticks_are_listed_distinctly(cluster: Cluster) -> None:
    result = cluster.kubectl("usb", "list")
    assert result.code == 0, result.err
    table = rows(result.out)
    assert table[0] == ["NAME", "NODE", "ID", "PRODUCT", "SERIAL", "PORT", "IDENTITY", "STATE",
                        "USED-BY"]
    assert table[1] == ["46f4-0001-aaa1", "node1", "46f4:0001", "QEMU", "USB", "HARDDRIVE",
                        "AAA1", "2-1", "serial", "Available", "-"]
    assert table[2] == ["46f4-0001-aaa2", "node1", "46f4:0001", "QEMU", "USB", "HARDDRIVE",
                        "AAA2", "2-2", "serial", "Available", "-"]
    assert table[3][0] == "0403-6001-ft0001"


def test_who_uses_a_device(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    cluster.bind("46f4-0001-aaa1", attachment="vm1-46f4-0001-aaa1", vm="vm1")
    table = rows(cluster.run("list", "--no-headers").out)
    assert table[0][-2:] == ["InUse", "default/vm1"]
    assert table[1][-2:] == ["Available", "-"]
    wide = cluster.run("list", "-o", "wide").out.splitlines()
    assert "ATTACHMENT" in wide[0]
    assert "default/vm1-46f4-0001-aaa1" in wide[1]


def test_filters(cluster: Cluster) -> None:
    def names(*args: str) -> list[str]:
        result = cluster.run("list", "-o", "name", *args)
        assert result.code == 0, result.err
        return [line.split("/")[1] for line in result.out.splitlines()]

    assert names("--serial", "AAA2") == ["46f4-0001-aaa2"]
    assert names("--id", "46f4:0001") == ["46f4-0001-aaa1", "46f4-0001-aaa2"]
    assert names("--vendor", "0403") == ["0403-6001-ft0001"]
    assert names("--port", "2-1", "--node", "node1") == ["46f4-0001-aaa1"]
    assert names("--product-name", "FT232 Serial (UART) IC") == ["0403-6001-ft0001"]
    assert names("46f4-0001-aaa1") == ["46f4-0001-aaa1"]
    cluster.claim("46f4-0001-aaa1", attachment="a", vm="vm1")
    assert names("--available") == ["46f4-0001-aaa2", "0403-6001-ft0001"]
    assert names("--in-use") == ["46f4-0001-aaa1"]
    assert names("--used-by", "default/vm1") == ["46f4-0001-aaa1"]
    assert names("--used-by", "vm2") == []


def test_used_by_takes_a_vm_name(cluster: Cluster) -> None:
    for value, error in (("", "'' is not a valid VM name"),
                         ("a/b/c", "'a/b' is not a valid namespace")):
        result = cluster.run("list", "--used-by", value)
        assert result.code == ExitCode.USAGE
        assert f"Invalid value for '--used-by': {error}" in one_line_error(result)


def test_nothing_matching_is_said_on_stderr(cluster: Cluster) -> None:
    result = cluster.run("list", "--node", "node2")
    assert (result.code, result.out, result.err) == (0, "", "No USB devices match.\n")


def test_an_empty_cluster(empty_cluster: Cluster) -> None:
    result = empty_cluster.run("list")
    assert (result.code, result.out, result.err) == (0, "", "No USB devices found.\n")
    as_json = json.loads(empty_cluster.run("list", "-o", "json").out)
    assert as_json["items"] == []


def test_scripts_parse_json_and_yaml(cluster: Cluster) -> None:
    as_json = json.loads(cluster.run("list", "-o", "json").out)
    assert [d["status"]["serial"] for d in as_json["items"]] == ["AAA1", "AAA2", "FT0001"]
    as_yaml = yaml.safe_load(cluster.run("list", "-o", "yaml").out)
    assert [d["metadata"]["name"] for d in as_yaml["items"]] == [
        d["metadata"]["name"] for d in as_json["items"]]


def test_not_installed(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, installed=False)
    try:
        result = cluster.run("list")
    finally:
        cluster.stop()
    assert result.code == ExitCode.NOT_FOUND
    assert one_line_error(result) == (
        "error: kubevirt-usb is not installed in this cluster (no "
        "usbdevices.usb.kubevirt-usb.io); install it: kubevirt-usb crds | kubectl apply -f -")


def test_a_user_who_may_not_list_devices(cluster: Cluster) -> None:
    env = cluster.env(KUBECONFIG=str(cluster.add_user("bob")))
    result = cluster.run("list", env=env)
    assert result.code == ExitCode.FORBIDDEN
    assert one_line_error(result) == (
        'error: usbdevices.usb.kubevirt-usb.io is forbidden: User "bob" cannot list resource '
        '"usbdevices" in API group "usb.kubevirt-usb.io" at the cluster scope; ask a cluster '
        "admin for that permission")
