"""`kubectl usb status` and `kubectl usb watch`."""

from __future__ import annotations

import datetime as dt
import json

from kubevirt_usb.clock import rfc3339
from kubevirt_usb.kubectl_usb.exitcodes import ExitCode
from tests.kubectl_usb.cluster import Cluster, LineReader, one_line_error

AAA1 = "46f4-0001-aaa1"
NAME = f"vm1-{AAA1}"


def attached(cluster: Cluster) -> None:
    assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
    since = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30, seconds=20))
    cluster.bind(AAA1, attachment=NAME, vm="vm1", bytesToVM=64 * 1024 * 1024,
                 bytesFromVM=4096, reconnects=2, lastError="websocket closed: 1006",
                 attachedSince=since, path="Local", pathReason="SameNode", slot=3,
                 slotKind="Direct",
                 pathMessage="The VM runs on this node: streaming straight into usb-redir slot 3.")


def test_status_shows_phase_device_node_traffic_since_and_errors(cluster: Cluster) -> None:
    attached(cluster)
    result = cluster.kubectl("usb", "status")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "VM", "PHASE", "DEVICE", "NODE", "PATH", "TO-VM",
                                "FROM-VM", "SINCE", "MESSAGE"]
    assert lines[1].split()[:9] == [NAME, "vm1", "Attached", AAA1, "node1", "Local", "64.0MiB",
                                    "4.0KiB", "30m"]
    assert lines[1].endswith("last error: websocket closed: 1006")
    wide = cluster.run("status", "-o", "wide").out.splitlines()
    assert wide[0].split()[-5:] == ["RECONNECTS", "LAST-ERROR", "SELECTOR", "PATH-REASON", "SLOT"]
    assert wide[1].split()[-8:] == ["2", "websocket", "closed:", "1006", AAA1, "SameNode", "3",
                                    "(Direct)"]
    as_json = json.loads(cluster.run("status", "-o", "json").out)
    st = as_json["items"][0]["status"] if "items" in as_json else as_json["status"]
    assert (st["path"], st["pathReason"], st["slot"], st["slotKind"]) == (
        "Local", "SameNode", 3, "Direct")
    assert st["pathMessage"].startswith("The VM runs on this node")


def test_status_of_one_vm_or_attachment(cluster: Cluster) -> None:
    attached(cluster)
    by_vm = cluster.run("status", "vm1", "-o", "name")
    by_name = cluster.run("status", NAME, "-o", "name")
    assert by_vm.out == by_name.out == f"usbattachment.usb.kubevirt-usb.io/{NAME}\n"
    none = cluster.run("status", "vm2")
    assert (none.code, none.err) == (0, "VM default/vm2 has no USB devices attached\n")
    unknown = cluster.run("status", "vm9")
    assert unknown.code == ExitCode.NOT_FOUND
    assert one_line_error(unknown) == ('error: no USB attachment or VM named "vm9" in namespace '
                                       '"default"')
    everywhere = cluster.run("status", "-A", "vm9")
    assert everywhere.code == ExitCode.NOT_FOUND
    assert one_line_error(everywhere) == ('error: no USB attachment named "vm9" in any namespace, '
                                          'nor a VM named so in namespace "default"')


def test_a_name_that_cannot_name_anything_is_a_usage_error(cluster: Cluster) -> None:
    result = cluster.run("status", "vm1/status")
    assert result.code == ExitCode.USAGE
    assert "'vm1/status' is not a valid VM or attachment name" in one_line_error(result)


def test_status_as_json(cluster: Cluster) -> None:
    attached(cluster)
    items = json.loads(cluster.run("status", "-o", "json").out)["items"]
    assert [(i["metadata"]["name"], i["status"]["phase"]) for i in items] == [(NAME,
                                                                                "Attached")]


def test_status_of_every_namespace(cluster: Cluster) -> None:
    attached(cluster)
    lines = cluster.run("status", "-A").out.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert lines[1].split()[:2] == ["default", NAME]
    assert cluster.run("status", "-n", "lab").err == "No USB attachments in namespace lab.\n"


def test_watch_prints_a_line_per_change_and_stops_on_ctrl_c(cluster: Cluster) -> None:
    reader = LineReader(cluster.start("watch"))
    try:
        reader.wait_for(lambda line: line.startswith("NAME"), within=30, what="the header")
        assert cluster.run("attach", "--serial", "AAA1", "vm1").code == 0
        reader.wait_for(lambda line: line.startswith(NAME) and "Pending" in line, within=30,
                        what="the new attachment")
        cluster.set_phase(NAME, "Attached", device=AAA1, node="node1")
        reader.wait_for(lambda line: "Attached" in line, within=30, what="the phase change")
        assert cluster.run("detach", "vm1", "--no-wait").code == 0
        reader.wait_for(lambda line: "Deleted" in line, within=30, what="the deletion")
    finally:
        code = reader.interrupt()
    assert code == 0
    header = reader.lines[0]
    change = next(line for line in reader.lines if "Attached" in line)
    assert header.index("PHASE") == change.index("Attached")


def test_watch_devices(cluster: Cluster) -> None:
    reader = LineReader(cluster.start("watch", "--devices"))
    try:
        reader.wait_for(lambda line: line.startswith("46f4-0001-aaa2"), within=30,
                        what="the device list")
        cluster.claim("46f4-0001-aaa2", attachment="x", vm="vm1")
        line = reader.wait_for(lambda line: line.startswith("46f4-0001-aaa2") and
                               "default/vm1" in line, within=30, what="the claim")
        assert "InUse" in line
    finally:
        assert reader.interrupt() == 0


def test_watch_ends_without_a_traceback_when_its_reader_goes_away(cluster: Cluster) -> None:
    process = cluster.start("watch", "--devices")
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith("NAME")
    process.stdout.close()  # as `kubectl usb watch --devices | head -1` does
    cluster.claim("46f4-0001-aaa2", attachment="x", vm="vm1")
    code = process.wait(timeout=60)
    err = process.stderr.read()
    process.stderr.close()
    assert (code, err) == (1, "")  # click's exit for a closed pipe, and nothing else
