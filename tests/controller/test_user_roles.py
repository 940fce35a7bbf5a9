"""Isolation with the shipped roles (deploy/base/user-roles.yaml joined to Kubernetes' admin, edit
and view; deploy/base/controller-rbac.yaml for the controller): what a namespace's users can and
cannot do with USB devices, checked on the API's RBAC with ServiceAccount users."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.resources.core_v1 import Namespace, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import (
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
)

from kubevirt_usb.controller.manager import Controller
from kubevirt_usb.kube.client import KubeClient
from kubevirt_usb.kube.errors import Forbidden
from kubevirt_usb.kube.resources import USBAttachment, USBDevice, USBPolicy
from tests.controller.cluster import Kit

CONTROLLER_RBAC = Path(__file__).resolve().parents[2] / "deploy" / "base" / "controller-rbac.yaml"


async def other_namespace(kit: Kit) -> str:
    name = f"other-{kit.tag}"
    await kit.client.create(Namespace, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": name}})
    return name


def attachment(namespace: str, name: str, vm: str, **device: str) -> dict[str, Any]:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"vm": vm, "device": device}}


async def test_an_editor_attaches_only_in_their_own_namespace(kit: Kit) -> None:
    elsewhere = await other_namespace(kit)
    editor = await kit.user("alice", role="edit")
    await editor.create(USBAttachment, attachment(kit.namespace, "mine", "vm1"))
    with pytest.raises(Forbidden):
        await editor.create(USBAttachment, attachment(elsewhere, "theirs", "vm1"))
    await editor.patch(USBAttachment, "mine", {"spec": {"vm": "vm2"}}, namespace=kit.namespace)
    with pytest.raises(Forbidden):
        await editor.patch(USBAttachment.Status, "mine", {"status": {"phase": "Bound"}},
                           namespace=kit.namespace)
    await editor.delete(USBAttachment, "mine", namespace=kit.namespace)


async def test_an_editor_cannot_touch_devices_or_policies(kit: Kit) -> None:
    await kit.device("stick", serial="AAA1")
    editor = await kit.user("alice", role="edit")
    claim = {"namespace": kit.namespace, "attachment": "a", "vm": "vm1"}
    with pytest.raises(Forbidden):
        await editor.patch(USBDevice, kit.name("stick"), {"spec": {"claimRef": claim}})
    with pytest.raises(Forbidden):
        await editor.create(USBPolicy, {
            "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
            "metadata": {"name": kit.name("self-service")},
            "spec": {"namespaces": [kit.namespace]}})
    admin = await kit.user("boss", role="admin")
    with pytest.raises(Forbidden):
        await admin.patch(USBDevice, kit.name("stick"), {"spec": {"claimRef": claim}})
    assert ((await kit.get_device("stick")).get("spec") or {}).get("claimRef") is None


async def test_a_viewer_reads_but_cannot_attach(kit: Kit) -> None:
    await kit.vm("vm1")
    await kit.attach("a1", vm="vm1")
    viewer = await kit.user("carol", role="view")
    listed = await viewer.list(USBAttachment, namespace=kit.namespace)
    assert [a["metadata"]["name"] for a in listed.items] == ["a1"]
    with pytest.raises(Forbidden):
        await viewer.create(USBAttachment, attachment(kit.namespace, "a2", "vm1"))


async def test_a_vm_in_another_namespace_cannot_be_named(kit: Kit) -> None:
    elsewhere = await other_namespace(kit)
    await kit.vm("target", namespace=elsewhere)
    await kit.device("stick", serial="AAA1")
    await kit.allow(namespaces=[kit.namespace, elsewhere])
    editor = await kit.user("alice", role="edit")
    await kit.start_controller()
    await kit.attach("grab", vm="target", serial="AAA1", client=editor)
    refused = await kit.wait_phase("grab", "VMNotReady")
    assert refused["status"]["message"].startswith(f"VM {kit.namespace}/target does not exist")
    assert ((await kit.get_device("stick")).get("spec") or {}).get("claimRef") is None


async def test_a_device_no_policy_grants_the_namespace_cannot_be_claimed(kit: Kit) -> None:
    elsewhere = await other_namespace(kit)
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.allow(namespaces=[elsewhere])
    editor = await kit.user("alice", role="edit")
    await kit.start_controller()
    await kit.attach("a1", vm="vm1", serial="AAA1", client=editor)
    refused = await kit.wait_phase("a1", "NotAllowed")
    assert "kubectl usb allow --namespace" in refused["status"]["message"]
    assert ((await kit.get_device("stick")).get("spec") or {}).get("claimRef") is None


async def test_the_controller_works_with_its_shipped_least_privilege_rights(kit: Kit) -> None:
    client = await controller_identity(kit)
    await kit.vm("vm1")
    await kit.device("stick", serial="AAA1")
    await kit.allow()
    await kit.attach("a1", vm="vm1", serial="AAA1")
    controller = Controller(client, kit.options())
    task = asyncio.ensure_future(controller.run())
    kit.controllers.append(task)
    await kit.wait_phase("a1", "Bound")
    await kit.wait_event(name="a1", reason="Bound")
    await kit.client.delete(USBAttachment, "a1", namespace=kit.namespace)
    await kit.wait_gone("a1")
    assert controller.recorder.failed == 0


async def controller_identity(kit: Kit) -> KubeClient:
    """The ServiceAccount and roles of controller-rbac.yaml, moved into this test's
    namespace (and uniquely named, so a shared cluster keeps its own)."""
    kinds = {"ServiceAccount": ServiceAccount, "ClusterRole": ClusterRole,
             "ClusterRoleBinding": ClusterRoleBinding, "Role": Role,
             "RoleBinding": RoleBinding}
    for doc in yaml.safe_load_all(CONTROLLER_RBAC.read_text()):
        meta = doc["metadata"]
        if "namespace" in meta:
            meta["namespace"] = kit.system_namespace
        if doc["kind"].startswith("Cluster"):
            meta["name"] = kit.name(meta["name"])
        if "roleRef" in doc and doc["roleRef"]["kind"] == "ClusterRole":
            doc["roleRef"]["name"] = kit.name(doc["roleRef"]["name"])
        for subject in doc.get("subjects", []):
            subject["namespace"] = kit.system_namespace
        await kit.client.create(kinds[doc["kind"]], doc)
    token = await kit.token("kubevirt-usb-controller", kit.system_namespace)
    path = kit.cluster.kubeconfig_for(token, kit.tmp / "controller.kubeconfig")
    client = kit.cluster.client(kubeconfig=path, field_manager="kubevirt-usb-controller")
    kit.clients.append(client)
    return client
