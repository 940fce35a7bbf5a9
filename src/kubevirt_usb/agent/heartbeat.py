"""The node agent's heartbeat: a coordination.k8s.io/v1 Lease per node, renewed every few seconds.

The Lease `kubevirt-usb-agent-<node>` (in the agent's namespace) says who holds it (the node),
when it was last renewed (`renewTime`) and for how long that counts (`leaseDurationSeconds`), as
the kubelet's node Leases do. A node whose Lease was not renewed within its duration has a dead
or cut-off agent (`lease_alive`): its devices' `present` can no longer be trusted. This is also
why the agent does not rewrite `lastSeen` on every scan: the Lease is the one write per period
that says "everything this node published is still true".

Renewals are one server-side apply each (field manager kubevirt-usb-agent, forced: the agent is
the Lease's only writer), which also creates the Lease the first time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubevirt_usb.clock import WallClock, micro_time
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.kube.resources import Lease
from kubevirt_usb.kube.retry import Backoff, RandomSource, Retry, decide

log = logging.getLogger(__name__)

LEASE_PREFIX = "kubevirt-usb-agent-"
MAX_NAME = 253
Sleep = Callable[[float], Awaitable[None]]


def lease_name(node: str) -> str:
    """The heartbeat Lease's name for a node (shortened with a hash if the node name is huge)."""
    name = f"{LEASE_PREFIX}{node}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9].rstrip('-.')}-{digest}"



def lease_manifest(*, name: str, namespace: str, holder: str, now: dt.datetime,
                   duration_seconds: int, annotations: Mapping[str, str] | None = None
                   ) -> dict[str, Any]:
    """The Lease as the agent applies it at `now` (`annotations`: facts about the node's agent
    that do not change while it runs, such as its usbredir library)."""
    metadata: dict[str, Any] = {
        "name": name, "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "kubevirt-usb-agent"}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_seconds,
                 "renewTime": micro_time(now)},
    }


def farewell_manifest(*, name: str, namespace: str, holder: str, now: dt.datetime,
                      duration_seconds: int, restart_grace: int,
                      annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Lease an agent leaves when it is stopped (SIGTERM): renewed now, counting for the
    restart grace. A restart (a new agent, a DaemonSet rollout) that takes less than that, as
    starting on a busy node can take longer than a lease duration, keeps the node's devices
    reachable instead of flipping every one to unreachable and back; an agent that does not come
    back is told by the grace running out, as a crashed one is by its lease duration."""
    return lease_manifest(name=name, namespace=namespace, holder=holder, now=now,
                          duration_seconds=max(restart_grace, duration_seconds),
                          annotations=annotations)


def lease_alive(lease: Mapping[str, Any], *, now: dt.datetime) -> bool:
    """Whether a Lease was renewed within its duration (an unreadable Lease is not alive)."""
    spec = lease.get("spec") or {}
    renewed, duration = spec.get("renewTime"), spec.get("leaseDurationSeconds")
    if not isinstance(renewed, str) or not isinstance(duration, int):
        return False
    try:
        moment = dt.datetime.fromisoformat(renewed)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return now < moment + dt.timedelta(seconds=duration)


class Heartbeat:
    """Renews one node's Lease every `interval` seconds, retrying failures with backoff."""

    def __init__(self, client: KubeClient, *, node: str, namespace: str, name: str | None = None,
                 duration_seconds: int = 40, interval: float = 10.0, restart_grace: int = 120,
                 clock: WallClock,
                 annotations: Mapping[str, str] | None = None,
                 on_result: Callable[[KubeError | None], None] | None = None,
                 sleep: Sleep = asyncio.sleep, rand: RandomSource = random.random,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.node = node
        self.namespace = namespace
        self.name = name or lease_name(node)
        self.duration_seconds = duration_seconds
        self.restart_grace = restart_grace
        self.annotations = dict(annotations or {})
        self.interval = interval
        self.clock = clock
        self.on_result = on_result
        self.sleep = sleep
        self.rand = rand
        self.monotonic = monotonic

    async def renew(self) -> dict[str, Any]:
        """Apply the Lease once, now."""
        manifest = lease_manifest(name=self.name, namespace=self.namespace, holder=self.node,
                                  now=self.clock(), duration_seconds=self.duration_seconds,
                                  annotations=self.annotations)
        return await self.client.apply(Lease, manifest, force=True)

    async def farewell(self) -> KubeError | None:
        """Leave the Lease counting for the restart grace (`farewell_manifest`), once; the
        failure, if any (the agent stops all the same)."""
        manifest = farewell_manifest(name=self.name, namespace=self.namespace, holder=self.node,
                                     now=self.clock(), duration_seconds=self.duration_seconds,
                                     restart_grace=self.restart_grace,
                                     annotations=self.annotations)
        try:
            await self.client.apply(Lease, manifest, force=True)
        except KubeError as exc:
            return exc
        return None

    async def _try_renew(self) -> KubeError | None:
        """Renew once; the failure, if any (a bug is logged and reported like an API error)."""
        try:
            await self.renew()
        except KubeError as exc:
            return exc
        except Exception as exc:  # a bug must not stop the heartbeat
            log.exception("heartbeat failed unexpectedly", extra={"node": self.node})
            return KubeError(str(exc), reason=type(exc).__name__)
        return None

    async def run(self) -> None:
        attempt = 0
        policy = Backoff(base=0.5, cap=self.interval)
        while True:
            started = self.monotonic()
            failure = await self._try_renew()
            if failure is not None:
                attempt += 1
                decision = decide(failure, attempt=attempt, policy=policy, rand=self.rand)
                delay = decision.after if isinstance(decision, Retry) else self.interval
                log.warning("heartbeat failed (attempt %d, next in %.1fs): %s", attempt, delay,
                            failure.message, extra={"node": self.node, "reason": failure.reason})
            else:
                # every `interval` from the start of the renewal: a slow API server does not
                # stretch the period
                attempt, delay = 0, max(0.0, self.interval - (self.monotonic() - started))
            if self.on_result is not None:
                self.on_result(failure)
            await self.sleep(delay)
