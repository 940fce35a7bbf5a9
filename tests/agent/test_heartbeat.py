"""The heartbeat Lease: its shape, when it counts as alive, and renewals through failures."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx2

from kubevirt_usb.agent.heartbeat import (
    Heartbeat,
    farewell_manifest,
    lease_alive,
    lease_manifest,
    lease_name,
)
from kubevirt_usb.clock import micro_time
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.kube.resources import Lease
from tests.kube.emulator import (
    NAMESPACE,
    Emulator,
    Fault,
    FaultyTransport,
    eventually,
    running,
)

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)


def test_lease_names_and_times() -> None:
    assert lease_name("node1") == "kubevirt-usb-agent-node1"
    huge = lease_name("n" * 253)
    assert len(huge) == 253
    assert huge != lease_name("n" * 252)
    assert micro_time(NOW) == "2024-05-01T12:00:00.250000Z"


def test_the_manifest_holds_who_when_and_how_long() -> None:
    lease = lease_manifest(name="l", namespace="ns", holder="node1", now=NOW,
                           duration_seconds=40)
    assert lease["spec"] == {"holderIdentity": "node1", "leaseDurationSeconds": 40,
                             "renewTime": "2024-05-01T12:00:00.250000Z"}
    assert lease["metadata"]["namespace"] == "ns"
    assert "annotations" not in lease["metadata"]
    noted = lease_manifest(name="l", namespace="ns", holder="node1", now=NOW,
                           duration_seconds=40, annotations={"example.com/a": "b"})
    assert noted["metadata"]["annotations"] == {"example.com/a": "b"}


def test_a_lease_is_alive_until_its_duration_runs_out() -> None:
    lease = lease_manifest(name="l", namespace="ns", holder="n", now=NOW, duration_seconds=40)
    assert lease_alive(lease, now=NOW + dt.timedelta(seconds=39))
    assert not lease_alive(lease, now=NOW + dt.timedelta(seconds=40))
    assert not lease_alive({"spec": {"renewTime": "soon", "leaseDurationSeconds": 40}}, now=NOW)
    assert not lease_alive({}, now=NOW)


def test_a_stopped_agent_leaves_its_lease_counting_for_the_restart_grace() -> None:
    """A restart on a busy node took 59 s from SIGTERM to the new agent's first renewal (the
    sandbox under load): the last renewal's 40 s ran out and the controller wrote every device
    unreachable and back. The Lease left at the stop counts for the restart grace instead."""
    last_renewal = lease_manifest(name="l", namespace="ns", holder="n", now=NOW,
                                  duration_seconds=40)
    stopped_at = NOW + dt.timedelta(seconds=5)
    left = farewell_manifest(name="l", namespace="ns", holder="n", now=stopped_at,
                             duration_seconds=40, restart_grace=120)
    slow_restart = stopped_at + dt.timedelta(seconds=59)
    assert not lease_alive(last_renewal, now=slow_restart)
    assert lease_alive(left, now=slow_restart)
    assert not lease_alive(left, now=stopped_at + dt.timedelta(seconds=120))
    assert left["spec"]["holderIdentity"] == "n"
    shorter = farewell_manifest(name="l", namespace="ns", holder="n", now=stopped_at,
                                duration_seconds=40, restart_grace=10)
    assert shorter["spec"]["leaseDurationSeconds"] == 40  # never less than a renewal gives


async def test_the_farewell_is_applied_like_a_renewal(cluster: Emulator) -> None:
    client = cluster.client()
    beat = Heartbeat(client, node="node1", namespace=NAMESPACE, clock=lambda: NOW,
                     restart_grace=120)
    try:
        assert await beat.renew()
        assert await beat.farewell() is None
        stored = await client.get(Lease, "kubevirt-usb-agent-node1", namespace=NAMESPACE)
    finally:
        await client.close()
    assert stored["spec"]["leaseDurationSeconds"] == 120
    assert lease_alive(stored, now=NOW + dt.timedelta(seconds=119))


async def test_renewals_create_then_move_the_renew_time(cluster: Emulator) -> None:
    times = iter([NOW, NOW + dt.timedelta(seconds=10)])
    client = cluster.client()
    beat = Heartbeat(client, node="node1", namespace=NAMESPACE, clock=lambda: next(times),
                     annotations={"usb.kubevirt-usb.io/usbredir-version": "0.13.0-2"})
    try:
        first = await beat.renew()
        second = await beat.renew()
        stored = await client.get(Lease, "kubevirt-usb-agent-node1", namespace=NAMESPACE)
    finally:
        await client.close()
    assert first["metadata"]["uid"] == second["metadata"]["uid"]
    assert stored["metadata"]["annotations"] == {
        "usb.kubevirt-usb.io/usbredir-version": "0.13.0-2"}
    assert stored["spec"]["holderIdentity"] == "node1"
    assert lease_alive(stored, now=NOW + dt.timedelta(seconds=49))
    assert not lease_alive(stored, now=NOW + dt.timedelta(seconds=51))


async def test_failed_renewals_are_retried_sooner_than_the_interval(cluster: Emulator) -> None:
    faults = [Fault("PATCH", "/leases/", 503, "ServiceUnavailable", times=2)]

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return FaultyTransport(inner, faults)

    results: list[str | None] = []
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    def on_result(exc: KubeError | None) -> None:
        results.append(exc.reason if exc else None)

    client = cluster.client(wrap=wrap)
    beat = Heartbeat(client, node="node1", namespace=NAMESPACE, interval=10.0,
                     clock=lambda: NOW, on_result=on_result, sleep=sleep, rand=lambda: 0.0,
                     monotonic=lambda: 100.0)
    try:
        async with running(beat.run()):
            await eventually(lambda: _done(results), what="a renewal after two failures")
    finally:
        await client.close()
    assert results[:3] == ["ServiceUnavailable", "ServiceUnavailable", None]
    assert delays[:3] == [0.25, 0.5, 10.0]


async def _done(results: list[str | None]) -> bool:
    return None in results


async def test_an_answer_that_cannot_be_decoded_does_not_stop_the_heartbeat(
        cluster: Emulator) -> None:
    faults = [Fault("PATCH", "/leases/", 200, "OK", body=b"{not json")]

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return FaultyTransport(inner, faults)

    results: list[str | None] = []

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    client = cluster.client(wrap=wrap)
    beat = Heartbeat(client, node="node1", namespace=NAMESPACE, clock=lambda: NOW,
                     on_result=lambda exc: results.append(exc.reason if exc else None),
                     sleep=sleep, rand=lambda: 0.0)
    try:
        async with running(beat.run()):
            await eventually(lambda: _done(results), what="a renewal after the bad answer")
    finally:
        await client.close()
    assert results[:2] == ["DecodeError", None]
