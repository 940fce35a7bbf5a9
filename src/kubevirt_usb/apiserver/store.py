"""The object store: every object of every resource, one cluster-wide resourceVersion counter, and
the event history that watches replay from.

Objects are plain dicts and are never mutated once stored (writers build a new dict), so reads hand
out stored objects without copying and a watch event can be encoded once for all watchers.
Everything here runs on the event loop's thread: each operation is atomic with respect to others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

GroupResource = tuple[str, str]
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Obj = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StoreEvent:
    """One change: the object after it (before it, for DELETED) and the object before it."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    group_resource: GroupResource
    obj: Obj
    old: Obj | None
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False)


class TooOldResourceVersion(Exception):
    def __init__(self, *, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(eq=False)
class Watcher:
    """A subscription to the changes of one resource (optionally one namespace)."""

    group_resource: GroupResource
    namespace: str | None
    queue: asyncio.Queue[StoreEvent | None] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def offer(self, event: StoreEvent) -> None:
        if self.closed or event.group_resource != self.group_resource:
            return
        if self.namespace is not None:
            meta = event.obj.get("metadata", {})
            if meta.get("namespace", "") != self.namespace:
                return
        self.queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


@dataclass
class Store:
    history_size: int = 10_000
    _rv: int = 1
    _compacted: int = 0  # resourceVersion of the newest event dropped from the history
    _objects: dict[GroupResource, dict[ObjectKey, Obj]] = field(default_factory=dict)
    _history: deque[StoreEvent] = field(default_factory=deque)
    _watchers: dict[GroupResource, set[Watcher]] = field(default_factory=dict)
    _listeners: list[Callable[[StoreEvent], None]] = field(default_factory=list)

    @property
    def resource_version(self) -> int:
        return self._rv

    def next_resource_version(self) -> int:
        self._rv += 1
        return self._rv

    def get(self, gr: GroupResource, namespace: str, name: str) -> Obj | None:
        return self._objects.get(gr, {}).get((namespace, name))

    def items(self, gr: GroupResource, namespace: str | None = None) -> list[Obj]:
        """Objects of a resource in key order (namespace, name), optionally of one namespace."""
        bucket = self._objects.get(gr, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def items_at(self, gr: GroupResource, namespace: str | None, rv: int) -> list[Obj]:
        """Objects as they were at resourceVersion `rv` (undoing later events from the history);
        TooOldResourceVersion when those events were compacted away."""
        if rv >= self._rv:
            return self.items(gr, namespace)
        if rv < self._compacted:
            raise TooOldResourceVersion(requested=rv, oldest=self._compacted + 1)
        bucket = dict(self._objects.get(gr, {}))
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.group_resource != gr:
                continue
            meta = event.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if event.type == "ADDED" or event.old is None:
                bucket.pop(key, None)
            else:
                bucket[key] = event.old
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def count(self, gr: GroupResource) -> int:
        return len(self._objects.get(gr, {}))

    def resources(self) -> Iterable[GroupResource]:
        return list(self._objects)

    def put(self, gr: GroupResource, obj: Obj) -> Obj:
        """Store `obj` (already carrying its new resourceVersion) and announce it."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        bucket = self._objects.setdefault(gr, {})
        old = bucket.get(key)
        bucket[key] = obj
        self._emit(StoreEvent(rv=int(meta["resourceVersion"]), type="MODIFIED" if old else "ADDED",
                              group_resource=gr, obj=obj, old=old))
        return obj

    def remove(self, gr: GroupResource, obj: Obj) -> None:
        """Remove the object; `obj` is its final state carrying the deletion's resourceVersion."""
        meta = obj["metadata"]
        old = self._objects.get(gr, {}).pop((meta.get("namespace", ""), meta["name"]), None)
        self._emit(StoreEvent(rv=int(meta["resourceVersion"]), type="DELETED", group_resource=gr,
                              obj=obj, old=old))

    def compact(self) -> None:
        """Forget the whole event history, as etcd compaction does."""
        if self._history:
            self._compacted = self._history[-1].rv
            self._history.clear()

    def drop_resource(self, gr: GroupResource) -> None:
        self._objects.pop(gr, None)

    def _emit(self, event: StoreEvent) -> None:
        self._history.append(event)
        if len(self._history) > self.history_size:
            self._compacted = self._history.popleft().rv
        for watcher in self._watchers.get(event.group_resource, ()):
            watcher.offer(event)
        for listener in self._listeners:
            listener(event)

    def add_listener(self, listener: Callable[[StoreEvent], None]) -> None:
        """In-process reactions to every change (garbage collection, CRD registration...)."""
        self._listeners.append(listener)

    def watch(self, gr: GroupResource, *, namespace: str | None, since: int) -> Watcher:
        """Events after resourceVersion `since`, replayed from history, then live."""
        if since < self._compacted:
            raise TooOldResourceVersion(requested=since, oldest=self._compacted + 1)
        watcher = Watcher(group_resource=gr, namespace=namespace)
        for event in self._history:
            if event.rv > since:
                watcher.offer(event)
        self._watchers.setdefault(gr, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        watcher.close()
        self._watchers.get(watcher.group_resource, set()).discard(watcher)

    def close_watchers(self, gr: GroupResource | None = None) -> None:
        for key, watchers in list(self._watchers.items()):
            if gr is None or key == gr:
                for w in watchers:
                    w.close()
                watchers.clear()

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())
