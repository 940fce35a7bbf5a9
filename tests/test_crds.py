"""The CRDs: generated from the models, shipped unchanged, and refusing bad input with a clear
message (checked by the API emulator's structural-schema validation, as kube-apiserver does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubevirt_usb import crds
from kubevirt_usb.apiserver.server import BackgroundAPIServer, ServerOptions

SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "base" / "crds.yaml"
GROUP_PATH = "/apis/usb.kubevirt-usb.io/v1alpha1"


def test_the_shipped_crds_are_the_generated_ones() -> None:
    assert SHIPPED.read_text() == crds.render_yaml(), (
        "deploy/base/crds.yaml is stale: run `kubevirt-usb crds > deploy/base/crds.yaml`")


def test_names_scopes_subresources_and_columns() -> None:
    shipped = {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(SHIPPED.read_text())}
    expected = {"USBDevice": ("Cluster", ["usbdev"]), "USBAttachment": ("Namespaced", ["usba"]),
                "USBPolicy": ("Cluster", ["usbpol"])}
    for kind, (scope, short) in expected.items():
        spec = shipped[kind]["spec"]
        assert (spec["scope"], spec["names"]["shortNames"]) == (scope, short)
        version = spec["versions"][0]
        assert version["additionalPrinterColumns"], kind
        assert ("status" in version.get("subresources", {})) is (kind != "USBPolicy")
    columns = [c["name"] for c in shipped["USBAttachment"]["spec"]["versions"][0][
        "additionalPrinterColumns"]]
    assert columns[:4] == ["VM", "Phase", "Device", "Node"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    state = tmp_path_factory.mktemp("apiserver")
    background = BackgroundAPIServer(ServerOptions(state_dir=state, manifests=[
        *yaml.safe_load_all(SHIPPED.read_text())]))
    server = background.start()
    with httpx.Client(base_url=server.url, verify=server.ssl_context(),
                      headers={"Authorization": f"Bearer {server.admin_token}"}) as client:
        yield client
    background.stop()


def attachment(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
            "metadata": {"generateName": "a-"}, "spec": spec}


@pytest.mark.parametrize(("spec", "field", "says"), [
    ({"vm": "vm1", "device": {"vendorId": "12345"}}, "spec.device.vendorId", "^[0-9a-f]{4}$"),
    ({"vm": "vm1", "device": {"productId": "zz"}}, "spec.device.productId", "^[0-9a-f]{4}$"),
    ({"vm": "vm1", "device": {"port": "usb3"}}, "spec.device.port", "should match"),
    ({"vm": "ns/vm1"}, "spec.vm", "should match"),
    ({"device": {"serial": "S"}}, "spec.vm", "Required value"),
    ({"vm": "vm1", "device": "AAA1"}, "spec.device", "must be of type object"),
])
def test_bad_attachments_are_refused_naming_the_field(api: httpx.Client, spec: dict[str, Any],
                                                      field: str, says: str) -> None:
    answer = api.post(f"{GROUP_PATH}/namespaces/default/usbattachments", json=attachment(spec))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert field in body["message"], body["message"]
    assert says in body["message"], body["message"]


def test_a_good_attachment_and_policy_are_accepted(api: httpx.Client) -> None:
    ok = api.post(f"{GROUP_PATH}/namespaces/default/usbattachments", json=attachment(
        {"vm": "vm1", "device": {"vendorId": "0781", "productId": "5567", "serial": "S 1",
                                 "product": "Cruzer", "node": "node1", "port": "3-1.4"}}))
    assert ok.status_code == 201, ok.text
    policy = api.post(f"{GROUP_PATH}/usbpolicies", json={
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
        "metadata": {"name": "p"},
        "spec": {"namespaces": ["default"], "namespaceSelector": {
            "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
            "devices": {}}})
    assert policy.status_code == 201, policy.text
    bad = api.post(f"{GROUP_PATH}/usbpolicies", json={
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBPolicy",
        "metadata": {"name": "q"},
        "spec": {"namespaceSelector": {"matchExpressions": [{"key": "t",
                                                             "operator": "Maybe"}]}}})
    assert bad.status_code == 422
    assert "operator" in bad.json()["message"]
