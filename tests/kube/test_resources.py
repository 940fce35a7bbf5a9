"""The resource types map to the API paths Kubernetes and KubeVirt serve them at."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.resource import api_info

from kubevirt_usb.kube.resources import (
    Lease,
    USBAttachment,
    USBDevice,
    USBPolicy,
    VirtualMachine,
    VirtualMachineInstance,
)


@pytest.mark.parametrize(("res", "api_version", "plural", "namespaced"), [
    (USBDevice, "usb.kubevirt-usb.io/v1alpha1", "usbdevices", False),
    (USBAttachment, "usb.kubevirt-usb.io/v1alpha1", "usbattachments", True),
    (USBPolicy, "usb.kubevirt-usb.io/v1alpha1", "usbpolicies", False),
    (VirtualMachine, "kubevirt.io/v1", "virtualmachines", True),
    (VirtualMachineInstance, "kubevirt.io/v1", "virtualmachineinstances", True),
    (Lease, "coordination.k8s.io/v1", "leases", True),
])
def test_each_type_has_its_group_version_plural_and_scope(
        res: Any, api_version: str, plural: str, namespaced: bool) -> None:
    from lightkube.core.resource import NamespacedResource

    info = api_info(res)
    assert (info.resource.api_version, info.plural) == (api_version, plural)
    assert issubclass(res, NamespacedResource) is namespaced


def test_the_project_types_have_a_status_subresource() -> None:
    for res in (USBDevice, USBAttachment):
        info = api_info(res.Status)
        assert (info.action, info.plural) == ("status", api_info(res).plural)


def test_the_group_and_version_are_the_models() -> None:
    from kubevirt_usb import models
    from kubevirt_usb.kube import resources

    assert (resources.GROUP, resources.VERSION, resources.API_VERSION) == (
        models.GROUP, models.VERSION, models.API_VERSION)
