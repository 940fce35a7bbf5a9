"""The seam between the sandbox and its API server: paths and the address the guests use."""

from __future__ import annotations

from kubevirt_usb.sandbox.controlplane import Resource, guest_server_url, removed_by_delete


def test_a_loopback_api_server_is_reached_from_the_guests_at_10_0_2_2() -> None:
    assert guest_server_url("https://127.0.0.1:6443", port=6443) == "https://10.0.2.2:6443"
    assert guest_server_url("https://localhost:6443", port=6443) == "https://10.0.2.2:6443"


def test_any_other_api_server_is_reached_as_it_is() -> None:
    assert guest_server_url("https://k8s.example:6443", port=6443) == "https://k8s.example:6443"


def test_resource_paths_follow_the_rest_layout() -> None:
    leases = Resource(group="coordination.k8s.io", version="v1", plural="leases")
    assert leases.path(namespace="ns", name="l") == \
        "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
    assert leases.api_version == "coordination.k8s.io/v1"
    nodes = Resource(group="", version="v1", plural="nodes", namespaced=False)
    assert nodes.path() == "/api/v1/nodes"
    assert nodes.api_version == "v1"


def test_a_delete_answer_says_whether_the_object_is_gone() -> None:
    assert removed_by_delete({"kind": "Status", "status": "Success", "details": {}})
    assert removed_by_delete({"kind": "Pod", "metadata": {"deletionTimestamp": "t",
                                                          "deletionGracePeriodSeconds": 0}})
    # a Pod bound to a node waits, Terminating, for its kubelet's confirmation
    assert not removed_by_delete({"kind": "Pod", "metadata": {
        "deletionTimestamp": "t", "deletionGracePeriodSeconds": 30}})
    assert not removed_by_delete({"kind": "VirtualMachineInstance", "metadata": {
        "deletionTimestamp": "t", "finalizers": ["kubevirt.io/x"]}})
