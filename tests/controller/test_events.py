"""Events as kubectl shows them."""

from __future__ import annotations

from kubevirt_usb.controller.events import Event, attachment_ref, device_ref, event_body


def test_an_attachment_event_lives_in_its_namespace() -> None:
    body = event_body(Event(about=attachment_ref("ns", "a1", "u"), type="Normal",
                            reason="Bound", message="m"), now="T", instance="r1", suffix="x")
    assert body["metadata"] == {"name": "a1.x", "namespace": "ns"}
    assert body["involvedObject"] == {"apiVersion": "usb.kubevirt-usb.io/v1alpha1",
                                      "kind": "USBAttachment", "name": "a1", "namespace": "ns",
                                      "uid": "u"}
    assert (body["reason"], body["type"], body["reportingInstance"], body["count"]) == (
        "Bound", "Normal", "r1", 1)
    assert body["source"] == {"component": "kubevirt-usb-controller"}


def test_a_device_event_lives_in_default() -> None:
    body = event_body(Event(about=device_ref("d1", "u"), type="Warning", reason="R",
                            message="m" * 2000), now="T", instance="r1")
    assert body["metadata"]["namespace"] == "default"
    assert "namespace" not in body["involvedObject"]
    assert len(body["message"]) == 1024
    assert body["metadata"]["name"].startswith("d1.")
