"""Leader election through a coordination.k8s.io/v1 Lease, so two controller replicas never act
at once (client-go's leaderelection, reduced).

The Lease says who leads (`holderIdentity`), for how long a renewal counts
(`leaseDurationSeconds`), when it was taken (`acquireTime`) and last renewed (`renewTime`), and
how often it changed hands (`leaseTransitions`). Every write carries the resourceVersion it was
decided from, so of two candidates writing at once exactly one succeeds.

A candidate takes the Lease when nobody holds it or when its record has not changed for
`leaseDurationSeconds` by the candidate's own monotonic clock (never by comparing another
machine's timestamps). The leader renews every `retry_period`; when it could not renew for
`renew_deadline` (shorter than the lease duration) it stops acting before anyone else may start.
On a clean exit it releases the Lease so a successor starts at once.

`next_action` is the pure decision; `LeaderElector` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.clock import WallClock, micro_time, utc_now
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import AlreadyExists, Conflict, KubeError, NotFound
from kubevirt_usb.kube.resources import Lease

log = logging.getLogger(__name__)

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]



@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says about leadership."""

    holder: str | None
    duration: float
    renew_time: str | None
    acquire_time: str | None
    transitions: int
    resource_version: str


def parse_record(obj: Mapping[str, Any]) -> LeaseRecord:
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions")
    return LeaseRecord(
        holder=spec.get("holderIdentity") or None,
        duration=float(duration) if isinstance(duration, int | float) else 0.0,
        renew_time=spec.get("renewTime"), acquire_time=spec.get("acquireTime"),
        transitions=transitions if isinstance(transitions, int) else 0,
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""))


@dataclass(frozen=True)
class Seen:
    """The last record a candidate read, and (its clock) when that record last changed."""

    record: LeaseRecord | None
    since: float


def remember(seen: Seen | None, record: LeaseRecord | None, *, now: float) -> Seen:
    def identity(r: LeaseRecord | None) -> tuple[Any, ...] | None:
        return None if r is None else (r.holder, r.renew_time, r.duration, r.transitions)
    if seen is not None and identity(seen.record) == identity(record):
        return Seen(record=record, since=seen.since)
    return Seen(record=record, since=now)


@dataclass(frozen=True)
class Create:
    """No Lease yet: create it, holding it."""


@dataclass(frozen=True)
class Take:
    """Free or expired: take it over."""

    record: LeaseRecord


@dataclass(frozen=True)
class Renew:
    """Ours: renew it."""

    record: LeaseRecord


@dataclass(frozen=True)
class Wait:
    """Someone else's and alive: try again; it expires at `until` (candidate's clock)."""

    holder: str
    until: float


Action = Create | Take | Renew | Wait


def next_action(seen: Seen, *, identity: str, now: float) -> Action:
    record = seen.record
    if record is None:
        return Create()
    if record.holder == identity:
        return Renew(record)
    if record.holder is None or record.duration <= 0:
        return Take(record)
    until = seen.since + record.duration
    if now >= until:
        return Take(record)
    return Wait(holder=record.holder, until=until)


def lease_spec(*, identity: str, duration: float, now: dt.datetime, acquired: str | None,
               transitions: int) -> dict[str, Any]:
    stamp = micro_time(now)
    return {"holderIdentity": identity, "leaseDurationSeconds": max(1, round(duration)),
            "acquireTime": acquired or stamp, "renewTime": stamp,
            "leaseTransitions": transitions}



class LeaderElector:
    """Runs `lead()` only while holding the Lease `namespace/name` as `identity`."""

    def __init__(self, client: KubeClient, *, namespace: str, name: str, identity: str,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, release_on_exit: bool = True,
                 clock: Monotonic = time.monotonic, wall: WallClock = utc_now,
                 sleep: Sleep = asyncio.sleep) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration "
                             f"(got {retry_period}, {renew_deadline}, {lease_duration})")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_exit = release_on_exit
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.seen: Seen | None = None
        self.leading = False
        self.on_change: Callable[[bool], None] | None = None

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            log.info("%s %s leadership of Lease %s/%s", self.identity,
                     "acquired" if leading else "lost", self.namespace, self.name)
            if self.on_change is not None:
                self.on_change(leading)

    async def _read(self) -> LeaseRecord | None:
        try:
            return parse_record(await self.client.get(Lease, self.name,
                                                      namespace=self.namespace))
        except NotFound:
            return None

    async def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, then take, renew or leave it. True when we hold it."""
        record = await self._read()
        self.seen = remember(self.seen, record, now=self.clock())
        action = next_action(self.seen, identity=self.identity, now=self.clock())
        now = self.wall()
        try:
            if isinstance(action, Create):
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": lease_spec(identity=self.identity,
                                           duration=self.lease_duration, now=now,
                                           acquired=None, transitions=0)}
                written = await self.client.create(Lease, body)
            elif isinstance(action, Take | Renew):
                old = action.record
                taking = isinstance(action, Take)
                spec = lease_spec(identity=self.identity, duration=self.lease_duration,
                                  now=now, acquired=None if taking else old.acquire_time,
                                  transitions=old.transitions + (1 if taking else 0))
                written = await self.client.patch(Lease, self.name, {"spec": spec},
                                                  namespace=self.namespace,
                                                  resource_version=old.resource_version)
            else:
                return False
        except (AlreadyExists, Conflict):
            return False
        self.seen = Seen(record=parse_record(written), since=self.clock())
        return True

    async def release(self) -> None:
        """Give the Lease up (if still ours), so a successor need not wait for it to expire."""
        record = await self._read()
        if record is None or record.holder != self.identity:
            return
        spec = {"holderIdentity": None, "leaseDurationSeconds": 1,
                "renewTime": micro_time(self.wall())}
        with contextlib.suppress(Conflict, NotFound):
            await self.client.patch(Lease, self.name, {"spec": spec}, namespace=self.namespace,
                                    resource_version=record.resource_version)

    async def _acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except KubeError as exc:
                log.warning("cannot read or take Lease %s/%s: %s", self.namespace, self.name,
                            exc.message)
            await self.sleep(self.retry_period)

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        """Renew every retry period; return when renewals failed for `renew_deadline`, or when
        `task` ended."""
        last = self.clock()
        while not task.done():
            waiter = asyncio.ensure_future(self.sleep(self.retry_period))
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                return
            try:
                if await self.try_acquire_or_renew():
                    last = self.clock()
                    continue
                holder = self.seen.record.holder if self.seen and self.seen.record else None
                if holder not in (None, self.identity):
                    return  # taken over: stop at once
            except KubeError as exc:
                log.warning("renewing Lease %s/%s failed: %s", self.namespace, self.name,
                            exc.message)
            if self.clock() - last >= self.renew_deadline:
                return

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Lead whenever elected, until `lead()` returns or raises, or this is cancelled."""
        while True:
            await self._acquire()
            self._set_leading(True)
            task: asyncio.Task[None] = asyncio.ensure_future(lead())
            try:
                await self._renew_until_lost(task)
            finally:
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(task, return_exceptions=True)
                self._set_leading(False)
                if self.release_on_exit:
                    with contextlib.suppress(KubeError):
                        await asyncio.shield(self.release())
            if task.done() and not task.cancelled():
                task.result()  # lead() failed: raise its error
                return

