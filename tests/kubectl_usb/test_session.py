"""The CLI's API boundary against the emulator: reads, misses, reviews and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubevirt_usb.kube.errors import (
    CERTIFICATE_NOT_TRUSTED,
    AlreadyExists,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
)
from kubevirt_usb.kube.resources import USBAttachment, VirtualMachine
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.session import ALL_NAMESPACES, Session, Settings, from_kube_error
from tests.kubectl_usb.cluster import Cluster

SERVER = "https://api.example:6443"


def open_session(cluster: Cluster, *, namespace: str | None = None,
                 all_namespaces: bool = False) -> Session:
    return Session.open(Settings(kubeconfig=cluster.kubeconfig, namespace=namespace,
                                 all_namespaces=all_namespaces), environ={})


async def test_reads_devices_vms_and_missing_objects(cluster: Cluster) -> None:
    session = open_session(cluster)
    try:
        assert session.namespace == "default"
        assert session.server == cluster.server.url
        names = sorted(d["metadata"]["name"] for d in await session.devices())
        assert names == ["0403-6001-ft0001", "46f4-0001-aaa1", "46f4-0001-aaa2"]
        assert (await session.vm("vm1", namespace="default") or {})["metadata"]["name"] == "vm1"
        assert await session.vm("nope", namespace="default") is None
        assert await session.vmi("vm2", namespace="default") is not None
        assert await session.attachments(namespace=ALL_NAMESPACES) == []
        assert await session.namespace_exists("lab") is True
        assert await session.namespace_exists("nope") is False
        assert sorted(await session.node_names()) == ["node1", "node2"]
        assert "usbdevices.usb.kubevirt-usb.io" in await session.crd_names()
    finally:
        await session.close()


async def test_the_namespace_flag_wins_over_the_context(cluster: Cluster) -> None:
    session = open_session(cluster, namespace="lab", all_namespaces=True)
    try:
        assert (session.namespace, session.all_namespaces) == ("lab", True)
    finally:
        await session.close()


async def test_a_missing_crd_says_the_project_is_not_installed(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, installed=False)
    session = open_session(cluster)
    try:
        with pytest.raises(CLIError) as caught:
            await session.devices()
        assert caught.value.code is ExitCode.NOT_FOUND
        assert caught.value.message == (
            "kubevirt-usb is not installed in this cluster (no usbdevices.usb.kubevirt-usb.io);"
            " install it: kubevirt-usb crds | kubectl apply -f -")
        with pytest.raises(CLIError, match=r"no usbattachments\.usb\.kubevirt-usb\.io"):
            await session.find(USBAttachment, "x", namespace="default")
    finally:
        await session.close()
        cluster.stop()


async def test_non_resource_paths(cluster: Cluster) -> None:
    session = open_session(cluster)
    try:
        assert (await session.raw_get("/apis/subresources.kubevirt.io/v1/version"))[
            "gitVersion"] == "v1.6.0"
        with pytest.raises(CLIError, match="GET /nope: 404"):
            await session.raw_get("/nope")
    finally:
        await session.close()


async def test_access_reviews(cluster: Cluster) -> None:
    session = open_session(cluster)
    try:
        assert await session.can(verb="create", group="usb.kubevirt-usb.io",
                                 resource="usbattachments", namespace="default")
        assert not await session.can(
            verb="get", group="subresources.kubevirt.io", resource="virtualmachineinstances",
            subresource="usbredir", namespace="default",
            user="system:serviceaccount:kubevirt-usb:kubevirt-usb-agent",
            groups=("system:serviceaccounts",))
    finally:
        await session.close()


async def test_forbidden_names_the_verb_and_resource(cluster: Cluster) -> None:
    session = Session.open(Settings(kubeconfig=cluster.add_user("bob")), environ={})
    try:
        with pytest.raises(CLIError) as caught:
            await session.listing(VirtualMachine, namespace="default")
        assert caught.value.code is ExitCode.FORBIDDEN
        assert caught.value.message == (
            'virtualmachines.kubevirt.io is forbidden: User "bob" cannot list resource '
            '"virtualmachines" in API group "kubevirt.io" in the namespace "default"; ask a '
            "cluster admin for that permission")
    finally:
        await session.close()


def test_no_configuration_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(CLIError) as caught:
        Session.open(Settings(kubeconfig=tmp_path / "none"), environ={})
    assert caught.value.code is ExitCode.UNREACHABLE
    assert caught.value.message.startswith(f"no cluster to talk to: kubeconfig {tmp_path}/none")


def test_a_certificate_that_cannot_be_loaded_is_unreachable(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    entry = config["clusters"][0]["cluster"]
    del entry["certificate-authority-data"]
    entry["certificate-authority"] = str(tmp_path / "ca.crt")
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(CLIError) as caught:
        Session.open(Settings(kubeconfig=path), environ={})
    assert caught.value.code is ExitCode.UNREACHABLE
    assert caught.value.message == ("no cluster to talk to: the kubeconfig's "
                                    f"certificate-authority {tmp_path}/ca.crt does not exist")


# ---- API failures as one-line errors (no I/O) ----------------------------------------


def test_forbidden_keeps_the_servers_verb_and_resource() -> None:
    message = ('usbattachments.usb.kubevirt-usb.io is forbidden: User "bob" cannot create '
               'resource "usbattachments" in API group "usb.kubevirt-usb.io" in the namespace '
               '"default"')
    error = from_kube_error(Forbidden(message, code=403, reason="Forbidden"), server=SERVER)
    assert error.code is ExitCode.FORBIDDEN
    assert error.message.startswith(message)
    assert "ask a cluster admin" in error.message


def test_unauthorized_says_to_log_in_again() -> None:
    error = from_kube_error(Unauthorized("Unauthorized", code=401, reason="Unauthorized"),
                            server=SERVER)
    assert error.code is ExitCode.FORBIDDEN
    assert SERVER in error.message
    assert "log in again" in error.message


def test_a_connection_failure_names_the_server_and_what_to_check() -> None:
    error = from_kube_error(Unavailable("cannot reach the API server: connection refused",
                                        reason="ConnectError"), server=SERVER)
    assert error.code is ExitCode.UNREACHABLE
    assert error.message == (f"cannot reach the Kubernetes API at {SERVER} (connection refused)"
                             ": check --context/--kubeconfig and that the cluster is up")


def test_a_server_certificate_the_kubeconfig_does_not_trust_says_so() -> None:
    detail = ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
              "issuer certificate (_ssl.c:1006)")
    error = from_kube_error(Unavailable(f"cannot reach the API server: {detail}",
                                        reason=CERTIFICATE_NOT_TRUSTED), server=SERVER)
    assert error.code is ExitCode.UNREACHABLE
    assert error.message == (f"the API server at {SERVER} is not the one the kubeconfig trusts "
                             f"({detail}): check the context's certificate-authority and server")


def test_a_failing_server_is_unreachable_too() -> None:
    error = from_kube_error(ServerError("etcd is down", code=500, reason="InternalError"),
                            server=SERVER)
    assert error.code is ExitCode.UNREACHABLE
    assert "etcd is down" in error.message


def test_not_found_conflict_and_invalid() -> None:
    missing = from_kube_error(NotFound('x "a" not found', code=404, reason="NotFound"),
                              server=SERVER)
    assert (missing.code, missing.message) == (ExitCode.NOT_FOUND, 'x "a" not found')
    taken = from_kube_error(AlreadyExists("exists", code=409, reason="AlreadyExists"),
                            server=SERVER)
    assert taken.code is ExitCode.FAILED
    assert "run the command again" in taken.message
    bad = from_kube_error(Invalid("spec.vm: Required value", code=422, reason="Invalid"),
                          server=SERVER)
    assert bad.message == "the API server rejected the request: spec.vm: Required value"
