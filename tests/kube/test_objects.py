"""Plain list and watch results."""

from __future__ import annotations

from kubevirt_usb.kube.objects import WatchEvent


def test_a_watch_event_names_its_objects_resource_version() -> None:
    event = WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "42"}})
    assert event.resource_version == "42"


def test_an_object_without_metadata_has_no_resource_version() -> None:
    assert WatchEvent("ERROR", {"code": 410}).resource_version == ""
