"""lightkube, sync and async, unchanged against the cluster: CRUD, selectors, patch types,
server-side apply, watch, errors, and generic resources for a CRD."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from lightkube import ApiError, AsyncClient, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

from tests.contract.conftest import Cluster
from tests.contract.support import ContractCRD


def _client(cluster: Cluster, namespace: str) -> Client:
    return Client(KubeConfig.from_file(cluster.kubeconfig), namespace=namespace,
                  field_manager="contract-tests")


def test_sync_crud_and_selectors(cluster: Cluster, namespace: str) -> None:
    client = _client(cluster, namespace)
    created = client.create(ConfigMap(metadata=ObjectMeta(name="lk", labels={"app": "lk"}),
                                      data={"a": "1"}))
    assert created.metadata is not None
    assert created.metadata.uid
    assert client.get(ConfigMap, "lk").data == {"a": "1"}
    names = [cm.metadata.name for cm in client.list(ConfigMap, labels={"app": "lk"})
             if cm.metadata is not None]
    assert names == ["lk"]
    by_field = list(client.list(ConfigMap, fields={"metadata.name": "lk"}))
    assert len(by_field) == 1
    patched = client.patch(ConfigMap, "lk", {"data": {"b": "2"}}, patch_type=PatchType.MERGE)
    assert patched.data == {"a": "1", "b": "2"}
    json_patched = client.patch(ConfigMap, "lk", [{"op": "remove", "path": "/data/a"}],
                                patch_type=PatchType.JSON)
    assert json_patched.data == {"b": "2"}
    strategic = client.patch(ConfigMap, "lk", {"metadata": {"labels": {"x": "y"}}})
    assert strategic.metadata is not None
    assert strategic.metadata.labels == {"app": "lk", "x": "y"}
    client.delete(ConfigMap, "lk")
    with pytest.raises(ApiError) as missing:
        client.get(ConfigMap, "lk")
    assert missing.value.status.code == 404
    assert missing.value.status.reason == "NotFound"


def test_sync_chunked_list(cluster: Cluster, namespace: str) -> None:
    client = _client(cluster, namespace)
    for i in range(7):
        client.create(ConfigMap(metadata=ObjectMeta(name=f"chunk-{i}", labels={"c": "y"})))
    names = [cm.metadata.name for cm in client.list(ConfigMap, labels={"c": "y"}, chunk_size=3)
             if cm.metadata is not None]
    assert names == [f"chunk-{i}" for i in range(7)]


def test_sync_conflict_is_an_api_error(cluster: Cluster, namespace: str) -> None:
    client = _client(cluster, namespace)
    created = client.create(ConfigMap(metadata=ObjectMeta(name="cf"), data={"v": "0"}))
    client.replace(created)  # no change: same resourceVersion stays valid
    created.data = {"v": "1"}
    client.replace(created)
    created.data = {"v": "2"}
    with pytest.raises(ApiError) as conflict:
        client.replace(created)
    assert conflict.value.status.code == 409
    assert conflict.value.status.reason == "Conflict"
    with pytest.raises(ApiError) as exists:
        client.create(ConfigMap(metadata=ObjectMeta(name="cf")))
    assert exists.value.status.reason == "AlreadyExists"


def test_sync_server_side_apply(cluster: Cluster, namespace: str) -> None:
    client = _client(cluster, namespace)
    lease = Lease(metadata=ObjectMeta(name="leader", namespace=namespace),
                  spec=LeaseSpec(holderIdentity="a", leaseDurationSeconds=15))
    applied = client.apply(lease, field_manager="candidate-a")
    assert applied.spec is not None
    assert applied.spec.holderIdentity == "a"
    rival = Lease(metadata=ObjectMeta(name="leader", namespace=namespace),
                  spec=LeaseSpec(holderIdentity="b"))
    with pytest.raises(ApiError) as conflict:
        client.apply(rival, field_manager="candidate-b")
    assert conflict.value.status.code == 409
    taken = client.apply(rival, field_manager="candidate-b", force=True)
    assert taken.spec is not None
    assert taken.spec.holderIdentity == "b"


def test_sync_watch(cluster: Cluster, namespace: str) -> None:
    client = _client(cluster, namespace)
    created = client.create(ConfigMap(metadata=ObjectMeta(name="wt")))
    assert created.metadata is not None
    client.patch(ConfigMap, "wt", {"data": {"k": "v"}}, patch_type=PatchType.MERGE)
    client.delete(ConfigMap, "wt")
    seen = []
    for kind, obj in client.watch(ConfigMap, fields={"metadata.name": "wt"},
                                  resource_version=created.metadata.resourceVersion,
                                  server_timeout=5):
        seen.append((kind, obj.data))
        if kind == "DELETED":
            break
    assert seen == [("MODIFIED", {"k": "v"}), ("DELETED", {"k": "v"})]


def test_sync_generic_resource_for_a_crd(cluster: Cluster, namespace: str,
                                         widget_crd: ContractCRD) -> None:
    widget = create_namespaced_resource(widget_crd.group, widget_crd.version, "Widget",
                                        widget_crd.plural)
    client = _client(cluster, namespace)
    created = client.create(widget(metadata=ObjectMeta(name="gw"), spec={"color": "red"}))
    assert created.metadata is not None
    assert created.metadata.generation == 1
    status = client.patch(widget.Status, "gw", {"status": {"phase": "Ready"}},
                          patch_type=PatchType.MERGE)
    assert cast(Any, status.status) == {"phase": "Ready"}
    with pytest.raises(ApiError) as invalid:
        client.patch(widget, "gw", {"spec": {"color": "pink"}}, patch_type=PatchType.MERGE)
    assert invalid.value.status.code == 422
    client.delete(widget, "gw")


def test_sync_cluster_scoped(cluster: Cluster) -> None:
    client = Client(KubeConfig.from_file(cluster.kubeconfig))
    names = [ns.metadata.name for ns in client.list(Namespace) if ns.metadata is not None]
    assert "default" in names
    assert client.get(Namespace, "default").status is not None


async def _async_round_trip(cluster: Cluster, namespace: str) -> list[str]:
    client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig), namespace=namespace,
                         field_manager="contract-tests")
    created = await client.create(ConfigMap(metadata=ObjectMeta(name="async"), data={"a": "1"}))
    assert created.metadata is not None
    await client.patch(ConfigMap, "async", {"data": {"a": "2"}}, patch_type=PatchType.MERGE)
    got = await client.get(ConfigMap, "async")
    assert got.data == {"a": "2"}
    listed = [cm.metadata.name async for cm in client.list(ConfigMap)
              if cm.metadata is not None]
    assert "async" in listed
    applied = await client.apply(ConfigMap(metadata=ObjectMeta(name="async-ssa"),
                                           data={"k": "v"}), field_manager="async-manager")
    assert applied.data == {"k": "v"}
    await client.delete(ConfigMap, "async")
    with pytest.raises(ApiError) as missing:
        await client.get(ConfigMap, "async")
    assert missing.value.status.code == 404
    kinds: list[str] = []
    async for kind, _obj in client.watch(ConfigMap, fields={"metadata.name": "async"},
                                         resource_version=created.metadata.resourceVersion,
                                         server_timeout=5):
        kinds.append(kind)
        if kind == "DELETED":
            break
    await client.close()
    return kinds


def test_async_client(cluster: Cluster, namespace: str) -> None:
    kinds = asyncio.run(_async_round_trip(cluster, namespace))
    assert kinds == ["MODIFIED", "DELETED"]
