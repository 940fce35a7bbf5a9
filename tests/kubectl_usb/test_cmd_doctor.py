"""`kubectl usb doctor` against the emulated cluster: what is missing, then all well."""

from __future__ import annotations

import datetime as dt
import json

from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster

AGENT = "system:serviceaccount:kubevirt-usb:kubevirt-usb-agent"


def states(output: str) -> dict[str, str]:
    return {c["check"]: c["state"] for c in json.loads(output)["checks"]}


def install_agent(cluster: Cluster, *, version: str | None) -> None:
    cluster.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": "kubevirt-usb"}})
    renewed = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for node in ("node1", "node2"):
        annotations = {"usb.kubevirt-usb.io/usbredir-version": version} if version else {}
        cluster.create("/apis/coordination.k8s.io/v1/namespaces/kubevirt-usb/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": f"kubevirt-usb-agent-{node}", "namespace": "kubevirt-usb",
                         "labels": {"app.kubernetes.io/managed-by": "kubevirt-usb-agent"},
                         "annotations": annotations},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": 3600,
                     "renewTime": renewed}})
    cluster.grant(AGENT, [{"apiGroups": ["subresources.kubevirt.io"],
                           "resources": ["virtualmachineinstances/usbredir"],
                           "verbs": ["get"]}])


def test_a_cluster_without_agents_has_problems(cluster: Cluster) -> None:
    result = cluster.kubectl("usb", "doctor")
    assert result.code == ExitCode.PROBLEMS
    lines = result.out.splitlines()
    assert lines[0].split() == ["CHECK", "STATE", "DETAIL"]
    rows = {line[:16].strip(): line[16:].split(None, 1) for line in lines[1:]}
    assert rows["crds"][0] == "ok"
    assert rows["agent node1"] == ["fail", "no heartbeat Lease kubevirt-usb-agent-node1: the "
                                   "agent does not run on this node (check the DaemonSet and "
                                   "its node selector)"]
    assert rows["kubevirt"] == ["ok", "v1.6.0 (usbredir subresource served)"]
    assert rows["usbredir rbac"][0] == "fail"
    assert rows["policies"][0] == "warn"
    assert rows["vms default"] == ["warn", "without clientPassthrough: vm2 (fix: kubectl usb "
                                   "prepare-vm -n default vm2)"]


def test_a_healthy_cluster(cluster: Cluster) -> None:
    install_agent(cluster, version="0.13.0")
    assert cluster.run("allow", "--namespace", "default", "--serial", "AAA1").code == 0
    assert cluster.run("prepare-vm", "vm2", "--restart").code == 0
    result = cluster.run("doctor", "-o", "json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    assert report["ok"] is True
    assert states(result.out) == {
        "api": "ok", "crds": "ok", "agent node1": "ok", "agent node2": "ok",
        "usbredir node1": "ok", "usbredir node2": "ok", "kubevirt": "ok",
        "usbredir rbac": "ok", "policies": "ok", "vms default": "ok"}
    details = {c["check"]: c["detail"] for c in report["checks"]}
    assert details["usbredir node1"] == "libusbredirhost 0.13.0"
    assert details["agent node1"].endswith("3 devices present")


def test_an_agent_that_does_not_say_its_usbredir_version(cluster: Cluster) -> None:
    install_agent(cluster, version=None)
    result = cluster.run("doctor", "-o", "yaml")
    assert "state: unknown" in result.out
    assert "usb.kubevirt-usb.io/usbredir-version" in result.out
