"""What can go wrong with a usbredir stream, and whether trying again can help.

The API server and virt-api answer a refused stream with an HTTP error and a `Status` body before
the websocket upgrade (kubevirt-facts.md). Its message is what users see ("Not configured with USB
Redirection"); the decision what to do next is a plain value computed from it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


class Retry(enum.Enum):
    """What to do after a failed or ended stream."""

    BACKOFF = "Backoff"
    """Transient (network, API server, a reset right after connecting): retry with backoff."""
    NO_FREE_SLOT = "NoFreeSlot"
    """All four usbredir slots of the VMI are taken: retry later, a stream ending frees one."""
    WHEN_VMI_CHANGES = "WhenVMIChanges"
    """The VMI is missing, not running or lacks `clientPassthrough`: retrying is useless until
    the VMI changes."""
    NOT_ALLOWED = "NotAllowed"
    """Credentials or RBAC refuse it: useless until an admin changes them."""

    @property
    def retryable(self) -> bool:
        """Whether a timer alone may lead to success."""
        return self in (Retry.BACKOFF, Retry.NO_FREE_SLOT)


class UsbredirError(Exception):
    """A usbredir stream could not be opened or broke."""

    @property
    def retry(self) -> Retry:
        return Retry.BACKOFF


@dataclass(kw_only=True, eq=False)
class HandshakeRejected(UsbredirError):
    """The server answered the upgrade request with an HTTP error (from Kubernetes: a `Status`)."""

    status_code: int
    message: str
    reason: str = ""
    status: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def retry(self) -> Retry:
        return classify_status(code=self.status_code, status=self.status)


@dataclass(kw_only=True, eq=False)
class ConnectFailed(UsbredirError):
    """No answer to the upgrade request: refused, reset, timed out, TLS failed, proxy failed."""

    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(kw_only=True, eq=False)
class StreamBroken(UsbredirError):
    """An open stream ended without a clean close: the network, a missed ping, a reset socket.
    virt-handler closes its connection without a close frame, so the VM side ending looks like this
    too (code 1006)."""

    side: Literal["local", "remote"]
    code: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.side} side of the usbredir stream broke"
        if self.code is not None:
            text += f" (code {self.code})"
        return f"{text}: {self.detail}" if self.detail else text


_INNER_HANDSHAKE = re.compile(r"Can't connect to websocket \((\d{3})\)")


def rejection(
    *, status_code: int, body: bytes | bytearray | None, phrase: str = ""
) -> HandshakeRejected:
    """The error a rejected upgrade becomes: the `Status` message when the body is one."""
    status = _parse_status(body)
    if status is not None:
        return HandshakeRejected(
            status_code=status_code,
            message=str(status.get("message") or phrase or f"HTTP {status_code}"),
            reason=str(status.get("reason") or ""),
            status=status,
        )
    text = (body or b"").decode("utf-8", "replace").strip()
    return HandshakeRejected(
        status_code=status_code, message=text or phrase or f"HTTP {status_code}"
    )


def classify_status(*, code: int, status: Mapping[str, Any]) -> Retry:
    """The decision for an HTTP error answered to the upgrade request."""
    if code in (401, 403):
        return Retry.NOT_ALLOWED
    message = str(status.get("message") or "")
    inner = _INNER_HANDSHAKE.search(message)
    if code == 500 and inner is not None and inner.group(1) == "503":
        return Retry.NO_FREE_SLOT
    if code == 404:
        details = status.get("details") or {}
        is_vmi = isinstance(details, Mapping) and details.get("kind") == "virtualmachineinstance"
        return Retry.WHEN_VMI_CHANGES if is_vmi else Retry.BACKOFF
    if code in (400, 409):
        return Retry.WHEN_VMI_CHANGES
    return Retry.BACKOFF


def classify(error: BaseException) -> Retry:
    """The decision for anything opening or running a stream raised."""
    if isinstance(error, UsbredirError):
        return error.retry
    return Retry.BACKOFF


def backoff_delay(*, attempt: int, jitter: float, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds to wait before attempt number `attempt` (1 = the first retry): exponential, capped,
    scaled by `jitter` in [0, 1] between half and the full delay."""
    raw = min(cap, base * 2.0 ** max(0, attempt - 1))
    return raw * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))


def _parse_status(body: bytes | bytearray | None) -> Mapping[str, Any] | None:
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if isinstance(value, Mapping) and value.get("kind") == "Status":
        return value
    return None
