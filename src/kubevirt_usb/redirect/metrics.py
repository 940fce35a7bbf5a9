"""Prometheus metrics of the agent's streams, in their own registry (the agent serves it).

- `kubevirt_usb_stream_bytes_total{namespace,attachment,device,direction}`: usbredir bytes,
  `direction` = `to_vm` (from the device) or `from_vm`;
- `kubevirt_usb_streams_active`: streams whose VM has the device now;
- `kubevirt_usb_stream_reconnects_total{namespace,attachment,device}`: the VM got the device back
  after losing it;
- `kubevirt_usb_stream_failures_total{reason}`: attempts that ended, by cause;
- `kubevirt_usb_stream_connect_seconds`: from the start of an attempt to the VM's slot answering;
- `kubevirt_usb_stream_path{namespace,attachment,device,path,reason}`: 1 for the path each binding
  takes now (`Local` or `API`) and why; `sum by (path) (kubevirt_usb_stream_path)` counts streams
  per path.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

CONNECT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class StreamMetrics:
    """The metrics; one instance per agent."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ["namespace", "attachment", "device"]
        self.bytes = Counter("kubevirt_usb_stream_bytes", "usbredir bytes streamed.",
                             [*labels, "direction"], registry=self.registry)
        self.active = Gauge("kubevirt_usb_streams_active",
                            "Streams whose VM has the device now.", registry=self.registry)
        self.reconnects = Counter("kubevirt_usb_stream_reconnects",
                                  "Times a VM got its device back after losing it.", labels,
                                  registry=self.registry)
        self.failures = Counter("kubevirt_usb_stream_failures",
                                "Stream attempts that ended, by cause.", ["reason"],
                                registry=self.registry)
        self.connect_seconds = Histogram("kubevirt_usb_stream_connect_seconds",
                                         "Seconds from the start of an attempt to the VM's "
                                         "usbredir slot answering.",
                                         buckets=CONNECT_BUCKETS, registry=self.registry)

        self.path = Gauge("kubevirt_usb_stream_path",
                          "1 for the path a binding's stream takes now (Local: straight into "
                          "the launcher's slot socket; API: through the API server), and why.",
                          [*labels, "path", "reason"], registry=self.registry)
        self._paths: dict[tuple[str, str, str], tuple[str, str]] = {}

    def path_chosen(self, labels: tuple[str, str, str], *, path: str, reason: str) -> None:
        """The binding's stream takes `path` now (its previous series is dropped)."""
        before = self._paths.get(labels)
        if before == (path, reason):
            return
        if before is not None:
            with contextlib.suppress(KeyError):
                self.path.remove(*labels, *before)
        self._paths[labels] = (path, reason)
        self.path.labels(*labels, path, reason).set(1)

    def streamed(self, labels: tuple[str, str, str], *, to_vm: int, from_vm: int) -> None:
        if to_vm:
            self.bytes.labels(*labels, "to_vm").inc(to_vm)
        if from_vm:
            self.bytes.labels(*labels, "from_vm").inc(from_vm)

    def forget(self, labels: tuple[str, str, str]) -> None:
        """Drop an ended binding's series."""
        for direction in ("to_vm", "from_vm"):
            with contextlib.suppress(KeyError):
                self.bytes.remove(*labels, direction)
        with contextlib.suppress(KeyError):
            self.reconnects.remove(*labels)
        before = self._paths.pop(labels, None)
        if before is not None:
            with contextlib.suppress(KeyError):
                self.path.remove(*labels, *before)
