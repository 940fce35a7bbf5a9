"""Leader election through a coordination.k8s.io Lease: the decision, and two candidates on a real
API."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from kubevirt_usb.controller.leader import (
    Create,
    LeaderElector,
    LeaseRecord,
    Renew,
    Seen,
    Take,
    Wait,
    lease_spec,
    next_action,
    parse_record,
    remember,
)
from kubevirt_usb.kube.resources import Lease
from tests.controller.cluster import Kit, wait_for


def record(holder: str | None, *, renew: str = "r1", duration: float = 10) -> LeaseRecord:
    return LeaseRecord(holder=holder, duration=duration, renew_time=renew, acquire_time="a",
                       transitions=2, resource_version="7")


def test_who_acts_on_a_lease() -> None:
    assert next_action(Seen(None, 0), identity="me", now=0) == Create()
    assert next_action(Seen(record("me"), 0), identity="me", now=99) == Renew(record("me"))
    assert next_action(Seen(record(None), 0), identity="me", now=0) == Take(record(None))
    assert next_action(Seen(record("you"), 5), identity="me", now=14) == Wait("you", 15)
    assert next_action(Seen(record("you"), 5), identity="me", now=15) == Take(record("you"))


def test_expiry_counts_from_the_last_change_seen() -> None:
    seen = remember(None, record("you"), now=5)
    assert remember(seen, record("you"), now=9).since == 5  # unchanged
    assert remember(seen, record("you", renew="r2"), now=9).since == 9  # renewed


def test_the_lease_record_round_trip() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    spec = lease_spec(identity="me", duration=15.4, now=now, acquired=None, transitions=3)
    assert spec == {"holderIdentity": "me", "leaseDurationSeconds": 15,
                    "acquireTime": "2026-01-02T03:04:05.600000Z",
                    "renewTime": "2026-01-02T03:04:05.600000Z", "leaseTransitions": 3}
    parsed = parse_record({"metadata": {"resourceVersion": "9"}, "spec": spec})
    assert (parsed.holder, parsed.duration, parsed.transitions, parsed.resource_version) == (
        "me", 15.0, 3, "9")


def elector(kit: Kit, identity: str, *, release: bool = True) -> LeaderElector:
    return LeaderElector(kit.cluster.client(field_manager=identity),
                         namespace=kit.system_namespace, name="election", identity=identity,
                         lease_duration=2.0, renew_deadline=1.5, retry_period=0.1,
                         release_on_exit=release)


async def test_one_leads_and_the_other_takes_over_after_a_crash(kit: Kit) -> None:
    acting: list[str] = []
    leading: set[str] = set()
    most = 0

    def lead(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal most
            leading.add(name)
            acting.append(name)
            most = max(most, len(leading))
            try:
                await asyncio.Event().wait()
            finally:
                leading.discard(name)
        return run

    first, second = elector(kit, "first", release=False), elector(kit, "second", release=False)
    t1 = asyncio.ensure_future(first.run(lead("first")))
    await wait_for(lambda: _true(first.leading), what="first leads")
    t2 = asyncio.ensure_future(second.run(lead("second")))
    await wait_for(lambda: _true(second.seen is not None and second.seen.record is not None
                                 and second.seen.record.holder == "first"),
                   what="second sees first holding the Lease")
    assert acting == ["first"]
    assert not second.leading

    t1.cancel()  # a crash: the Lease is not released
    await asyncio.gather(t1, return_exceptions=True)
    crashed = asyncio.get_running_loop().time()
    await wait_for(lambda: _true(second.leading), what="second takes over", timeout=20)
    assert asyncio.get_running_loop().time() - crashed >= 1.0  # waited for the expiry
    assert acting == ["first", "second"]
    assert most == 1
    lease = await kit.client.get(Lease, "election", namespace=kit.system_namespace)
    assert lease["spec"]["holderIdentity"] == "second"
    assert lease["spec"]["leaseTransitions"] == 1
    t2.cancel()
    await asyncio.gather(t2, return_exceptions=True)
    for e in (first, second):
        await e.client.close()


async def test_a_released_lease_is_taken_at_once(kit: Kit) -> None:
    first, second = elector(kit, "first"), elector(kit, "second")
    done = asyncio.Event()

    async def short_term() -> None:
        await done.wait()

    t1 = asyncio.ensure_future(first.run(short_term))
    await wait_for(lambda: _true(first.leading), what="first leads")
    done.set()
    await asyncio.wait_for(t1, 10)  # lead() returned: released
    lease = await kit.client.get(Lease, "election", namespace=kit.system_namespace)
    assert lease["spec"].get("holderIdentity") is None
    assert await second.try_acquire_or_renew()  # no need to wait for an expiry
    for e in (first, second):
        await e.client.close()


async def test_a_leader_whose_lease_is_taken_stops_acting(kit: Kit) -> None:
    first = elector(kit, "first", release=False)
    stopped = asyncio.Event()

    async def lead() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    task = asyncio.ensure_future(first.run(lead))
    await wait_for(lambda: _true(first.leading), what="first leads")
    await kit.client.patch(Lease, "election", {"spec": {"holderIdentity": "usurper",
                                                        "leaseDurationSeconds": 60}},
                           namespace=kit.system_namespace)
    await asyncio.wait_for(stopped.wait(), 10)
    assert not first.leading
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.client.close()


async def _true(value: bool) -> bool:
    return value
