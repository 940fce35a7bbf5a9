"""Lists (resourceVersion, limit/continue, label and field selectors) and watches (from a
resourceVersion, bookmarks, 410 Gone, timeoutSeconds)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import (
    MERGE,
    ContractCRD,
    collect_events,
    status_of,
    watch_events,
)


def _names(body: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in body["items"]]


def _make(http: httpx.Client, namespace: str, name: str, **labels: str) -> dict[str, Any]:
    response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                         json={"metadata": {"name": name, "labels": labels}})
    response.raise_for_status()
    return dict(response.json())


@pytest.fixture
def labelled(cluster: Cluster, namespace: str) -> str:
    with cluster.http() as http:
        _make(http, namespace, "a", tier="web", env="prod")
        _make(http, namespace, "b", tier="db", env="prod")
        _make(http, namespace, "c", tier="web", env="dev")
        _make(http, namespace, "d", env="dev")
        _make(http, namespace, "e")
    return namespace


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", ["a", "c"]),
    ("tier==web", ["a", "c"]),
    ("tier!=web", ["b", "d", "e"]),
    ("tier in (web,db)", ["a", "b", "c"]),
    ("tier notin (web)", ["b", "d", "e"]),
    ("tier", ["a", "b", "c"]),
    ("!tier", ["d", "e"]),
    ("env=prod,tier=web", ["a"]),
    ("env in (dev),!tier", ["d"]),
])
def test_label_selectors(cluster: Cluster, labelled: str, selector: str,
                         expected: list[str]) -> None:
    with cluster.http() as http:
        body = http.get(f"/api/v1/namespaces/{labelled}/configmaps",
                        params={"labelSelector": selector}).json()
    assert sorted(n for n in _names(body) if n != "kube-root-ca.crt") == expected


def test_invalid_label_selector_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.get(f"/api/v1/namespaces/{namespace}/configmaps",
                            params={"labelSelector": "tier in web"})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_field_selectors(cluster: Cluster, labelled: str) -> None:
    with cluster.http() as http:
        by_name = http.get(f"/api/v1/namespaces/{labelled}/configmaps",
                           params={"fieldSelector": "metadata.name=b"}).json()
        not_name = http.get(f"/api/v1/namespaces/{labelled}/configmaps",
                            params={"fieldSelector": "metadata.name!=b"}).json()
        across = http.get("/api/v1/configmaps",
                          params={"fieldSelector": f"metadata.namespace={labelled}",
                                  "labelSelector": "env=dev"}).json()
    assert _names(by_name) == ["b"]
    assert "b" not in _names(not_name)
    assert "a" in _names(not_name)
    assert sorted(_names(across)) == ["c", "d"]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [("configmaps", '"data.x" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'),
     ("secrets", "field label not supported: data.x"),
     ("events", "field label not supported: data.x")],
)
def test_unsupported_field_selector_is_400(cluster: Cluster, namespace: str, resource: str,
                                           expected: str) -> None:
    """Kinds with a field label conversion of their own (Secret, Event, Pod...) name the label;
    the others (ConfigMap...) get the default conversion's sentence."""
    with cluster.http() as http:
        response = http.get(f"/api/v1/namespaces/{namespace}/{resource}",
                            params={"fieldSelector": "data.x=1"})
    assert response.status_code == 400
    status = status_of(response)
    assert status["reason"] == "BadRequest"
    assert status["message"] == expected


def test_event_field_selectors(cluster: Cluster, namespace: str) -> None:
    events = f"/api/v1/namespaces/{namespace}/events"
    with cluster.http() as http:
        for name, reason in (("e1", "Bound"), ("e2", "Failed")):
            http.post(events, json={"metadata": {"name": name}, "reason": reason,
                                    "type": "Normal", "message": "m", "involvedObject": {
                                        "kind": "ConfigMap", "name": name,
                                        "namespace": namespace}}).raise_for_status()
        body = http.get(events, params={"fieldSelector": "reason=Failed"}).json()
        by_object = http.get(events, params={
            "fieldSelector": "involvedObject.kind=ConfigMap,involvedObject.name=e1"}).json()
    assert _names(body) == ["e2"]
    assert _names(by_object) == ["e1"]


def test_limit_and_continue(cluster: Cluster, labelled: str) -> None:
    path = f"/api/v1/namespaces/{labelled}/configmaps"
    seen: list[str] = []
    with cluster.http() as http:
        first = http.get(path, params={"labelSelector": "env", "limit": "2"}).json()
        assert len(first["items"]) == 2
        token = first["metadata"]["continue"]
        assert "remainingItemCount" not in first["metadata"]  # not counted with a selector
        seen += _names(first)
        _make(http, labelled, "aa", env="late")  # after the first page: not in this list
        while token:
            page = http.get(path, params={"labelSelector": "env", "limit": "2",
                                          "continue": token}).json()
            assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
            seen += _names(page)
            token = page["metadata"].get("continue", "")
    assert seen == ["a", "b", "c", "d"]


