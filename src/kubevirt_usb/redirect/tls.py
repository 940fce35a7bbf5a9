"""TLS for the usbredir websocket on CPUs without AES instructions.

Every byte of a stream is encrypted by the agent. Where the CPU has no AES instructions (some
ARM boards; software-emulated machines such as the sandbox's TCG guests), AES-GCM costs several
times what ChaCha20-Poly1305 does, which is why Go's crypto/tls and BoringSSL put ChaCha20 first on
such CPUs. Python cannot order TLS 1.3 suites, so on those CPUs the stream's connection offers
TLS 1.2 with ECDHE and ChaCha20-Poly1305 only (kube-apiserver supports it; a FIPS-mode cluster does
not, but FIPS nodes have AES instructions and never take this path). With AES instructions the
endpoint is left exactly as it is.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, fields
from pathlib import Path

from kubevirt_usb.stream.endpoint import APIEndpoint

CPUINFO = Path("/proc/cpuinfo")
CHACHA_ONLY = "ECDHE+CHACHA20"


def cpu_has_aes(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo lists AES instructions (x86 `flags`, ARM `Features`)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and "aes" in value.split():
            return True
    return False


def prefer_chacha(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Restrict a client context to TLS 1.2 ECDHE with ChaCha20-Poly1305."""
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CHACHA_ONLY)
    return ctx


@dataclass(frozen=True, kw_only=True)
class ChaChaEndpoint(APIEndpoint):
    """An API endpoint whose TLS connections prefer ChaCha20 (see the module docstring)."""

    def ssl_context(self) -> ssl.SSLContext:
        return prefer_chacha(super().ssl_context())


def for_this_cpu(endpoint: APIEndpoint, *, cpuinfo: Path = CPUINFO) -> APIEndpoint:
    """`endpoint`, or its ChaCha20 variant when this CPU has no AES instructions."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return endpoint
    if cpu_has_aes(text) or not endpoint.is_tls():
        return endpoint
    return ChaChaEndpoint(**{f.name: getattr(endpoint, f.name) for f in fields(endpoint)})
