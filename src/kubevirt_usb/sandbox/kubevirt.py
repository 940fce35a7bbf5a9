"""KubeVirt as the sandbox presents it to the API: the VirtualMachine and VirtualMachineInstance
CRDs, KubeVirt's aggregated roles, and the objects that mirror the QEMU guests (Node, VM, VMI).

Only the fields the project reads are modelled; everything else is preserved as KubeVirt would
store it. Pure functions: the cluster in a box writes what they return.
"""

from __future__ import annotations

import uuid
from typing import Any

from kubevirt_usb.sandbox.scenario import VMSpec

KUBEVIRT_GROUP = "kubevirt.io"
KUBEVIRT_VERSION = "v1"
SUBRESOURCES_GROUP = "subresources.kubevirt.io"
_AGG = "rbac.authorization.k8s.io/aggregate-to-"

_OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _kubevirt_crd(*, plural: str, kind: str, short: list[str],
                  columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{KUBEVIRT_GROUP}",
                     "labels": {"app.kubernetes.io/component": "kubevirt",
                                "kubevirt.io": ""}},
        "spec": {
            "group": KUBEVIRT_GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List", "shortNames": short,
                      "categories": ["all"]},
            "versions": [{
                "name": KUBEVIRT_VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"apiVersion": {"type": "string"},
                                   "kind": {"type": "string"},
                                   "metadata": {"type": "object"},
                                   "spec": _OPEN, "status": _OPEN},
                    "required": ["spec"]}},
            }],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The two KubeVirt CRDs the project reads, with KubeVirt's own printer columns."""
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ready = {"name": "Ready", "type": "string",
             "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}
    return [
        _kubevirt_crd(plural="virtualmachines", kind="VirtualMachine", short=["vm", "vms"],
                      columns=[age,
                               {"name": "Status", "type": "string",
                                "jsonPath": ".status.printableStatus"},
                               ready]),
        _kubevirt_crd(plural="virtualmachineinstances", kind="VirtualMachineInstance",
                      short=["vmi", "vmis"],
                      columns=[age,
                               {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                               {"name": "IP", "type": "string",
                                "jsonPath": ".status.interfaces[0].ipAddress"},
                               {"name": "NodeName", "type": "string",
                                "jsonPath": ".status.nodeName"},
                               ready]),
    ]


def _role(name: str, aggregate_to: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {f"{_AGG}{aggregate_to}": "true",
                                                  "kubevirt.io": ""}},
            "rules": rules}


def cluster_roles() -> list[dict[str, Any]]:
    """KubeVirt's aggregated user roles (since v1.4.0 admin and edit include usbredir)."""
    read = ["get", "list", "watch"]
    write = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    usbredir = {"apiGroups": [SUBRESOURCES_GROUP],
                "resources": ["virtualmachineinstances/usbredir"], "verbs": ["get"]}
    return [
        _role("kubevirt.io:admin", "admin", [
            {"apiGroups": [KUBEVIRT_GROUP],
             "resources": ["virtualmachines", "virtualmachineinstances"], "verbs": write},
            usbredir]),
        _role("kubevirt.io:edit", "edit", [
            {"apiGroups": [KUBEVIRT_GROUP],
             "resources": ["virtualmachines", "virtualmachineinstances"], "verbs": write},
            usbredir]),
        _role("kubevirt.io:view", "view", [
            {"apiGroups": [KUBEVIRT_GROUP],
             "resources": ["virtualmachines", "virtualmachineinstances"], "verbs": read}]),
    ]


def node_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
            "spec": {}}


def node_status(*, ready: bool, kernel_release: str) -> dict[str, Any]:
    """What a kubelet would report for a node guest: Ready while it runs, and what it runs.
    There is no kubelet in the box, so no kubeletVersion is claimed."""
    return {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": "NodeGuestRunning" if ready else "NodeGuestStopped",
                            "message": "the sandbox's QEMU node guest is "
                                       + ("running" if ready else "stopped")}],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                         "kernelVersion": kernel_release,
                         "osImage": "kubevirt-usb sandbox node (Debian kernel, busybox)"}}


def _devices(vm: VMSpec) -> dict[str, Any]:
    return {"clientPassthrough": {}} if vm.client_passthrough else {}


# virt-controller's namespace for a VMI's stable firmware UUID (pkg/virt-controller/watch/vm.go,
# setupStableFirmwareUUID: uuid.NewSHA1(firmwareUUIDns, vmi name), i.e. a name-based UUIDv5)
_FIRMWARE_UUID_NAMESPACE = uuid.UUID("6a1a24a1-4061-4607-8bf4-a3963d0c5895")


