"""Graceful deletion of Pods: a Pod bound to a node is only marked (deletionTimestamp, grace
period) and stays Terminating until its kubelet deletes it with grace period 0; an unbound or
finished Pod goes at once. Every case ends with its Pods gone, as a kubelet would leave them."""

from __future__ import annotations

from typing import Any

import httpx

from kubevirt_usb.clock import parse_rfc3339
from tests.contract.conftest import Cluster
from tests.contract.support import collect_events, status_of

CONFIRM = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}


def _pod(name: str, *, node: str = "", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "example.com/c:1"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _delete(http: httpx.Client, path: str, options: dict[str, Any] | None = None
            ) -> httpx.Response:
    if options is None:
        return http.delete(path)
    return http.request("DELETE", path, json={"apiVersion": "v1", "kind": "DeleteOptions",
                                              **options})


def _seconds(meta: dict[str, Any], since: str) -> float:
    return (parse_rfc3339(meta["deletionTimestamp"]) - parse_rfc3339(since)).total_seconds()


def test_a_bound_pod_is_terminating_until_its_kubelet_confirms(cluster: Cluster,
                                                              namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with cluster.http() as http:
        created = http.post(pods, json=_pod("bound", node="node-1"))
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["terminationGracePeriodSeconds"] == 30  # the default
        assert created.json()["metadata"]["generation"] == 1
        marked = _delete(http, f"{pods}/bound")
        assert marked.status_code == 200, marked.text
        meta = marked.json()["metadata"]
        assert meta["deletionGracePeriodSeconds"] == 30
        assert _seconds(meta, meta["creationTimestamp"]) >= 30  # now + the grace period
        assert meta["generation"] == 2
        still = http.get(f"{pods}/bound")
        assert still.status_code == 200
        assert still.json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
        # deleting again changes nothing while the deletion is pending
        again = _delete(http, f"{pods}/bound")
        assert again.status_code == 200
        assert again.json()["metadata"]["resourceVersion"] == meta["resourceVersion"]
        confirmed = _delete(http, f"{pods}/bound", CONFIRM)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["metadata"]["deletionGracePeriodSeconds"] == 0
        assert http.get(f"{pods}/bound").status_code == 404


def test_the_pods_own_grace_period_and_a_shorter_one(cluster: Cluster, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with cluster.http() as http:
        http.post(pods, json=_pod("own", node="node-1", grace=300)).raise_for_status()
        first = _delete(http, f"{pods}/own").json()["metadata"]
        assert first["deletionGracePeriodSeconds"] == 300
        shorter = _delete(http, f"{pods}/own", {"gracePeriodSeconds": 100}).json()["metadata"]
        assert shorter["deletionGracePeriodSeconds"] == 100
        # the deadline moves back by the difference, from the first request's time
        assert _seconds(first, shorter["deletionTimestamp"]) == 200
        longer = _delete(http, f"{pods}/own", {"gracePeriodSeconds": 200}).json()["metadata"]
        assert longer["deletionGracePeriodSeconds"] == 100  # only a shorter one counts
        assert longer["resourceVersion"] == shorter["resourceVersion"]
        _delete(http, f"{pods}/own", {"gracePeriodSeconds": 0}).raise_for_status()
        assert http.get(f"{pods}/own").status_code == 404


def test_an_unbound_or_finished_pod_goes_at_once(cluster: Cluster, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with cluster.http() as http:
        http.post(pods, json=_pod("unbound")).raise_for_status()
        http.post(pods, json=_pod("done", node="node-1")).raise_for_status()
        http.patch(f"{pods}/done/status", headers={"Content-Type": "application/merge-patch+json"},
                   json={"status": {"phase": "Succeeded"}}).raise_for_status()
        for name in ("unbound", "done"):
            gone = _delete(http, f"{pods}/{name}")
            assert gone.status_code == 200, gone.text
            # the answer is the object as it was marked on its way out
            assert gone.json()["metadata"]["deletionGracePeriodSeconds"] == 0
            missing = http.get(f"{pods}/{name}")
            assert missing.status_code == 404
            assert status_of(missing)["reason"] == "NotFound"


def test_watchers_see_the_mark_and_then_the_removal(cluster: Cluster, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with cluster.http() as http:
        created = http.post(pods, json=_pod("watched", node="node-1")).json()
        since = created["metadata"]["resourceVersion"]
        _delete(http, f"{pods}/watched").raise_for_status()
        _delete(http, f"{pods}/watched", CONFIRM).raise_for_status()
        events = collect_events(http, pods, resourceVersion=since, timeoutSeconds="10",
                                until=lambda seen: seen[-1]["type"] == "DELETED")
    kinds = [(e["type"], e["object"]["metadata"].get("deletionGracePeriodSeconds"))
             for e in events]
    assert kinds == [("MODIFIED", 30), ("MODIFIED", 0), ("DELETED", 0)]


def test_a_finalizer_keeps_a_confirmed_pod(cluster: Cluster, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    body = _pod("held", node="node-1")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    with cluster.http() as http:
        http.post(pods, json=body).raise_for_status()
        held = _delete(http, f"{pods}/held", CONFIRM)
        assert held.status_code == 200
        assert held.json()["metadata"]["finalizers"] == ["example.com/hold"]
        assert http.get(f"{pods}/held").status_code == 200
        http.patch(f"{pods}/held", headers={"Content-Type": "application/merge-patch+json"},
                   json={"metadata": {"finalizers": None}}).raise_for_status()
        assert http.get(f"{pods}/held").status_code == 404
