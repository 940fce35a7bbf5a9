"""Carrying out a plan: each step is one write with a resourceVersion precondition (merge patches;
server-side apply for the attachment's status), its answer goes straight into the controller's
cache, and its Events are emitted once it succeeded.

A step that loses a race (409 Conflict) or finds its object gone re-reads that object into the
cache and ends the plan: the caller reconciles again from the fresh state. So one reconcile
costs at most one write per step plus one read when a race was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubevirt_usb.controller.decide import ApplyStatus, Bind, PatchMetadata, Plan, Release, Step
from kubevirt_usb.controller.events import Event
from kubevirt_usb.controller.model import Attachment, Key
from kubevirt_usb.controller.reachability import PatchDeviceConditions
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import Conflict, NotFound
from kubevirt_usb.kube.objects import Obj
from kubevirt_usb.kube.resources import USBAttachment, USBDevice
from kubevirt_usb.models import API_VERSION

log = logging.getLogger(__name__)


class Outcome(Enum):
    DONE = "done"
    AGAIN = "again"  # lost a race or found something gone: reconcile again from fresh state


@dataclass
class Sinks:
    """Where write answers and Events go."""

    attachment: Callable[[Obj], None]
    attachment_gone: Callable[[Obj], None]
    device: Callable[[Obj], None]
    device_gone: Callable[[Obj], None]
    event: Callable[[Event], None]


class Executor:
    def __init__(self, client: KubeClient, sinks: Sinks) -> None:
        self.client = client
        self.sinks = sinks
        self.writes = 0

    async def run(self, key: Key, plan: Plan, attachment: Attachment | None) -> Outcome:
        version = attachment.resource_version if attachment is not None else ""
        for step in plan.steps:
            try:
                result = await self._step(key, step, version)
            except Conflict:
                await self._refresh(key, step)
                return Outcome.AGAIN
            except NotFound:
                await self._refresh(key, step)
                return Outcome.AGAIN
            if result is None:
                return Outcome.AGAIN
            if isinstance(step, PatchMetadata | ApplyStatus):
                version = result
            for event in step.events:
                self.sinks.event(event)
        return Outcome.DONE

    async def _step(self, key: Key, step: Step, version: str) -> str | None:
        """Do one step; returns the attachment's new resourceVersion (or "" for device
        writes), None when the step was skipped and the plan must be decided again."""
        namespace, name = key
        self.writes += 1
        if isinstance(step, PatchMetadata):
            metadata: dict[str, Any] = {"finalizers": list(step.finalizers)}
            if step.owner_references is not None:
                metadata["ownerReferences"] = [dict(o) for o in step.owner_references]
            patch = {"metadata": metadata}
            obj = await self.client.patch(USBAttachment, name, patch, namespace=namespace,
                                          resource_version=version)
            meta = obj.get("metadata") or {}
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self.sinks.attachment_gone(obj)
            else:
                self.sinks.attachment(obj)
            return str(meta.get("resourceVersion") or "")
        if isinstance(step, ApplyStatus):
            body = {"apiVersion": API_VERSION, "kind": "USBAttachment",
                    "metadata": {"name": name, "namespace": namespace,
                                 "resourceVersion": version},
                    "status": dict(step.status)}
            obj = await self.client.apply(USBAttachment.Status, body, force=True)
            self.sinks.attachment(obj)
            return str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if isinstance(step, Release):
            if step.verify_gone and not await self._really_gone(step):
                return None
            obj = await self.client.patch(USBDevice, step.device, {"spec": {"claimRef": None}},
                                          resource_version=step.resource_version)
            self.sinks.device(obj)
            return ""
        if isinstance(step, Bind):
            obj = await self.client.patch(USBDevice, step.device,
                                          {"spec": {"claimRef": step.claim.to_dict()}},
                                          resource_version=step.resource_version)
            self.sinks.device(obj)
            return ""
        raise TypeError(f"unknown step {step!r}")

    async def _really_gone(self, step: Release) -> bool:
        """Whether the attachment a claim names is really gone (the cache may lag)."""
        claim = step.claim
        self.writes += 1
        try:
            obj = await self.client.get(USBAttachment, claim.attachment,
                                        namespace=claim.namespace)
        except NotFound:
            return True
        uid = (obj.get("metadata") or {}).get("uid")
        self.sinks.attachment(obj)
        return bool(claim.uid) and claim.uid != uid

    async def _refresh(self, key: Key, step: Step) -> None:
        namespace, name = key
        try:
            if isinstance(step, Release | Bind):
                self.sinks.device(await self.client.get(USBDevice, step.device))
            else:
                self.sinks.attachment(await self.client.get(USBAttachment, name,
                                                            namespace=namespace))
        except NotFound:
            gone = {"metadata": {"name": step.device if isinstance(step, Release | Bind)
                                 else name, "namespace": "" if isinstance(step, Release | Bind)
                                 else namespace}}
            if isinstance(step, Release | Bind):
                self.sinks.device_gone(gone)
            else:
                self.sinks.attachment_gone(gone)

    async def mark_device(self, step: PatchDeviceConditions) -> None:
        obj = await self.client.patch(USBDevice.Status, step.device,
                                      {"status": {"conditions": list(step.conditions)}})
        self.writes += 1
        self.sinks.device(obj)
        for event in step.events:
            self.sinks.event(event)
