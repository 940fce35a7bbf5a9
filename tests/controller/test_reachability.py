"""Agent heartbeats: alive, expired, and the Reachable condition on devices."""

from __future__ import annotations

from kubevirt_usb.controller.model import AgentLease, Device
from kubevirt_usb.controller.reachability import (
    Heartbeat,
    device_plan,
    observe,
    unreachable_nodes,
)

LEASE = AgentLease(node="n1", renew_time="r1", duration_seconds=10)


def test_a_heartbeat_counts_from_when_it_was_seen() -> None:
    seen = observe(None, LEASE, now=100.0)
    assert seen.expires_at == 110.0
    assert observe(seen, LEASE, now=105.0) is seen  # unchanged: no renewal
    renewed = observe(seen, AgentLease(node="n1", renew_time="r2", duration_seconds=10),
                      now=105.0)
    assert renewed.expires_at == 115.0
    assert unreachable_nodes([seen, Heartbeat("n2", "r", 10, 200.0)], now=111.0) == {"n1"}


def test_devices_are_marked_only_once_their_node_was_unreachable() -> None:
    device = Device(name="d", node="n1")
    alive = Heartbeat("n1", "r", 10, 100.0)
    assert device_plan(device, alive, now=105, now_text="T", lease="ns/l") is None
    assert device_plan(device, None, now=500, now_text="T", lease="ns/l") is None
    step = device_plan(device, alive, now=111, now_text="T", lease="ns/l")
    assert step is not None
    assert step.conditions[0]["status"] == "False"
    assert step.conditions[0]["reason"] == "AgentHeartbeatExpired"
    assert step.conditions[0]["message"] == ("the agent on n1 has not renewed its heartbeat "
                                             "Lease ns/l for 10s")
    assert step.events[0].reason == "NodeUnreachable"
    marked = Device(name="d", node="n1", reachable="False")
    assert device_plan(marked, alive, now=111, now_text="T", lease="ns/l") is None
    back = device_plan(marked, alive, now=105, now_text="T", lease="ns/l")
    assert back is not None
    assert back.conditions[0]["status"] == "True"
