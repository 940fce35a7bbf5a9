"""Optimistic concurrency: stale resourceVersions give 409 Conflict, exactly one writer wins."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.contract.conftest import Cluster
from tests.contract.support import JSON_PATCH, MERGE, ContractCRD, status_of

WRITERS = 50


def test_update_with_a_stale_resource_version_is_409(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        first = http.post(path, json={"metadata": {"name": "c"}, "data": {"v": "0"}}).json()
        http.put(f"{path}/c", json={**first, "data": {"v": "1"}}).raise_for_status()
        stale = http.put(f"{path}/c", json={**first, "data": {"v": "2"}})
    assert stale.status_code == 409
    status = status_of(stale)
    assert status["reason"] == "Conflict"
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "c": the object '
                                 "has been modified; please apply your changes to the latest "
                                 "version and try again")
    assert status["details"] == {"name": "c", "kind": "configmaps"}


def test_patch_with_a_stale_resource_version_is_409(cluster: Cluster, namespace: str,
                                                    widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("p", namespace=namespace)).json()
        rv = created["metadata"]["resourceVersion"]
        http.patch(widget_crd.path(namespace=namespace, name="p"), headers=MERGE,
                   json={"spec": {"size": 2}}).raise_for_status()
        merge = http.patch(widget_crd.path(namespace=namespace, name="p"), headers=MERGE,
                           json={"metadata": {"resourceVersion": rv}, "spec": {"size": 3}})
        json_patch = http.patch(widget_crd.path(namespace=namespace, name="p"),
                                headers=JSON_PATCH, json=[
            {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/size", "value": 4}])
    for response in (merge, json_patch):
        assert response.status_code == 409
        status = status_of(response)
        assert status["reason"] == "Conflict"
        assert status["details"]["group"] == widget_crd.group


async def _race(cluster: Cluster, path: str, base: dict[str, Any]) -> list[int]:
    async with cluster.async_http() as http:
        async def write(index: int) -> int:
            body = {**base, "data": {"writer": str(index)}}
            return (await http.put(path, json=body)).status_code

        return list(await asyncio.gather(*(write(i) for i in range(WRITERS))))


def test_fifty_writers_from_one_resource_version_one_wins(cluster: Cluster,
                                                          namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        base = http.post(path, json={"metadata": {"name": "race"}, "data": {"writer": "none"}})
        base.raise_for_status()
    codes = asyncio.run(_race(cluster, f"{path}/race", base.json()))
    assert codes.count(200) == 1
    assert codes.count(409) == WRITERS - 1
    with cluster.http() as http:
        final = http.get(f"{path}/race").json()
    assert final["data"]["writer"] != "none"
    assert int(final["metadata"]["resourceVersion"]) > \
        int(base.json()["metadata"]["resourceVersion"])


def test_a_conflict_leaves_other_clients_unharmed(cluster: Cluster, namespace: str) -> None:
    """An error answered to one client does not disturb the connection of another."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as a, cluster.http() as b:
        created = a.post(path, json={"metadata": {"name": "x"}}).json()
        a.put(f"{path}/x", json={**created, "data": {"k": "1"}}).raise_for_status()
        assert b.put(f"{path}/x", json={**created, "data": {"k": "2"}}).status_code == 409
        assert b.get(f"{path}/x").json()["data"] == {"k": "1"}
        assert a.get(f"{path}/x").status_code == 200


def test_concurrent_creates_of_one_name(cluster: Cluster, namespace: str) -> None:
    async def race() -> list[int]:
        async with cluster.async_http() as http:
            async def create() -> int:
                response = await http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                                           json={"metadata": {"name": "once"}})
                return response.status_code

            return list(await asyncio.gather(*(create() for _ in range(10))))

    codes = asyncio.run(race())
    assert sorted(codes) == [201] + [409] * 9


def test_writes_without_precondition_all_succeed(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        http.post(path, json={"metadata": {"name": "m"}}).raise_for_status()

    async def patches() -> list[httpx.Response]:
        async with cluster.async_http() as http:
            return list(await asyncio.gather(*(
                http.patch(f"{path}/m", headers=MERGE, json={"data": {f"k{i}": str(i)}})
                for i in range(20))))

    responses = asyncio.run(patches())
    assert {r.status_code for r in responses} == {200}
    with cluster.http() as http:
        assert len(http.get(f"{path}/m").json()["data"]) == 20
