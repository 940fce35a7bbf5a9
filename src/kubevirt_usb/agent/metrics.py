"""The agent's Prometheus metrics, served on /metrics.

- `kubevirt_usb_agent_devices{state}`: this node's USBDevice objects by state (Available, Absent);
- `kubevirt_usb_agent_scan_duration_seconds`: how long a sysfs scan takes;
- `kubevirt_usb_agent_api_errors_total{reason}`: failed API requests by Kubernetes reason
  (NotFound, Conflict, ...) or transport failure (ConnectError, ...);
- `kubevirt_usb_agent_api_writes_total{kind}`: USBDevice writes (create, status, labels, delete);
- `kubevirt_usb_agent_heartbeats_total`: Lease renewals that succeeded.

Each `AgentMetrics` has its own registry, so several agents can live in one process (benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

STATES = ("Available", "Absent")  # models.DeviceState (not imported: the agent stays small)
_SCAN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class AgentMetrics:
    """The metrics of one agent."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.devices = Gauge("kubevirt_usb_agent_devices",
                             "USB devices this node's agent publishes, by state", ["state"],
                             registry=self.registry)
        self.scan_duration = Histogram("kubevirt_usb_agent_scan_duration_seconds",
                                       "Time to scan the node's USB devices in sysfs",
                                       buckets=_SCAN_BUCKETS, registry=self.registry)
        self.api_errors = Counter("kubevirt_usb_agent_api_errors",
                                  "Failed Kubernetes API requests, by reason", ["reason"],
                                  registry=self.registry)
        self.api_writes = Counter("kubevirt_usb_agent_api_writes",
                                  "USBDevice writes, by kind", ["kind"], registry=self.registry)
        self.heartbeats = Counter("kubevirt_usb_agent_heartbeats",
                                  "Heartbeat Lease renewals", registry=self.registry)
        self.set_devices({})

    def set_devices(self, counts: Mapping[str, int]) -> None:
        """Set the device gauge; states not in `counts` are 0."""
        for state in STATES:
            self.devices.labels(state=state).set(counts.get(state, 0))

    def api_error(self, reason: str) -> None:
        self.api_errors.labels(reason=reason).inc()

    def api_write(self, kind: str) -> None:
        self.api_writes.labels(kind=kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
