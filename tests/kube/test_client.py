"""The client against the API emulator over real HTTPS: plain dicts, preconditions, watches, and
every failure as a KubeError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from kubevirt_usb.kube.client import KubeClient, ObservedTransport, connect
from kubevirt_usb.kube.config import ConfigError, load_config
from kubevirt_usb.kube.errors import (
    CERTIFICATE_NOT_TRUSTED,
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
)
from kubevirt_usb.kube.objects import WatchEvent
from kubevirt_usb.kube.resources import Lease, USBDevice
from tests.kube.emulator import NAMESPACE, Emulator, Relay


@pytest.fixture
async def client(cluster: Emulator) -> AsyncIterator[KubeClient]:
    kube = cluster.client(field_manager="test-manager")
    yield kube
    await kube.close()


def _device(name: str) -> dict[str, Any]:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBDevice",
            "metadata": {"name": name, "labels": {"team": "a"}}, "spec": {}}


STATUS = {"node": "node1", "identity": {"tier": "port", "key": "port:node1:1-1:46f4:0001"},
          "portPath": "1-1", "vendorId": "46f4", "productId": "0001", "present": True}


async def test_create_get_list_return_plain_dicts(client: KubeClient) -> None:
    created = await client.create(USBDevice, _device("dev-a"))
    fetched = await client.get(USBDevice, "dev-a")
    listed = await client.list(USBDevice, labels={"team": "a"})
    assert type(created) is dict
    assert type(fetched["metadata"]) is dict
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert [i["metadata"]["name"] for i in listed.items] == ["dev-a"]
    assert listed.resource_version.isdigit()
    assert (await client.list(USBDevice, labels={"team": "b"})).items == []


async def test_status_patch_with_a_version_precondition(client: KubeClient) -> None:
    created = await client.create(USBDevice, _device("dev-b"))
    version = created["metadata"]["resourceVersion"]
    patched = await client.patch(USBDevice.Status, "dev-b", {"status": STATUS},
                                 resource_version=version)
    assert patched["status"]["node"] == "node1"
    with pytest.raises(Conflict) as stale:
        await client.patch(USBDevice.Status, "dev-b", {"status": {"present": False}},
                           resource_version=version)
    assert stale.value.code == 409
    assert (await client.get(USBDevice, "dev-b"))["status"]["present"] is True


async def test_the_field_manager_is_recorded(client: KubeClient) -> None:
    created = await client.create(USBDevice, _device("dev-m"))
    assert {m["manager"] for m in created["metadata"]["managedFields"]} == {"test-manager"}


async def test_delete_only_if_unchanged(client: KubeClient) -> None:
    created = await client.create(USBDevice, _device("dev-c"))
    old = created["metadata"]["resourceVersion"]
    await client.patch(USBDevice, "dev-c", {"metadata": {"labels": {"team": "b"}}})
    with pytest.raises(Conflict, match="the ResourceVersion in the precondition"):
        await client.delete(USBDevice, "dev-c", resource_version=old)
    current = (await client.get(USBDevice, "dev-c"))["metadata"]["resourceVersion"]
    await client.delete(USBDevice, "dev-c", resource_version=current)
    with pytest.raises(NotFound):
        await client.get(USBDevice, "dev-c")
    with pytest.raises(NotFound):
        await client.delete(USBDevice, "dev-c")


async def test_errors_come_out_of_the_tree(client: KubeClient) -> None:
    await client.create(USBDevice, _device("dev-d"))
    with pytest.raises(AlreadyExists):
        await client.create(USBDevice, _device("dev-d"))
    with pytest.raises(Invalid, match="claimRef"):
        await client.patch(USBDevice, "dev-d", {"spec": {"claimRef": {"namespace": "Not OK"}}})
    with pytest.raises(NotFound):
        await client.get(USBDevice, "nope")


async def test_apply_creates_and_then_updates_a_lease(client: KubeClient) -> None:
    lease: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "beat", "namespace": NAMESPACE},
             "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}}
    first = await client.apply(Lease, lease)
    second = await client.apply(Lease, {**lease, "spec": {**lease["spec"],
                                                         "leaseDurationSeconds": 20}})
    assert first["metadata"]["uid"] == second["metadata"]["uid"]
    assert second["spec"]["leaseDurationSeconds"] == 20


async def test_watch_delivers_events_after_a_version(client: KubeClient) -> None:
    start = (await client.list(USBDevice)).resource_version
    events: list[WatchEvent] = []

    async def collect() -> None:
        async for event in client.watch(USBDevice, resource_version=start):
            events.append(event)
            if event.type == "DELETED":
                return

    watcher = asyncio.create_task(collect())
    await client.create(USBDevice, _device("dev-w"))
    await client.patch(USBDevice.Status, "dev-w", {"status": STATUS})
    await client.delete(USBDevice, "dev-w")
    await asyncio.wait_for(watcher, timeout=10)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["status"]["node"] == "node1"
    assert int(events[2].resource_version) > int(events[0].resource_version)


async def test_a_watch_from_a_compacted_version_is_gone(client: KubeClient) -> None:
    with pytest.raises(Gone):
        async for _ in client.watch(USBDevice, resource_version="1"):
            pass


async def test_an_observed_transport_sees_every_request(cluster: Emulator) -> None:
    seen: list[tuple[str, str]] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return ObservedTransport(inner, lambda r: seen.append((r.method, r.url.path)))

    observed = connect(cluster.config(), field_manager="t", wrap=wrap)
    try:
        await observed.create(USBDevice, _device("dev-o"))
        await observed.get(USBDevice, "dev-o")
    finally:
        await observed.close()
    base = "/apis/usb.kubevirt-usb.io/v1alpha1/usbdevices"
    assert seen == [("POST", base), ("GET", f"{base}/dev-o")]


async def test_nobody_listening_is_unavailable(tmp_path: Path, cluster: Emulator) -> None:
    config = load_config(kubeconfig=cluster.kubeconfig)
    config.cluster.server = f"https://127.0.0.1:{Relay.free_port()}"
    down = connect(config, field_manager="t", timeout=2)
    try:
        with pytest.raises(Unavailable) as failure:
            await down.list(USBDevice)
    finally:
        await down.close()
    assert failure.value.reason == "ConnectError"


async def test_a_server_certificate_that_is_not_trusted_is_said_so(tmp_path: Path,
                                                                    cluster: Emulator) -> None:
    config = load_config(kubeconfig=_with(cluster, tmp_path / "k"))  # the system CAs only
    untrusting = connect(config, field_manager="t", timeout=5)
    try:
        with pytest.raises(Unavailable) as failure:
            await untrusting.list(USBDevice)
    finally:
        await untrusting.close()
    assert failure.value.reason == CERTIFICATE_NOT_TRUSTED
    assert "CERTIFICATE_VERIFY_FAILED" in failure.value.message


def _with(cluster: Emulator, path: Path, *, cluster_fields: dict[str, Any] | None = None,
          user: dict[str, Any] | None = None) -> Path:
    """The emulator's kubeconfig with some cluster fields or the user replaced."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    entry = config["clusters"][0]["cluster"]
    entry.pop("certificate-authority-data")
    entry.update(cluster_fields or {})
    if user is not None:
        config["users"][0]["user"] = user
    path.write_text(yaml.safe_dump(config))
    return path


