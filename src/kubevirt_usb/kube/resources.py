"""The resource types the project reads and writes, as lightkube resource classes.

The project's own (`USBDevice` and `USBPolicy` cluster-scoped, `USBAttachment` namespaced) and
KubeVirt's (`VirtualMachine`, `VirtualMachineInstance`, kubevirt.io/v1) are lightkube generic
resources: plain dicts on the wire, each with a `.Status` subresource class. `Lease` is the
built-in coordination.k8s.io/v1 type.
"""

from __future__ import annotations

from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_global_resource,
    create_namespaced_resource,
)
from lightkube.resources.coordination_v1 import Lease

# The same as kubevirt_usb.models.GROUP/VERSION (a test keeps them equal); spelled out so that
# the agent does not build the pydantic models just to know them (about 5 MiB of memory).
GROUP = "usb.kubevirt-usb.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KUBEVIRT_GROUP = "kubevirt.io"
KUBEVIRT_VERSION = "v1"

USBDevice: type[GenericGlobalResource] = create_global_resource(
    GROUP, VERSION, "USBDevice", "usbdevices")
USBAttachment: type[GenericNamespacedResource] = create_namespaced_resource(
    GROUP, VERSION, "USBAttachment", "usbattachments")
USBPolicy: type[GenericGlobalResource] = create_global_resource(
    GROUP, VERSION, "USBPolicy", "usbpolicies")
VirtualMachine: type[GenericNamespacedResource] = create_namespaced_resource(
    KUBEVIRT_GROUP, KUBEVIRT_VERSION, "VirtualMachine", "virtualmachines")
VirtualMachineInstance: type[GenericNamespacedResource] = create_namespaced_resource(
    KUBEVIRT_GROUP, KUBEVIRT_VERSION, "VirtualMachineInstance", "virtualmachineinstances")
Pod: type[GenericNamespacedResource] = create_namespaced_resource("", "v1", "Pod", "pods")
"""Read as a plain dict (the agent finds virt-launcher pods for the node-local path); the typed
model would cost the agent memory for fields it never reads."""

__all__ = ["Lease", "Pod", "USBAttachment", "USBDevice", "USBPolicy", "VirtualMachine",
           "VirtualMachineInstance"]
