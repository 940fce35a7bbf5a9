"""The columns `kubectl get` shows for built-in kinds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubevirt_usb.apiserver.printers import builtin_columns, human_age

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
CREATED = "2030-01-01T11:59:00Z"


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "0s"), (5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600, "3h"),
    (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"), (3 * 86400 + 3600, "3d1h"), (30 * 86400, "30d"),
    (800 * 86400, "2y"),
])
def test_human_age(seconds: int, text: str) -> None:
    then = NOW - dt.timedelta(seconds=seconds)
    assert human_age(then.strftime("%Y-%m-%dT%H:%M:%SZ"), now=NOW) == text


def test_human_age_of_a_bad_timestamp() -> None:
    assert human_age("yesterday", now=NOW) == "<invalid>"


def _row(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    columns = builtin_columns(group, kind)
    return {c.name: c.cell(obj, NOW) for c in columns}


def test_configmaps_secrets_and_service_accounts_count_their_entries() -> None:
    meta = {"name": "x", "creationTimestamp": CREATED}
    assert _row("", "ConfigMap", {"metadata": meta, "data": {"a": "1", "b": "2"}}) == {
        "Name": "x", "Data": 2, "Age": "60s"}
    assert _row("", "Secret", {"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}) == {
        "Name": "x", "Type": "Opaque", "Data": 1, "Age": "60s"}
    assert _row("", "ServiceAccount", {"metadata": meta})["Secrets"] == 0


def test_pods() -> None:
    pod = {"metadata": {"name": "p", "creationTimestamp": CREATED},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
           "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [
               {"ready": True, "restartCount": 2}, {"ready": False, "restartCount": 1,
                                                    "state": {"waiting": {
                                                        "reason": "CrashLoopBackOff"}}}]}}
    assert _row("", "Pod", pod) == {"Name": "p", "Ready": "1/2", "Status": "CrashLoopBackOff",
                                    "Restarts": "3", "Age": "60s", "IP": "10.0.0.1",
                                    "Node": "n1"}
    assert _row("", "Pod", {"metadata": {"name": "q", "deletionTimestamp": CREATED}})[
        "Status"] == "Terminating"


def test_nodes() -> None:
    node = {"metadata": {"name": "n", "creationTimestamp": CREATED, "labels": {
        "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0"}}}
    assert _row("", "Node", node) == {"Name": "n", "Status": "Ready,SchedulingDisabled",
                                      "Roles": "control-plane,worker", "Age": "60s",
                                      "Version": "v1.30.0"}
    assert _row("", "Node", {"metadata": {"name": "bare"}})["Status"] == "Unknown"
    assert _row("", "Node", {"metadata": {"name": "bare"}})["Roles"] == "<none>"


def test_events_have_no_name_column() -> None:
    event = {"metadata": {"name": "e", "creationTimestamp": CREATED}, "type": "Normal",
             "reason": "Bound", "message": "ok", "lastTimestamp": "2030-01-01T11:58:00Z",
             "involvedObject": {"kind": "USBDevice", "name": "d"}}
    assert _row("", "Event", event) == {"Last Seen": "2m", "Type": "Normal",
                                        "Reason": "Bound", "Object": "usbdevice/d",
                                        "Message": "ok"}


def test_rbac_and_crds() -> None:
    meta = {"name": "r", "creationTimestamp": CREATED}
    assert _row("rbac.authorization.k8s.io", "Role", {"metadata": meta})["Created At"] == CREATED
    binding = {"metadata": meta, "roleRef": {"kind": "ClusterRole", "name": "view"}}
    assert _row("rbac.authorization.k8s.io", "RoleBinding", binding)["Role"] == \
        "ClusterRole/view"
    assert list(_row("apiextensions.k8s.io", "CustomResourceDefinition", {"metadata": meta})) \
        == ["Name", "Created At"]


def test_kinds_without_a_printer_show_name_and_age() -> None:
    assert [c.name for c in builtin_columns("apps", "Deployment")] == ["Name", "Age"]
