"""doctor's verdicts, from facts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from kubevirt_usb.agent import heartbeat
from kubevirt_usb.agent.cli import lease_annotations
from kubevirt_usb.kubectl_usb.doctor import (
    AGENT_LEASE_LABELS,
    AGENT_LEASE_PREFIX,
    CRD_NAMES,
    Check,
    Facts,
    Unknown,
    diagnose,
    doctor_table,
    failed,
    lease_alive,
)
from kubevirt_usb.models import USBREDIR_VERSION_ANNOTATION
from kubevirt_usb.redirect.libversion import usbredir_version
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.sandbox.scenario import VMSpec
from tests.kubectl_usb.cluster import field_notes_devices

NOW = dt.datetime(2025, 1, 10, 12, 0, 0, tzinfo=dt.UTC)


def lease(node: str, *, renewed: dt.datetime, version: str | None = None) -> dict[str, Any]:
    annotations = {USBREDIR_VERSION_ANNOTATION: version} if version else {}
    return {"metadata": {"name": f"kubevirt-usb-agent-{node}", "namespace": "kubevirt-usb",
                         "annotations": annotations},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": 40,
                     "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def vm(name: str, *, passthrough: bool) -> dict[str, Any]:
    return kubevirt.vm_object(VMSpec(name=name, client_passthrough=passthrough, node="node1"))


def healthy() -> Facts:
    return Facts(
        server="https://api:6443", namespace="default", now=NOW, server_version="v1.30.0",
        crds=list(CRD_NAMES), nodes=["node1"],
        leases=[lease("node1", renewed=NOW - dt.timedelta(seconds=5), version="0.13.0")],
        devices=field_notes_devices(), kubevirt_version="v1.6.0",
        agent_usbredir={"system:serviceaccount:kubevirt-usb:kubevirt-usb-agent": True},
        policies=[{"metadata": {"name": "allow-serial-aaa1"},
                   "spec": {"namespaces": ["default"], "devices": {"serial": "AAA1"}}}],
        vms=[vm("vm1", passthrough=True)])


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_healthy_installation() -> None:
    checks = diagnose(healthy())
    assert [c.name for c in checks] == ["api", "crds", "agent node1", "usbredir node1",
                                        "kubevirt", "usbredir rbac", "policies", "vms default"]
    assert {c.state for c in checks} == {"ok"}
    assert not failed(checks)
    found = by_name(checks)
    assert found["agent node1"].detail == "heartbeat 5s ago, 3 devices present"
    assert found["usbredir node1"].detail == "libusbredirhost 0.13.0"
    assert found["api"].detail == "https://api:6443 (Kubernetes v1.30.0)"


def test_missing_crds_fail_with_the_install_command() -> None:
    facts = dataclasses.replace(healthy(), crds=[CRD_NAMES[0]])
    check = by_name(diagnose(facts))["crds"]
    assert check.state == "fail"
    assert "usbattachments.usb.kubevirt-usb.io, usbpolicies.usb.kubevirt-usb.io" in check.detail
    assert "kubevirt-usb crds | kubectl apply -f -" in check.detail


def test_a_node_without_agent_and_a_stale_agent_fail() -> None:
    facts = dataclasses.replace(healthy(), nodes=["node1", "node2", "node3"], leases=[
        lease("node1", renewed=NOW - dt.timedelta(seconds=5)),
        lease("node2", renewed=NOW - dt.timedelta(minutes=5))])
    checks = by_name(diagnose(facts))
    assert checks["agent node2"].state == "fail"
    assert checks["agent node2"].detail.startswith("heartbeat stale (last renewed 5m ago)")
    assert checks["agent node3"].state == "fail"
    assert "no heartbeat Lease kubevirt-usb-agent-node3" in checks["agent node3"].detail
    assert checks["usbredir node1"].state == "unknown"
    assert USBREDIR_VERSION_ANNOTATION in checks["usbredir node1"].detail
    assert failed(list(checks.values()))


def test_unknown_facts_say_why() -> None:
    facts = dataclasses.replace(healthy(), leases=Unknown("forbidden: cannot list leases"),
                                crds=Unknown("forbidden"), policies=Unknown("forbidden"),
                                vms=Unknown("forbidden"), agent_usbredir=Unknown("forbidden"))
    checks = by_name(diagnose(facts))
    assert checks["agents"].state == "unknown"
    assert "forbidden: cannot list leases" in checks["agents"].detail
    assert {checks[n].state for n in ("crds", "policies", "vms default", "usbredir rbac")} == \
        {"unknown"}
    assert not failed(list(checks.values()))


def test_kubevirt_versions() -> None:
    old = by_name(diagnose(dataclasses.replace(healthy(), kubevirt_version="v1.3.1")))
    assert old["kubevirt"].state == "warn"
    assert "before v1.4.0" in old["kubevirt"].detail
    gone = by_name(diagnose(dataclasses.replace(healthy(),
                                                kubevirt_version=Unknown("404 Not Found"))))
    assert gone["kubevirt"].state == "fail"
    assert "is KubeVirt installed" in gone["kubevirt"].detail


def test_an_agent_without_usbredir_permission_fails() -> None:
    sa = "system:serviceaccount:kubevirt-usb:kubevirt-usb-agent"
    checks = by_name(diagnose(dataclasses.replace(healthy(), agent_usbredir={sa: False})))
    assert checks["usbredir rbac"].state == "fail"
    assert checks["usbredir rbac"].detail.startswith(f"{sa} may not get "
                                                     "virtualmachineinstances/usbredir")


def test_no_policy_and_unprepared_vms_warn_with_the_fix() -> None:
    facts = dataclasses.replace(healthy(), policies=[],
                                vms=[vm("vm1", passthrough=True), vm("vm2", passthrough=False)])
    checks = by_name(diagnose(facts))
    assert checks["policies"].state == "warn"
    assert "kubectl usb allow --namespace NS --serial S" in checks["policies"].detail
    assert checks["vms default"].state == "warn"
    assert checks["vms default"].detail == ("without clientPassthrough: vm2 (fix: kubectl usb "
                                            "prepare-vm -n default vm2)")
    assert not failed(list(checks.values()))


def test_the_table() -> None:
    table = doctor_table([Check("api", "ok", "https://api")]).render()
    assert table == "CHECK   STATE   DETAIL\napi     ok      https://api\n"


def test_doctor_reads_the_lease_the_agent_writes() -> None:
    assert heartbeat.lease_name("node1") == f"{AGENT_LEASE_PREFIX}node1"
    written = heartbeat.lease_manifest(name=heartbeat.lease_name("node1"),
                                       namespace="kubevirt-usb", holder="node1",
                                       now=NOW - dt.timedelta(seconds=30), duration_seconds=40)
    assert written["metadata"]["labels"] == AGENT_LEASE_LABELS
    for now in (NOW, NOW + dt.timedelta(seconds=10), NOW + dt.timedelta(seconds=11)):
        assert lease_alive(written, now=now) == heartbeat.lease_alive(written, now=now)
    assert lease_alive({"spec": {"renewTime": "x", "leaseDurationSeconds": 40}}, now=NOW) is False


def test_doctor_shows_the_usbredir_library_the_agent_found() -> None:
    found = usbredir_version()  # this machine's real libusbredirhost and its package
    assert found is not None
    written = heartbeat.lease_manifest(name=heartbeat.lease_name("node1"),
                                       namespace="kubevirt-usb", holder="node1", now=NOW,
                                       duration_seconds=40,
                                       annotations=lease_annotations(found))
    checks = by_name(diagnose(dataclasses.replace(healthy(), leases=[written])))
    assert checks["usbredir node1"].state == "ok"
    assert checks["usbredir node1"].detail == f"libusbredirhost {found.describe()}"


def test_a_node_without_the_usbredir_library_fails_the_check() -> None:
    written = heartbeat.lease_manifest(name=heartbeat.lease_name("node1"),
                                       namespace="kubevirt-usb", holder="node1", now=NOW,
                                       duration_seconds=40, annotations=lease_annotations(None))
    checks = by_name(diagnose(dataclasses.replace(healthy(), leases=[written])))
    assert checks["usbredir node1"].state == "fail"
    assert checks["usbredir node1"].detail.startswith(
        "not installed: libusbredirhost.so.1 cannot be loaded: the agent cannot stream")
    assert failed(list(checks.values()))
