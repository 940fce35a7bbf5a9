"""The network-stream boundary: usbredir bytes to and from a VMI through the API server."""

from __future__ import annotations

from kubevirt_usb.stream.endpoint import (
    APIEndpoint,
    EndpointError,
    StaticToken,
    TokenFile,
    TokenSource,
    from_kubeconfig,
    in_cluster,
    load_kubeconfig,
)
from kubevirt_usb.stream.failures import (
    ConnectFailed,
    HandshakeRejected,
    Retry,
    StreamBroken,
    UsbredirError,
    backoff_delay,
    classify,
)
from kubevirt_usb.stream.usbredir_client import (
    ByteCounters,
    UsbredirConnection,
    open_usbredir,
    serve_usbredir_bridge,
    splice,
)

__all__ = [
    "APIEndpoint",
    "ByteCounters",
    "ConnectFailed",
    "EndpointError",
    "HandshakeRejected",
    "Retry",
    "StaticToken",
    "StreamBroken",
    "TokenFile",
    "TokenSource",
    "UsbredirConnection",
    "UsbredirError",
    "backoff_delay",
    "classify",
    "from_kubeconfig",
    "in_cluster",
    "load_kubeconfig",
    "open_usbredir",
    "serve_usbredir_bridge",
    "splice",
]
