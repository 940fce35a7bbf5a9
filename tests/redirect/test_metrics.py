"""The stream metrics count what a scrape should show."""

from __future__ import annotations

from prometheus_client import generate_latest

from kubevirt_usb.redirect.metrics import StreamMetrics

LABELS = ("default", "att1", "46f4-0001-aaa1")


def test_bytes_are_counted_per_direction_and_forgotten_with_the_binding() -> None:
    metrics = StreamMetrics()
    metrics.streamed(LABELS, to_vm=1000, from_vm=10)
    metrics.streamed(LABELS, to_vm=24, from_vm=0)
    text = generate_latest(metrics.registry).decode()
    assert ('kubevirt_usb_stream_bytes_total{attachment="att1",device="46f4-0001-aaa1",'
            'direction="to_vm",namespace="default"} 1024.0') in text
    metrics.forget(LABELS)
    metrics.forget(LABELS)  # twice is fine
    assert "direction=\"to_vm\"" not in generate_latest(metrics.registry).decode()


def test_failures_active_streams_and_connect_latency_are_exposed() -> None:
    metrics = StreamMetrics()
    metrics.failures.labels("NoFreeSlot").inc()
    metrics.active.inc()
    metrics.connect_seconds.observe(1.5)
    text = generate_latest(metrics.registry).decode()
    assert 'kubevirt_usb_stream_failures_total{reason="NoFreeSlot"} 1.0' in text
    assert "kubevirt_usb_streams_active 1.0" in text
    assert 'kubevirt_usb_stream_connect_seconds_bucket{le="2.0"} 1.0' in text


def test_the_path_of_each_stream_is_shown_and_follows_changes() -> None:
    metrics = StreamMetrics()
    metrics.path_chosen(LABELS, path="Local", reason="SameNode")
    series = ('kubevirt_usb_stream_path{attachment="att1",device="46f4-0001-aaa1",'
              'namespace="default",path="%s",reason="%s"} 1.0')
    assert series % ("Local", "SameNode") in generate_latest(metrics.registry).decode()
    metrics.path_chosen(LABELS, path="API", reason="VMIOnOtherNode")
    text = generate_latest(metrics.registry).decode()
    assert series % ("API", "VMIOnOtherNode") in text
    assert 'path="Local"' not in text
    metrics.forget(LABELS)
    assert 'path="API"' not in generate_latest(metrics.registry).decode()
