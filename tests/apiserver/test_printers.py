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


def test_configmaps_and_secrets_count_their_entries_and_service_accounts_do_not() -> None:
    meta = {"name": "x", "creationTimestamp": CREATED}
    assert _row("", "ConfigMap", {"metadata": meta, "data": {"a": "1", "b": "2"},
                                  "binaryData": {"c": "AA=="}}) == {
        "Name": "x", "Data": 3, "Age": "60s"}
    assert _row("", "Secret", {"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}) == {
        "Name": "x", "Type": "Opaque", "Data": 1, "Age": "60s"}
    assert _row("", "ServiceAccount", {"metadata": meta}) == {"Name": "x", "Age": "60s"}
    assert [c.type for c in builtin_columns("", "ConfigMap")] == ["string"] * 3


def test_pods() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p", "creationTimestamp": CREATED},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
           "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [
               {"ready": True, "restartCount": 2}, {"ready": False, "restartCount": 1,
                                                    "state": {"waiting": {
                                                        "reason": "CrashLoopBackOff"}}}]}}
    assert _row("", "Pod", pod) == {"Name": "p", "Ready": "1/2", "Status": "CrashLoopBackOff",
                                    "Restarts": "3", "Age": "60s", "IP": "10.0.0.1",
                                    "Node": "n1", "Nominated Node": "<none>",
                                    "Readiness Gates": "<none>"}
    pod["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"finishedAt": "2030-01-01T11:55:00Z"}}
    pod["spec"]["readinessGates"] = [{"conditionType": "g1"}, {"conditionType": "g2"}]
    pod["status"]["conditions"] = [{"type": "g1", "status": "True"}]
    row = _row("", "Pod", pod)
    assert (row["Restarts"], row["Readiness Gates"]) == ("3 (5m ago)", "1/2")
    assert [c.priority for c in builtin_columns("", "Pod")] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert _row("", "Pod", {"metadata": {"name": "q", "deletionTimestamp": CREATED}})[
        "Status"] == "Terminating"


def test_nodes() -> None:
    node: dict[str, Any] = {"metadata": {"name": "n", "creationTimestamp": CREATED, "labels": {
        "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0"}}}
    node["status"]["addresses"] = [{"type": "InternalIP", "address": "10.0.2.15"}]
    node["status"]["nodeInfo"] |= {"kernelVersion": "6.1.0", "architecture": "amd64"}
    assert _row("", "Node", node) == {"Name": "n", "Status": "Ready,SchedulingDisabled",
                                      "Roles": "control-plane,worker", "Age": "60s",
                                      "Version": "v1.30.0", "Internal-IP": "10.0.2.15",
                                      "External-IP": "<none>", "OS-Image": "<unknown>",
                                      "Kernel-Version": "6.1.0 (amd64)",
                                      "Container-Runtime": "<unknown>"}
    assert _row("", "Node", {"metadata": {"name": "bare"}})["Status"] == "Unknown"
    assert _row("", "Node", {"metadata": {"name": "bare"}})["Roles"] == "<none>"


def test_events_print_their_name_only_wide() -> None:
    event = {"metadata": {"name": "e", "creationTimestamp": CREATED}, "type": "Normal",
             "reason": "Bound", "message": "ok ", "lastTimestamp": "2030-01-01T11:58:00Z",
             "firstTimestamp": "2030-01-01T11:50:00Z", "count": 4,
             "source": {"component": "kubevirt-usb-controller"},
             "involvedObject": {"kind": "USBDevice", "name": "d"}}
    assert _row("", "Event", event) == {
        "Last Seen": "2m", "Type": "Normal", "Reason": "Bound", "Object": "usbdevice/d",
        "Subobject": "", "Source": "kubevirt-usb-controller", "Message": "ok",
        "First Seen": "10m", "Count": 4, "Name": "e"}
    assert [c.name for c in builtin_columns("", "Event") if c.priority == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message"]
    new_style = {"metadata": {"name": "n"}, "eventTime": "2030-01-01T11:59:30.123456Z",
                 "reportingComponent": "c", "reportingInstance": "i", "involvedObject": {}}
    row = _row("", "Event", new_style)
    assert (row["Last Seen"], row["First Seen"], row["Count"], row["Source"]) == (
        "30s", "30s", 1, "c, i")


def test_rbac_and_crds() -> None:
    meta = {"name": "r", "creationTimestamp": CREATED}
    assert _row("rbac.authorization.k8s.io", "Role", {"metadata": meta})["Created At"] == CREATED
    binding: dict[str, Any] = {"metadata": meta,
                               "roleRef": {"kind": "ClusterRole", "name": "view"}}
    binding["subjects"] = [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "g"},
                           {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"},
                           {"kind": "User", "name": "bob"}]
    assert _row("rbac.authorization.k8s.io", "RoleBinding", binding) == {
        "Name": "r", "Role": "ClusterRole/view", "Age": "60s", "Users": "alice, bob",
        "Groups": "g", "ServiceAccounts": "ns/sa"}
    assert list(_row("apiextensions.k8s.io", "CustomResourceDefinition", {"metadata": meta})) \
        == ["Name", "Created At"]


def test_kinds_without_a_printer_show_name_and_age() -> None:
    assert [c.name for c in builtin_columns("apps", "Deployment")] == ["Name", "Age"]
