"""Carrying out plans against a real API: preconditions, lost races, and Events after success."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubevirt_usb.controller.decide import ApplyStatus, Bind, PatchMetadata, Plan, Release
from kubevirt_usb.controller.events import Event, device_ref
from kubevirt_usb.controller.model import Claim, parse_attachment
from kubevirt_usb.controller.reachability import PatchDeviceConditions
from kubevirt_usb.controller.reconciler import Executor, Outcome, Sinks
from kubevirt_usb.kube.objects import Obj
from kubevirt_usb.kube.resources import USBDevice
from tests.controller.cluster import Kit


@dataclass
class Seen:
    objects: list[Obj] = field(default_factory=list)
    gone: list[Obj] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def sinks(self) -> Sinks:
        return Sinks(attachment=self.objects.append, attachment_gone=self.gone.append,
                     device=self.objects.append, device_gone=self.gone.append,
                     event=self.events.append)


def event(reason: str) -> Event:
    return Event(about=device_ref("d", "u"), type="Normal", reason=reason, message="m")


async def test_of_two_binds_from_the_same_version_exactly_one_wins(kit: Kit) -> None:
    device = await kit.device("d", serial="S")
    rv = device["metadata"]["resourceVersion"]
    seen = Seen()
    executor = Executor(kit.client, seen.sinks())
    plans = [Plan((Bind(device=kit.name("d"), resource_version=rv,
                        claim=Claim(namespace=kit.namespace, attachment=n, vm="vm1"),
                        events=(event(n),)),)) for n in ("a", "b")]
    outcomes = [await executor.run((kit.namespace, n), p, None)
                for n, p in zip("ab", plans, strict=True)]
    assert outcomes == [Outcome.DONE, Outcome.AGAIN]
    assert [e.reason for e in seen.events] == ["a"]  # only the successful step's Events
    fresh = seen.objects[-1]  # the loser re-read the device
    assert fresh["spec"]["claimRef"]["attachment"] == "a"
    claim = (await kit.get_device("d"))["spec"]["claimRef"]
    assert claim["attachment"] == "a"


async def test_metadata_then_status_each_from_the_version_the_last_write_returned(
        kit: Kit) -> None:
    await kit.vm("vm1")
    created = await kit.attach("a1", vm="vm1")
    a = parse_attachment(created)
    assert a is not None
    seen = Seen()
    plan = Plan((PatchMetadata(finalizers=("x/y",)),
                 ApplyStatus(status={"phase": "Pending", "message": "hi"},
                             events=(event("S"),))))
    assert await Executor(kit.client, seen.sinks()).run((kit.namespace, "a1"), plan, a) \
        is Outcome.DONE
    now = await kit.attachment("a1")
    assert now is not None
    assert now["metadata"]["finalizers"] == ["x/y"]
    assert now["status"]["message"] == "hi"
    # the same plan from the old version loses the race and re-reads the attachment
    stale = Executor(kit.client, seen.sinks())
    assert await stale.run((kit.namespace, "a1"), plan, a) is Outcome.AGAIN
    assert seen.objects[-1]["metadata"]["resourceVersion"] == now["metadata"]["resourceVersion"]


async def test_a_claim_is_released_only_when_its_attachment_is_really_gone(kit: Kit) -> None:
    await kit.vm("vm1")
    created = await kit.attach("a1", vm="vm1")
    claim = Claim(namespace=kit.namespace, attachment="a1", vm="vm1",
                  uid=created["metadata"]["uid"])
    device = await kit.device("d", serial="S", claim=claim.to_dict())
    release = Release(device=kit.name("d"), resource_version=device["metadata"][
        "resourceVersion"], claim=claim, verify_gone=True)
    seen = Seen()
    executor = Executor(kit.client, seen.sinks())
    assert await executor.run((kit.namespace, "a1"), Plan((release,)), None) is Outcome.AGAIN
    assert seen.objects[-1]["metadata"]["name"] == "a1"  # the cache learns it exists
    assert (await kit.get_device("d"))["spec"]["claimRef"]["attachment"] == "a1"
    ghost = Claim(namespace=kit.namespace, attachment="ghost", vm="vm1", uid="x")
    await kit.client.patch(USBDevice, kit.name("d"), {"spec": {"claimRef": ghost.to_dict()}})
    fresh = await kit.get_device("d")
    release = Release(device=kit.name("d"), resource_version=fresh["metadata"][
        "resourceVersion"], claim=ghost, verify_gone=True)
    assert await executor.run((kit.namespace, "ghost"), Plan((release,)), None) is Outcome.DONE
    assert (await kit.get_device("d"))["spec"].get("claimRef") is None


async def test_device_conditions_are_written_with_their_events(kit: Kit) -> None:
    await kit.device("d", serial="S")
    seen = Seen()
    cond = {"type": "Reachable", "status": "False", "reason": "R", "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    await Executor(kit.client, seen.sinks()).mark_device(
        PatchDeviceConditions(device=kit.name("d"), conditions=(cond,),
                              events=(event("NodeUnreachable"),)))
    written = await kit.get_device("d")
    assert written["status"]["conditions"] == [cond]
    assert written["status"]["serial"] == "S"  # the agent's fields are untouched
    assert [e.reason for e in seen.events] == ["NodeUnreachable"]
