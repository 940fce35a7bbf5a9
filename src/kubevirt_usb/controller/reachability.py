"""Whether a node's agent is alive, from its heartbeat Lease, and the `Reachable` condition the
controller puts on that node's USBDevices.

Like the kubelet's node Leases, a heartbeat counts for `leaseDurationSeconds` from when the
controller saw it renewed (its own monotonic clock, so clock skew between nodes does not matter).
A node without a Lease is taken as reachable: only an agent that stopped renewing marks its
devices unreachable. A device gets a `Reachable` condition only once its node was unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.controller.events import Event, device_ref
from kubevirt_usb.controller.model import AgentLease, Device


@dataclass(frozen=True)
class Heartbeat:
    """The last renewal of one node's agent Lease the controller saw, and when it saw it."""

    node: str
    renew_time: str
    duration: float
    observed_at: float

    @property
    def expires_at(self) -> float:
        return self.observed_at + self.duration

    def alive(self, now: float) -> bool:
        return now < self.expires_at


def observe(previous: Heartbeat | None, lease: AgentLease, *, now: float) -> Heartbeat:
    """The heartbeat after seeing `lease` at `now`: renewed if anything in it changed."""
    if previous is not None and (previous.renew_time, previous.duration) == (
            lease.renew_time, lease.duration_seconds):
        return previous
    return Heartbeat(node=lease.node, renew_time=lease.renew_time,
                     duration=lease.duration_seconds, observed_at=now)


def unreachable_nodes(heartbeats: Iterable[Heartbeat], *, now: float) -> frozenset[str]:
    return frozenset(h.node for h in heartbeats if not h.alive(now))


@dataclass(frozen=True)
class PatchDeviceConditions:
    """Set the device's status.conditions."""

    device: str
    conditions: tuple[dict[str, Any], ...]
    events: tuple[Event, ...] = ()


def device_plan(device: Device, heartbeat: Heartbeat | None, *, now: float, now_text: str,
                lease: str) -> PatchDeviceConditions | None:
    """The Reachable condition write the device needs, if any (`lease` names the Lease)."""
    if heartbeat is None or device.node is None:
        return None
    alive = heartbeat.alive(now)
    if alive and device.reachable in (None, "True"):
        return None
    if not alive and device.reachable == "False":
        return None
    if alive:
        cond = {"type": "Reachable", "status": "True", "reason": "AgentHeartbeat",
                "message": f"the agent on {device.node} renews its heartbeat Lease {lease}",
                "lastTransitionTime": now_text}
        return PatchDeviceConditions(device=device.name, conditions=(cond,), events=(Event(
            about=device_ref(device.name, device.uid), type="Normal", reason="NodeReachable",
            message=f"the agent on {device.node} is back"),))
    message = (f"the agent on {device.node} has not renewed its heartbeat Lease {lease} for "
               f"{heartbeat.duration:g}s")
    cond = {"type": "Reachable", "status": "False", "reason": "AgentHeartbeatExpired",
            "message": message, "lastTransitionTime": now_text}
    return PatchDeviceConditions(device=device.name, conditions=(cond,), events=(Event(
        about=device_ref(device.name, device.uid), type="Warning", reason="NodeUnreachable",
        message=message),))
