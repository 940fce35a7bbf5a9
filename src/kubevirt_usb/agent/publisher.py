"""Makes the USBDevice objects match what this node has plugged in: plans (`plan.plan_writes`),
writes, and plans again until nothing is left to write.

Every write is conflict-safe: creates fail if the name exists (another node's agent publishing a
twin under the same serial name won the race), updates and deletes carry the resourceVersion they
were planned from. A lost race costs one fresh read of that object and another planning round;
nothing is overwritten blindly. A write the API server rejects as invalid is logged and skipped
for this round; an unreachable or failing API server ends the round with the error (the caller
backs off and tries again).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from kubevirt_usb.agent.informer import DeviceCache
from kubevirt_usb.agent.plan import Create, Delete, Plan, SetLabels, SetStatus, Write, plan_writes
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import Conflict, Invalid, NotFound
from kubevirt_usb.kube.resources import API_VERSION, USBDevice
from kubevirt_usb.usb.model import UsbDevice

log = logging.getLogger(__name__)

MAX_ROUNDS = 5


@dataclass
class PublishResult:
    """What one publish did: writes by kind, lost races, rejected objects, and what is left."""

    writes: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    rejected: list[str] = field(default_factory=list)
    converged: bool = False
    plan: Plan = field(default_factory=Plan)


def _kind(write: Write) -> str:
    return {Create: "create", SetStatus: "status", SetLabels: "labels", Delete: "delete"}[
        type(write)]


class Publisher:
    """Publishes one node's devices through `client`, keeping `cache` up to date."""

    def __init__(self, client: KubeClient, cache: DeviceCache, *, node: str,
                 grace: dt.timedelta, on_write: Callable[[str], None] | None = None,
                 max_rounds: int = MAX_ROUNDS) -> None:
        self.client = client
        self.cache = cache
        self.node = node
        self.grace = grace
        self.on_write = on_write
        self.max_rounds = max_rounds

    async def publish(self, devices: Sequence[UsbDevice], *, now: dt.datetime,
                      unsure_ports: Collection[str] = ()) -> PublishResult:
        """Write until the objects match `devices` (or `max_rounds` rounds lost races)."""
        result = PublishResult()
        rejected: set[str] = set()
        for _ in range(self.max_rounds):
            result.plan = plan_writes(node=self.node, devices=devices,
                                      objects=self.cache.objects, now=now, grace=self.grace,
                                      unsure_ports=unsure_ports)
            writes = [w for w in result.plan.writes if w.name not in rejected]
            if not writes:
                result.converged = True
                break
            await self._execute(writes, result, rejected)
        result.rejected = sorted(rejected)
        return result

    async def _execute(self, writes: Sequence[Write], result: PublishResult,
                       rejected: set[str]) -> None:
        versions: dict[str, str] = {}
        failed: set[str] = set()
        for write in writes:
            if write.name in failed:
                continue
            try:
                await self._write(write, versions)
            except Conflict as exc:
                result.conflicts += 1
                failed.add(write.name)
                log.info("lost a race for %s, reading it again: %s", write.name, exc.message,
                         extra={"node": self.node, "device": write.name})
                await self.refresh(write.name)
            except NotFound:
                failed.add(write.name)
                self.cache.remove(write.name)
            except Invalid as exc:
                failed.add(write.name)
                rejected.add(write.name)
                log.warning("the API server rejected %s: %s", write.name, exc.message,
                            extra={"node": self.node, "device": write.name})
            else:
                result.writes[_kind(write)] += 1
                if self.on_write is not None:
                    self.on_write(_kind(write))

    async def _write(self, write: Write, versions: dict[str, str]) -> None:
        name = write.name
        extra = {"node": self.node, "device": name}
        if isinstance(write, Create):
            body = {"apiVersion": API_VERSION, "kind": "USBDevice",
                    "metadata": {"name": name, "labels": dict(write.labels)}, "spec": {}}
            self._hold(await self.client.create(USBDevice, body), versions)
            log.info("created %s", name, extra=extra)
        elif isinstance(write, SetStatus | SetLabels):
            version = write.resource_version or versions.get(name)
            if version is None:
                return  # planned after a create that did not happen
            if isinstance(write, SetStatus):
                patch = {"status": dict(write.status)}
                updated = await self.client.patch(USBDevice.Status, name, patch,
                                                  resource_version=version)
                log.info("%s: %s", write.reason, name,
                         extra={**extra, "fields": sorted(write.status)})
            else:
                updated = await self.client.patch(
                    USBDevice, name, {"metadata": {"labels": dict(write.labels)}},
                    resource_version=version)
            self._hold(updated, versions)
        else:
            await self.client.delete(USBDevice, name, resource_version=write.resource_version)
            self.cache.remove(name)
            log.info("deleted %s (%s)", name, write.reason, extra=extra)

    def _hold(self, obj: dict[str, object], versions: dict[str, str]) -> None:
        _, held = self.cache.put(obj)
        if held is not None:
            versions[held.name] = held.resource_version

    async def refresh(self, name: str) -> None:
        """Read one object again into the cache (forget it if it is gone)."""
        try:
            self.cache.put(await self.client.get(USBDevice, name))
        except NotFound:
            self.cache.remove(name)
