"""Live pages: list what a page shows, then follow the API's watches (with the user's token) and
send each re-rendered part of the page as a server-sent event, which htmx's SSE extension swaps
in. No polling of the API and no full reloads.

`load` and `stream` do the I/O; `apply_event` and `sse_message` are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevirt_usb.kube.objects import ObjectList, WatchEvent
from kubevirt_usb.web.kubeapi import APIFailure, Resource, Unauthenticated, UserClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]
EXPIRED = "expired"


@dataclass(frozen=True)
class Source:
    """One list a page shows (and watches): a resource, maybe in one namespace, maybe filtered."""

    key: str
    resource: Resource
    namespace: str | None = None
    field_selector: str | None = None


@dataclass
class SourceState:
    """What the user can see of one source now, or why they cannot."""

    objects: dict[str, Obj] = field(default_factory=dict)
    resource_version: str = ""
    error: APIFailure | None = None

    @property
    def items(self) -> list[Obj]:
        return list(self.objects.values())

    @classmethod
    def listed(cls, found: ObjectList) -> SourceState:
        return cls(objects={_key(o): o for o in found.items},
                   resource_version=found.resource_version)


Snapshot = Mapping[str, SourceState]
Render = Callable[[Snapshot], Mapping[str, str]]


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def apply_event(state: SourceState, event: WatchEvent) -> bool:
    """Fold one watch event into what is known; whether anything shown changed."""
    version = str((event.object.get("metadata") or {}).get("resourceVersion") or "")
    if version:
        state.resource_version = version
    if event.type == "BOOKMARK":
        return False
    key = _key(event.object)
    if event.type == "DELETED":
        return state.objects.pop(key, None) is not None
    if state.objects.get(key) == event.object:
        return False
    state.objects[key] = event.object
    return True


def sse_message(event: str, data: str) -> str:
    """One server-sent event; every line of `data` on its own `data:` line."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def load(client: UserClient, sources: Iterable[Source]) -> dict[str, SourceState]:
    """List every source once; a refusal is kept as that source's error (401 is raised)."""
    chosen = list(sources)

    async def one(source: Source) -> SourceState:
        try:
            return SourceState.listed(await client.list(
                source.resource, namespace=source.namespace,
                field_selector=source.field_selector))
        except Unauthenticated:
            raise
        except APIFailure as exc:
            return SourceState(error=exc)

    states = await asyncio.gather(*(one(s) for s in chosen))
    return {s.key: state for s, state in zip(chosen, states, strict=True)}


# ("event", (key, WatchEvent)) | ("reset", (key, SourceState)) | ("expired", None)
_Message = tuple[str, Any]


async def _follow(client: UserClient, source: Source, version: str,
                  queue: asyncio.Queue[_Message], *, retry: float) -> None:
    while True:
        try:
            async for event in client.watch(source.resource, resource_version=version,
                                            namespace=source.namespace,
                                            field_selector=source.field_selector):
                version = str((event.object.get("metadata") or {}).get("resourceVersion")
                              or version)
                await queue.put(("event", (source.key, event)))
            continue  # the server ended the watch normally: go on from where it stopped
        except Unauthenticated:
            await queue.put((EXPIRED, None))
            return
        except APIFailure as exc:
            if exc.code != 410:
                log.info("watch of %s failed (%s); listing again", source.key, exc.reason)
                await asyncio.sleep(retry)
        state = (await load(client, [source]))[source.key]
        version = state.resource_version
        await queue.put(("reset", (source.key, state)))
        if state.error is not None:
            await asyncio.sleep(retry)


async def _recheck(client: UserClient, signed_in: Callable[[], bool],
                   queue: asyncio.Queue[_Message], *, every: float) -> None:
    """Every `every` seconds, whether the user is still signed in and the API still takes
    their token: a watch already open goes on after its token is revoked or expires."""
    while True:
        await asyncio.sleep(every)
        if not signed_in():
            break
        try:
            await client.whoami()
        except Unauthenticated:
            break
        except APIFailure:
            pass  # unreachable or refused: the watches say so
    await queue.put((EXPIRED, None))


async def stream(client: UserClient, sources: Iterable[Source], render: Render, *,
                 expired_html: str = "", heartbeat: float = 15.0, settle: float = 0.1,
                 retry: float = 2.0, signed_in: Callable[[], bool] = lambda: True,
                 recheck: float = 30.0) -> AsyncGenerator[str, None]:
    """Server-sent events for a page: its parts now, then again whenever they change; when
    the user's token stops working or `signed_in()` says the session ended (asked, and the
    token checked, every `recheck` seconds), an `expired` event carrying `expired_html`."""
    chosen = list(sources)
    try:
        states = await load(client, chosen)
    except Unauthenticated:
        yield sse_message(EXPIRED, expired_html)
        return
    shown = dict(render(states))
    for name, html in shown.items():
        yield sse_message(name, html)
    queue: asyncio.Queue[_Message] = asyncio.Queue()
    tasks = [asyncio.create_task(_follow(client, s, states[s.key].resource_version, queue,
                                         retry=retry))
             for s in chosen if states[s.key].error is None]
    tasks.append(asyncio.create_task(_recheck(client, signed_in, queue, every=recheck)))
    try:
        while True:
            try:
                async with asyncio.timeout(heartbeat):  # not wait_for: see kubevirt_usb.tasks
                    first = await queue.get()
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            await asyncio.sleep(settle)  # let a burst of changes arrive and render once
            batch = [first]
            while not queue.empty():
                batch.append(queue.get_nowait())
            if any(kind == EXPIRED for kind, _ in batch):
                yield sse_message(EXPIRED, expired_html)
                return
            if not _fold(states, batch):
                continue
            for name, html in render(states).items():
                if shown.get(name) != html:
                    shown[name] = html
                    yield sse_message(name, html)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _fold(states: dict[str, SourceState], batch: list[_Message]) -> bool:
    changed = False
    for kind, payload in batch:
        if kind == "reset":
            key, state = payload
            states[key] = state
            changed = True
        else:
            key, event = payload
            changed = apply_event(states[key], event) or changed
    return changed