def firmware_uuid(vm_name: str) -> str:
    """The firmware UUID virt-controller gives the VMI of VM `vm_name`: stable across restarts."""
    return str(uuid.uuid5(_FIRMWARE_UUID_NAMESPACE, vm_name))


def _domain(vm: VMSpec) -> dict[str, Any]:
    """The VMI's domain as KubeVirt stores it once its controller and mutating webhook have
    filled in their defaults (the firmware UUID, machine type, CPU topology and model, the
    memory request): KubeVirt's console plugin reads `firmware` without checking it is there."""
    return {"devices": _devices(vm), "machine": {"type": "q35"},
            "firmware": {"uuid": firmware_uuid(vm.name)},
            "cpu": {"cores": 1, "sockets": 1, "threads": 1, "model": "host-model"},
            "resources": {"requests": {"memory": f"{vm.memory_mib}Mi"}}}


def vm_object(vm: VMSpec) -> dict[str, Any]:
    return {
        "apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}", "kind": "VirtualMachine",
        "metadata": {"name": vm.name, "namespace": vm.namespace,
                     "labels": {"kubevirt-usb.io/sandbox": "true"}},
        "spec": {"runStrategy": "Always", "template": {
            "metadata": {"labels": {"kubevirt.io/vm": vm.name}},
            "spec": {"domain": {"devices": _devices(vm), "machine": {"type": "q35"},
                                "resources": {"requests": {"memory": f"{vm.memory_mib}Mi"}}},
                     "architecture": "amd64"}}},
    }


def vm_status(*, running: bool) -> dict[str, Any]:
    return {"created": running, "ready": running,
            "printableStatus": "Running" if running else "Stopped",
            "conditions": [{"type": "Ready", "status": "True" if running else "False"}]}


def vmi_object(vm: VMSpec, *, vm_uid: str) -> dict[str, Any]:
    """A fresh VMI for the VM (the API server gives it a new uid, as each KubeVirt start does)."""
    return {
        "apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}", "kind": "VirtualMachineInstance",
        "metadata": {
            "name": vm.name, "namespace": vm.namespace,
            "labels": {"kubevirt.io/vm": vm.name, "kubevirt.io/nodeName": vm.node},
            "ownerReferences": [{"apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}",
                                 "kind": "VirtualMachine", "name": vm.name, "uid": vm_uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {"domain": _domain(vm), "architecture": "amd64"},
    }


def vmi_status(vm: VMSpec, *, phase: str,
               active_pods: dict[str, str] | None = None) -> dict[str, Any]:
    """The VMI's status; `active_pods` (launcher Pod uid -> node) as virt-controller records it."""
    ready = phase == "Running"
    extra = {"activePods": dict(active_pods)} if active_pods else {}
    return {"phase": phase, "nodeName": vm.node, **extra,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "guestOSInfo": {"id": "busybox"}}


LAUNCHER_CREATED_BY = "kubevirt.io/created-by"
"""The label virt-controller puts on a VMI's virt-launcher Pod: the VMI's uid."""


def launcher_pod_object(vm: VMSpec, *, vmi_uid: str, suffix: str) -> dict[str, Any]:
    """The VMI's virt-launcher Pod as virt-controller creates it (before it is scheduled and runs):
    `virt-launcher-<vm>-<suffix>` in the VMI's namespace, labelled with the VMI's uid, owned by
    the VMI, already bound to the VM's node (the box has no scheduler). The API gives it its uid,
    which names the stand-in's cgroup on the node."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"virt-launcher-{vm.name}-{suffix}", "namespace": vm.namespace,
            "labels": {"kubevirt.io": "virt-launcher", LAUNCHER_CREATED_BY: vmi_uid,
                       "vm.kubevirt.io/name": vm.name, "kubevirt.io/nodeName": vm.node},
            "ownerReferences": [{"apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}",
                                 "kind": "VirtualMachineInstance", "name": vm.name,
                                 "uid": vmi_uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {"nodeName": vm.node, "restartPolicy": "Never",
                 "containers": [{"name": "compute",
                                 "image": "kubevirt-usb-sandbox/virt-launcher-stand-in"}]},
    }


def launcher_pod_status(*, running: bool) -> dict[str, Any]:
    """A launcher Pod's status: Running (with its compute container ready) while the stand-in
    runs on the node, else Pending."""
    phase = "Running" if running else "Pending"
    flag = "True" if running else "False"
    return {"phase": phase, "hostIP": "10.0.2.15",
            "conditions": [{"type": "Ready", "status": flag},
                           {"type": "ContainersReady", "status": flag}],
            "containerStatuses": [{"name": "compute", "ready": running,
                                   "image": "kubevirt-usb-sandbox/virt-launcher-stand-in",
                                   "restartCount": 0, "started": running}]}
