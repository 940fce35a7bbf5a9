"""`kubectl usb allow`: create or extend a USBPolicy, in the exact form the controller's
NotAllowed message prints."""

from __future__ import annotations

import json

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster, one_line_error


def test_the_controllers_form_creates_then_extends(cluster: Cluster) -> None:
    created = cluster.kubectl("usb", "allow", "--namespace", "default", "--serial", "AAA1")
    assert created.code == 0, created.err
    assert created.out == ("usbpolicy/allow-serial-aaa1 created: namespace default may attach "
                           "devices matching serial AAA1\n")
    extended = cluster.run("allow", "--namespace", "lab", "--serial", "AAA1")
    assert extended.out == ("usbpolicy/allow-serial-aaa1 extended: namespaces default, lab may "
                            "attach devices matching serial AAA1\n")
    again = cluster.run("allow", "-n", "lab", "--serial", "AAA1")
    assert again.code == 0
    assert "unchanged" in again.out
    policies = cluster.policies()
    assert [(p["metadata"]["name"], p["spec"]) for p in policies] == [
        ("allow-serial-aaa1", {"namespaces": ["default", "lab"], "devices": {"serial": "AAA1"}})]


def test_several_namespaces_and_selectors(cluster: Cluster) -> None:
    result = cluster.run("allow", "-n", "lab", "-n", "default", "--id", "0403:6001",
                         "--node", "node1", "-o", "json")
    assert result.code == 0, result.err
    policy = json.loads(result.out)
    assert policy["metadata"]["name"] == "allow-0403-6001-node-node1"
    assert policy["spec"] == {"namespaces": ["lab", "default"],
                              "devices": {"vendorId": "0403", "productId": "6001",
                                          "node": "node1"}}
    assert result.err.startswith("usbpolicy/allow-0403-6001-node-node1 created")


def test_every_device_must_be_said(cluster: Cluster) -> None:
    bare = cluster.run("allow", "--namespace", "lab")
    assert bare.code == ExitCode.USAGE
    assert one_line_error(bare).startswith("error: say which devices:")
    every = cluster.run("allow", "--namespace", "lab", "--all-devices")
    assert every.out == ("usbpolicy/allow-all-devices created: namespace lab may attach every "
                         "device\n")


def test_the_namespace_must_be_said(cluster: Cluster) -> None:
    result = cluster.run("allow", "--serial", "AAA1")
    assert result.code == ExitCode.USAGE
    assert one_line_error(result).startswith("error: say which namespace may use the devices")


def test_a_namespace_that_cannot_exist_is_a_usage_error(cluster: Cluster) -> None:
    for bad in ("Bad NS", ""):
        result = cluster.run("allow", "-n", "lab", "--namespace", bad, "--serial", "AAA1")
        assert result.code == ExitCode.USAGE
        assert one_line_error(result) == (
            f"error: Invalid value for '-n' / '--namespace': '{bad}' is not a valid namespace: "
            "lowercase letters, digits and '-', at most 63 characters (see: kubectl usb allow "
            "--help)")
    assert cluster.policies() == []


def test_a_namespace_that_does_not_exist_is_a_warning(cluster: Cluster) -> None:
    result = cluster.run("allow", "--namespace", "later", "--serial", "AAA1")
    assert result.code == 0
    assert result.err == "warning: namespace later does not exist (yet)\n"


def test_only_admins_may_allow(cluster: Cluster) -> None:
    env = cluster.env(KUBECONFIG=str(cluster.add_user("dev")))
    cluster.grant("dev", [{"apiGroups": ["usb.kubevirt-usb.io"], "resources": ["usbpolicies"],
                           "verbs": ["get", "list"]}])
    result = cluster.run("allow", "--namespace", "default", "--serial", "AAA1", env=env)
    assert result.code == ExitCode.FORBIDDEN
    assert one_line_error(result) == (
        'error: usbpolicies.usb.kubevirt-usb.io is forbidden: User "dev" cannot create '
        'resource "usbpolicies" in API group "usb.kubevirt-usb.io" at the cluster scope; ask a '
        "cluster admin for that permission")
