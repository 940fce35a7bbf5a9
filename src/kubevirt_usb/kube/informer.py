"""A local copy of every object of one resource type, kept current by list + watch and by the
answers to the holder's own writes (the client-go informer, reduced to what the project needs).

`Informer.run()` lists, reports each difference to `on_change(old, new)` (`old` None: added;
`new` None: deleted), sets `synced`, then watches from the list's resourceVersion. A watch that
is too old (410 Gone) lists again at once; any other failure lists again after a jittered backoff.

`Informer.observe(obj)` takes an object a write returned, so the copy does not lag behind the
holder's own writes. The copy never steps back: resourceVersions are opaque to clients, but
etcd and the emulator use increasing integers, and when both versions are integers an older one
is ignored (otherwise the newest arrival wins).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from kubevirt_usb.kube.client import ResourceType
from kubevirt_usb.kube.errors import Gone, KubeError
from kubevirt_usb.kube.objects import Obj, ObjectList, WatchEvent
from kubevirt_usb.kube.retry import Backoff, RandomSource, Retry, decide

log = logging.getLogger(__name__)

Key = tuple[str, str]
Change = Callable[[Obj | None, Obj | None], None]
Sleep = Callable[[float], Awaitable[None]]
RELIST_BACKOFF = Backoff(base=0.5, cap=30.0)


class ListWatch(Protocol):
    """What an informer needs of a client (`KubeClient` has it)."""

    async def list(self, res: ResourceType, *, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> ObjectList: ...

    def watch(self, res: ResourceType, *, resource_version: str, namespace: str | None = None,
              labels: Mapping[str, str] | None = None) -> AsyncIterator[WatchEvent]: ...


def object_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: Mapping[str, Any]) -> int | None:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else None


def is_newer(candidate: Mapping[str, Any], held: Mapping[str, Any] | None) -> bool:
    """Whether `candidate` should replace `held` (see the module docstring)."""
    if held is None:
        return True
    a, b = _version(candidate), _version(held)
    if a is None or b is None:
        return True
    return a > b


class Informer:
    """Every object of `resource` (in `namespace`, with `labels`), by (namespace, name)."""

    def __init__(self, client: ListWatch, resource: ResourceType, *, on_change: Change,
                 namespace: str | None = None, labels: Mapping[str, str] | None = None,
                 backoff: Backoff = RELIST_BACKOFF, sleep: Sleep = asyncio.sleep,
                 rand: RandomSource = random.random) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.labels = dict(labels) if labels else None
        self.on_change = on_change
        self.backoff = backoff
        self.sleep = sleep
        self.rand = rand
        self.store: dict[Key, Obj] = {}
        self.synced = asyncio.Event()

    @property
    def kind(self) -> str:
        return str(getattr(self.resource, "__name__", self.resource))

    def observe(self, obj: Obj) -> None:
        """Take an object a write (or a get) returned."""
        key = object_key(obj)
        held = self.store.get(key)
        if is_newer(obj, held):
            self.store[key] = obj
            self.on_change(held, obj)

    def forget(self, obj: Obj) -> None:
        """Drop an object known to be gone (a delete that completed)."""
        held = self.store.pop(object_key(obj), None)
        if held is not None:
            self.on_change(held, None)

    def replace(self, items: list[Obj]) -> None:
        """Hold exactly `items` (a fresh list), reporting every difference."""
        fresh = {object_key(item): item for item in items}
        for key in [k for k in self.store if k not in fresh]:
            self.on_change(self.store.pop(key), None)
        for key, item in fresh.items():
            held = self.store.get(key)
            if held is None or is_newer(item, held):
                self.store[key] = item
                self.on_change(held, item)

    def apply(self, kind: str, obj: Obj) -> None:
        """Take one watch event."""
        if kind == "DELETED":
            self.forget(obj)
        elif kind in ("ADDED", "MODIFIED"):
            self.observe(obj)

    async def run(self) -> None:
        """List and watch until cancelled."""
        attempt = 0
        while True:
            try:
                listed = await self.client.list(self.resource, namespace=self.namespace,
                                                labels=self.labels)
                self.replace(listed.items)
                self.synced.set()
                attempt = 0
                async for event in self.client.watch(
                        self.resource, namespace=self.namespace, labels=self.labels,
                        resource_version=listed.resource_version):
                    self.apply(event.type, event.object)
            except Gone:
                log.info("watch of %s expired: listing again", self.kind)
            except KubeError as exc:
                attempt += 1
                decision = decide(exc, attempt=attempt, policy=self.backoff, rand=self.rand)
                delay = decision.after if isinstance(decision, Retry) else self.backoff.cap
                log.warning("watching %s failed (%s): listing again in %.1fs", self.kind,
                            exc.message, delay)
                await self.sleep(delay)
