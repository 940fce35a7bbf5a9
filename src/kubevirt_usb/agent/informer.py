"""The agent's picture of every USBDevice object in the cluster, kept current by list + watch and by
the answers to its own writes.

`DeviceCache` holds the objects by name. It never steps back to an older version of an object than
one it holds (so a watch event that lags behind the agent's own write does not undo it): the API
calls resourceVersions opaque, but etcd and the emulator use increasing integers, and only when
both versions are integers are they compared; otherwise the newest arrival wins.

`Informer.run` lists (in pages, so a big cluster is never decoded all at once), then watches
from the list's version; a watch that is too old (410 Gone) lists again at once, any other failure
after a jittered backoff. After each list it reports a change of everything
(`on_change(None, None)`); after each event, the object before and after.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from kubevirt_usb.agent.objects import DeviceObject, parse_object
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import Gone, KubeError
from kubevirt_usb.kube.objects import WatchEvent
from kubevirt_usb.kube.resources import USBDevice
from kubevirt_usb.kube.retry import Backoff, RandomSource, Retry, decide

Change = Callable[[DeviceObject | None, DeviceObject | None], None]
Sleep = Callable[[float], Awaitable[None]]
ErrorReport = Callable[[KubeError, int, float], None]

log = logging.getLogger(__name__)


def _version(rv: str) -> int | None:
    return int(rv) if rv.isdigit() else None


def is_older(candidate: str, held: str) -> bool:
    """True when both resourceVersions are integers and `candidate` is below `held`."""
    a, b = _version(candidate), _version(held)
    return a is not None and b is not None and a < b


class DeviceCache:
    """Every USBDevice object the agent knows, by name. Given the agent's node, it keeps of other
    nodes' objects only what identities need (`DeviceObject.slim`)."""

    def __init__(self, *, node: str | None = None) -> None:
        self.node = node
        self.objects: dict[str, DeviceObject] = {}
        self.synced = False

    def parse(self, item: Mapping[str, Any]) -> DeviceObject | None:
        """An object as this cache holds it (slim when it is another node's)."""
        obj = parse_object(item)
        if obj is None or self.node is None or obj.belongs_to(self.node):
            return obj
        return obj.slim()

    def replace(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Forget everything and hold exactly these objects (a fresh list)."""
        self.hold_only(obj for obj in map(self.parse, items) if obj is not None)

    def hold_only(self, objects: Iterable[DeviceObject]) -> None:
        """Forget everything and hold exactly these parsed objects."""
        self.objects = {obj.name: obj for obj in objects}
        self.synced = True

    def put(self, item: Mapping[str, Any]) -> tuple[DeviceObject | None, DeviceObject | None]:
        """Hold this version of an object unless a newer one is held; (before, after)."""
        obj = self.parse(item)
        if obj is None:
            return None, None
        before = self.objects.get(obj.name)
        if before is not None and is_older(obj.resource_version, before.resource_version):
            return before, before
        self.objects[obj.name] = obj
        return before, obj

    def remove(self, name: str, *, resource_version: str = "") -> DeviceObject | None:
        """Forget an object deleted at `resource_version` (ignored if a newer one is held)."""
        before = self.objects.get(name)
        if before is not None and is_older(resource_version, before.resource_version):
            return None
        return self.objects.pop(name, None)

    def apply(self, event: WatchEvent) -> tuple[DeviceObject | None, DeviceObject | None]:
        """Take a watch event into account; (before, after), after None once deleted."""
        if event.type == "DELETED":
            name = str((event.object.get("metadata") or {}).get("name") or "")
            held = self.objects.get(name)
            removed = self.remove(name, resource_version=event.resource_version)
            return (removed, None) if removed is not None else (held, held)
        if event.type in ("ADDED", "MODIFIED"):
            return self.put(event.object)
        return None, None


class Informer:
    """Keeps a `DeviceCache` current from the API: list, then watch, forever."""

    def __init__(self, client: KubeClient, cache: DeviceCache, *, on_change: Change,
                 on_error: ErrorReport | None = None, backoff: Backoff | None = None,
                 sleep: Sleep = asyncio.sleep, rand: RandomSource = random.random,
                 chunk_size: int = 100) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.cache = cache
        self.on_change = on_change
        self.on_error = on_error
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.sleep = sleep
        self.rand = rand

    async def sync(self) -> str:
        """List every USBDevice into the cache; returns the version to watch from."""
        fresh: list[DeviceObject] = []

        def keep(item: dict[str, Any]) -> None:
            obj = self.cache.parse(item)
            if obj is not None:
                fresh.append(obj)

        version = await self.client.list_each(USBDevice, keep, chunk_size=self.chunk_size)
        self.cache.hold_only(fresh)
        self.on_change(None, None)
        return version

    async def follow(self, resource_version: str) -> None:
        """Apply watch events from `resource_version` on, until the watch fails."""
        async for event in self.client.watch(USBDevice, resource_version=resource_version):
            before, after = self.cache.apply(event)
            if before is not after:
                self.on_change(before, after)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                version = await self.sync()
                attempt = 0
                await self.follow(version)
            except Gone:
                log.info("USBDevice watch expired; listing again")
                continue
            except Exception as exc:  # KubeError, or a bug: either way list again after a pause
                if not isinstance(exc, KubeError):
                    log.exception("watching USBDevices failed unexpectedly")
                    exc = KubeError(str(exc), reason=type(exc).__name__)
                attempt += 1
                decision = decide(exc, attempt=attempt, policy=self.backoff, rand=self.rand)
                delay = decision.after if isinstance(decision, Retry) else self.backoff.cap
                if self.on_error is not None:
                    self.on_error(exc, attempt, delay)
                await self.sleep(delay)