def test_limit_without_selector_counts_the_rest(cluster: Cluster, labelled: str) -> None:
    with cluster.http() as http:
        body = http.get(f"/api/v1/namespaces/{labelled}/configmaps",
                        params={"limit": "2"}).json()
        total = len(http.get(f"/api/v1/namespaces/{labelled}/configmaps").json()["items"])
    assert body["metadata"]["remainingItemCount"] == total - 2


def test_invalid_continue_token_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.get(f"/api/v1/namespaces/{namespace}/configmaps",
                            params={"limit": "1", "continue": "not-a-token"})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_list_at_an_exact_resource_version(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        first = _make(http, namespace, "early")
        rv = first["metadata"]["resourceVersion"]
        http.patch(f"{path}/early", headers=MERGE, json={"data": {"k": "v"}}).raise_for_status()
        _make(http, namespace, "later")
        then = http.get(path, params={"resourceVersion": rv,
                                      "resourceVersionMatch": "Exact"}).json()
        now = http.get(path).json()
    then_names = [n for n in _names(then) if n != "kube-root-ca.crt"]
    assert then_names == ["early"]
    assert then["metadata"]["resourceVersion"] == rv
    early = next(i for i in then["items"] if i["metadata"]["name"] == "early")
    assert "data" not in early
    assert sorted(n for n in _names(now) if n != "kube-root-ca.crt") == ["early", "later"]


def test_list_resource_version_is_a_watch_starting_point(cluster: Cluster,
                                                         namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        _make(http, namespace, "before")
        listed = http.get(path).json()
        _make(http, namespace, "after")
        events = collect_events(http, path, resourceVersion=listed["metadata"]["resourceVersion"],
                                timeoutSeconds="5", until=lambda ev: len(ev) >= 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after")]


def test_watch_from_a_resource_version_sees_every_change(cluster: Cluster,
                                                         namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        created = _make(http, namespace, "w")
        http.patch(f"{path}/w", headers=MERGE, json={"data": {"a": "1"}}).raise_for_status()
        http.delete(f"{path}/w").raise_for_status()
        events = collect_events(http, path, resourceVersion=created["metadata"]["resourceVersion"],
                                timeoutSeconds="5", until=lambda ev: len(ev) >= 2)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"a": "1"}
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert events[0]["object"]["apiVersion"] == "v1"
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > \
        int(events[0]["object"]["metadata"]["resourceVersion"])


def test_watch_without_resource_version_starts_with_current_objects(
        cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        _make(http, namespace, "present")
        first = collect_events(http, path, timeoutSeconds="5",
                               fieldSelector="metadata.name=present",
                               until=lambda ev: len(ev) >= 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in first] == [("ADDED", "present")]


def test_watch_delivers_live_changes(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    started = threading.Event()
    seen: list[tuple[str, str]] = []
    with cluster.http() as http:
        _make(http, namespace, "first", live="yes")

        def watch() -> None:
            with cluster.http() as watcher:
                for event in watch_events(watcher, path, timeoutSeconds="10",
                                          labelSelector="live=yes"):
                    seen.append((event["type"], event["object"]["metadata"]["name"]))
                    started.set()
                    if event["object"]["metadata"]["name"] == "second":
                        return

        thread = threading.Thread(target=watch)
        thread.start()
        assert started.wait(10)  # the initial ADDED of "first" arrived: the watch is live
        _make(http, namespace, "second", live="yes")
        thread.join(15)
    assert ("ADDED", "second") in seen
    assert seen[0] == ("ADDED", "first")


def test_watch_with_a_selector_sees_objects_leave_it(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        start = _make(http, namespace, "start")
        _make(http, namespace, "sel", color="red")
        http.patch(f"{path}/sel", headers=MERGE,
                   json={"metadata": {"labels": {"color": "blue"}}}).raise_for_status()
        http.patch(f"{path}/sel", headers=MERGE,
                   json={"metadata": {"labels": {"color": "red"}}}).raise_for_status()
        events = collect_events(http, path, resourceVersion=start["metadata"]["resourceVersion"],
                                labelSelector="color=red", timeoutSeconds="5",
                                until=lambda ev: len(ev) >= 3)
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]


def test_watch_of_one_object_by_name(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        start = _make(http, namespace, "one")
        _make(http, namespace, "other")
        http.patch(f"{path}/one", headers=MERGE, json={"data": {"x": "1"}}).raise_for_status()
        events = collect_events(http, path, fieldSelector="metadata.name=one",
                                resourceVersion=start["metadata"]["resourceVersion"],
                                timeoutSeconds="5", until=lambda ev: len(ev) >= 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "one")]


def test_watch_from_a_compacted_resource_version_is_410_gone(cluster: Cluster,
                                                             namespace: str) -> None:
    """A real server (watch cache) answers 200 and one ERROR event with a 410 Expired Status.

    Only once its history no longer reaches back to resourceVersion 1: a young kube-apiserver
    (fresh etcd, watch cache never evicted) replays everything since 1 as ADDED events instead
    (seen on 1.36.2 ten minutes after a fresh start). That server cannot show the case: skipped,
    saying so; the emulator models an established server.
    """
    with cluster.http() as http:
        events = collect_events(http, f"/api/v1/namespaces/{namespace}/configmaps",
                                resourceVersion="1", timeoutSeconds="5",
                                until=lambda ev: len(ev) >= 1)
    if cluster.kind == "real" and events and events[0]["type"] == "ADDED":
        pytest.skip("this real server still holds its history from resourceVersion 1 (a young "
                    "server: fresh etcd, watch cache never evicted), so it replays instead of 410")
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: 1 (")


def test_bookmarks_when_asked(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        start = _make(http, namespace, "bm")
        http.patch(f"{path}/bm", headers=MERGE, json={"data": {"x": "1"}}).raise_for_status()
        events = collect_events(http, path, resourceVersion=start["metadata"]["resourceVersion"],
                                allowWatchBookmarks="true", timeoutSeconds="6",
                                until=lambda ev: ev[-1]["type"] == "BOOKMARK")
    assert events[0]["type"] == "MODIFIED"
    bookmark = events[-1]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["kind"] == "ConfigMap"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= \
        int(events[0]["object"]["metadata"]["resourceVersion"])


def test_no_bookmarks_unless_asked(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        start = _make(http, namespace, "quiet")
        events = collect_events(http, f"/api/v1/namespaces/{namespace}/configmaps",
                                resourceVersion=start["metadata"]["resourceVersion"],
                                fieldSelector="metadata.name=quiet", timeoutSeconds="3",
                                until=lambda ev: False)
    assert events == []  # and the stream ended by itself at timeoutSeconds


def test_watch_of_a_custom_resource(cluster: Cluster, namespace: str,
                                    widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("cw", namespace=namespace)).json()
        http.patch(widget_crd.path(namespace=namespace, name="cw", subresource="status"),
                   headers=MERGE,
                   json={"status": {"phase": "Up"}}).raise_for_status()
        events = collect_events(http, widget_crd.path(namespace=namespace),
                                resourceVersion=created["metadata"]["resourceVersion"],
                                timeoutSeconds="5", until=lambda ev: len(ev) >= 1)
    assert events[0]["type"] == "MODIFIED"
    assert events[0]["object"]["status"] == {"phase": "Up"}
    assert events[0]["object"]["apiVersion"] == widget_crd.api_version


@pytest.mark.parametrize(
    ("path", "columns"),
    [
        ("/api/v1/namespaces/{ns}/configmaps", [("Name", "string", 0), ("Data", "string", 0),
                                                ("Age", "string", 0)]),
        ("/api/v1/namespaces/{ns}/serviceaccounts", [("Name", "string", 0),
                                                     ("Age", "string", 0)]),
        ("/api/v1/namespaces/{ns}/events", [
            ("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
            ("Object", "string", 0), ("Subobject", "string", 1), ("Source", "string", 1),
            ("Message", "string", 0), ("First Seen", "string", 1), ("Count", "string", 1),
            ("Name", "string", 1)]),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", [
            ("Name", "string", 0), ("Role", "string", 0), ("Age", "string", 0),
            ("Users", "string", 1), ("Groups", "string", 1), ("ServiceAccounts", "string", 1)]),
        ("/api/v1/nodes", [
            ("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0),
            ("Age", "string", 0), ("Version", "string", 0), ("Internal-IP", "string", 1),
            ("External-IP", "string", 1), ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)]),
    ],
)
def test_built_in_tables_have_the_server_s_columns(cluster: Cluster, namespace: str, path: str,
                                                   columns: list[tuple[str, str, int]]) -> None:
    """The server prints the wide form: kubectl hides the priority-1 columns itself."""
    table_type = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    with cluster.http() as http:
        table = http.get(path.format(ns=namespace), headers={"Accept": table_type}).json()
    assert table["kind"] == "Table"
    assert [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]] == columns