def test_certificates_that_cannot_be_loaded_are_a_config_error(tmp_path: Path,
                                                               cluster: Emulator) -> None:
    missing_ca = _with(cluster, tmp_path / "a", cluster_fields={
        "certificate-authority": str(tmp_path / "ca.crt")})
    with pytest.raises(ConfigError, match=f"certificate-authority {tmp_path / 'ca.crt'} does "
                                          "not exist"):
        connect(load_config(kubeconfig=missing_ca), field_manager="t")
    relative_ca = _with(cluster, tmp_path / "b", cluster_fields={"certificate-authority": "x.crt"})
    with pytest.raises(ConfigError, match=f"certificate-authority {tmp_path / 'x.crt'} does"):
        connect(load_config(kubeconfig=relative_ca), field_manager="t")
    bad_data = _with(cluster, tmp_path / "c", cluster_fields={
        "certificate-authority-data": "!!!notbase64"})
    with pytest.raises(ConfigError, match="certificates cannot be used: Invalid base64"):
        connect(load_config(kubeconfig=bad_data), field_manager="t")
    (tmp_path / "words.crt").write_text("not a certificate\n")
    not_a_ca = _with(cluster, tmp_path / "d", cluster_fields={
        "certificate-authority": str(tmp_path / "words.crt")})
    with pytest.raises(ConfigError, match=r"certificates cannot be used: .*no certificate"):
        connect(load_config(kubeconfig=not_a_ca), field_manager="t", wrap=lambda t: t)
    no_key = _with(cluster, tmp_path / "e", user={"client-certificate": str(tmp_path / "u.crt"),
                                                  "client-key": str(tmp_path / "u.key")},
                   cluster_fields={"insecure-skip-tls-verify": True})
    with pytest.raises(ConfigError, match=f"client-certificate {tmp_path / 'u.crt'} does not"):
        connect(load_config(kubeconfig=no_key), field_manager="t")


async def test_a_token_file_that_is_gone_is_unavailable(tmp_path: Path,
                                                        cluster: Emulator) -> None:
    path = _with(cluster, tmp_path / "config", user={"tokenFile": str(tmp_path / "token")},
                 cluster_fields={"insecure-skip-tls-verify": True})
    client = connect(load_config(kubeconfig=path), field_manager="t")
    try:
        with pytest.raises(Unavailable, match="the credentials cannot be read: Token file") as e:
            await client.list(USBDevice)
    finally:
        await client.close()
    assert e.value.reason == "ConfigError"


async def test_a_context_without_a_user_is_anonymous(tmp_path: Path,
                                                     cluster: Emulator) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    del config["contexts"][0]["context"]["user"]
    path = tmp_path / "anonymous"
    path.write_text(yaml.safe_dump(config))
    client = connect(load_config(kubeconfig=path), field_manager="t")
    try:
        with pytest.raises(KubeError) as refused:
            await client.list(USBDevice)
    finally:
        await client.close()
    assert refused.value.code in (401, 403)


async def test_list_each_hands_over_every_object_page_by_page(client: KubeClient) -> None:
    for index in range(5):
        await client.create(USBDevice, _device(f"page-{index}"))
    seen: list[str] = []
    version = await client.list_each(USBDevice, lambda o: seen.append(o["metadata"]["name"]),
                                     chunk_size=2)
    assert seen == [f"page-{index}" for index in range(5)]
    assert version == (await client.list(USBDevice)).resource_version


async def test_non_resource_paths_are_json_objects_or_an_error_with_the_code(
        client: KubeClient) -> None:
    version = await client.get_path("/version")
    assert version["gitVersion"].startswith("v1.")
    with pytest.raises(KubeError, match="GET /nope: 404") as failure:
        await client.get_path("/nope")
    assert failure.value.code == 404
