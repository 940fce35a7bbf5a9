"""A real kube-apiserver as the sandbox's control plane: what it writes, how it marks and removes
it, and which credentials it takes (the decisions; the whole story runs in tests/e2e against a
real server when KUBEVIRT_USB_TEST_KUBECONFIG names one)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
import yaml

from kubevirt_usb.sandbox.controlplane import ControlPlaneError, Resource
from kubevirt_usb.sandbox.realplane import (
    Created,
    is_ours,
    labelled,
    leftover_event_namespaces,
    node_lease,
    read_credentials,
    resource_of,
    teardown_order,
)


def test_each_kind_the_sandbox_writes_has_its_rest_path() -> None:
    crd = resource_of({"kind": "CustomResourceDefinition"})
    assert crd.path(name="x.example") == \
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.example"
    vmi = resource_of({"kind": "VirtualMachineInstance"})
    assert vmi.path(namespace="default", name="vm1", subresource="status") == \
        "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/vm1/status"
    assert resource_of({"kind": "Node"}).path(name="node1") == "/api/v1/nodes/node1"


def test_an_unknown_kind_is_said_so() -> None:
    with pytest.raises(ControlPlaneError, match="does not write Gizmo objects"):
        resource_of({"kind": "Gizmo"})


def test_what_the_sandbox_writes_is_marked_as_its_own() -> None:
    obj = labelled({"kind": "Node", "metadata": {"name": "n", "labels": {"a": "b"}}})
    assert obj["metadata"]["labels"] == {"a": "b",
                                         "app.kubernetes.io/managed-by": "kubevirt-usb-sandbox"}
    assert is_ours(obj)
    assert not is_ours({"kind": "Node", "metadata": {"name": "n"}})


def _created(kind: str, name: str) -> Created:
    return Created(resource=Resource(group="", version="v1", plural=kind.lower() + "s"),
                   namespace="", name=name, kind=kind)


def test_teardown_removes_the_apiservice_first_and_namespaces_last_each_once() -> None:
    order = teardown_order([_created("Namespace", "ns"), _created("CustomResourceDefinition", "c"),
                            _created("Node", "node1"), _created("Node", "node1"),
                            _created("APIService", "v1.x"), _created("Lease", "node1")])
    assert [(c.kind, c.name) for c in order] == [
        ("APIService", "v1.x"), ("Lease", "node1"), ("Node", "node1"),
        ("CustomResourceDefinition", "c"), ("Namespace", "ns")]


def test_a_node_lease_is_a_kubelet_heartbeat() -> None:
    lease = node_lease("node1", now=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert lease["metadata"] == {"name": "node1", "namespace": "kube-node-lease"}
    assert lease["spec"]["holderIdentity"] == "node1"
    assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.000000Z"


def _kubeconfig(path: Path, *, cluster: dict[str, str], user: dict[str, str]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    return path


def test_credentials_come_from_the_current_context_with_relative_files(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    path = _kubeconfig(tmp_path / "kc", cluster={"server": "https://127.0.0.1:6443/",
                                                  "certificate-authority": "ca.crt"},
                       user={"token": "t"})
    creds = read_credentials(path)
    assert (creds.server, creds.ca_pem, creds.token) == ("https://127.0.0.1:6443", b"CA", "t")


def test_client_certificate_credentials_are_taken_too(tmp_path: Path) -> None:
    data = base64.b64encode(b"PEM").decode()
    path = _kubeconfig(tmp_path / "kc", cluster={"server": "https://k:6443"},
                       user={"client-certificate-data": data, "client-key-data": data})
    creds = read_credentials(path)
    assert (creds.token, creds.client_cert_pem, creds.client_key_pem) == (None, b"PEM", b"PEM")


def test_a_user_without_credentials_is_one_clear_line(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "kc", cluster={"server": "https://k:6443"}, user={})
    with pytest.raises(ControlPlaneError, match="neither a token nor a client certificate"):
        read_credentials(path)


def test_a_file_that_is_not_a_kubeconfig_is_said_so(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text("just: text\n")
    with pytest.raises(ControlPlaneError, match="not a kubeconfig with a current context"):
        read_credentials(path)


def test_events_are_cleaned_where_namespaces_are_not_deleted() -> None:
    vm = Created(resource=Resource(group="kubevirt.io", version="v1", plural="virtualmachines"),
                 namespace="default", name="vm1", kind="VirtualMachine")
    sa = Created(resource=Resource(group="", version="v1", plural="serviceaccounts"),
                 namespace="kubevirt-usb", name="agent", kind="ServiceAccount")
    team = Created(resource=Resource(group="kubevirt.io", version="v1", plural="virtualmachines"),
                   namespace="team-a", name="vm3", kind="VirtualMachine")
    assert leftover_event_namespaces([_created("Namespace", "kubevirt-usb"), sa, vm, team]) == \
        ["default", "team-a"]
