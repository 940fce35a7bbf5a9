"""The agent's metrics in the Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from kubevirt_usb.agent.metrics import AgentMetrics


def _samples(metrics: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def test_devices_by_state_errors_by_reason_and_scan_durations() -> None:
    metrics = AgentMetrics()
    metrics.set_devices({"Available": 3})
    metrics.api_error("Conflict")
    metrics.api_error("Conflict")
    metrics.api_error("ConnectError")
    metrics.api_write("status")
    metrics.scan_duration.observe(0.004)
    samples = _samples(metrics)
    assert samples[("kubevirt_usb_agent_devices", (("state", "Available"),))] == 3
    assert samples[("kubevirt_usb_agent_devices", (("state", "Absent"),))] == 0
    assert samples[("kubevirt_usb_agent_api_errors_total", (("reason", "Conflict"),))] == 2
    assert samples[("kubevirt_usb_agent_api_errors_total", (("reason", "ConnectError"),))] == 1
    assert samples[("kubevirt_usb_agent_api_writes_total", (("kind", "status"),))] == 1
    assert samples[("kubevirt_usb_agent_scan_duration_seconds_count", ())] == 1
    assert samples[("kubevirt_usb_agent_scan_duration_seconds_bucket", (("le", "0.005"),))] == 1


def test_two_agents_in_one_process_keep_separate_metrics() -> None:
    one, two = AgentMetrics(), AgentMetrics()
    one.set_devices({"Absent": 1})
    assert _samples(two)[("kubevirt_usb_agent_devices", (("state", "Absent"),))] == 0


def test_the_states_are_the_models_device_states() -> None:
    from typing import get_args

    from kubevirt_usb.agent.metrics import STATES
    from kubevirt_usb.models import DeviceState

    assert set(STATES) == set(get_args(DeviceState))
