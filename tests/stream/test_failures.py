"""What a refused or broken usbredir stream means, and whether to try again: pure decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubevirt_usb.stream.failures import (
    ConnectFailed,
    HandshakeRejected,
    Retry,
    StreamBroken,
    backoff_delay,
    classify,
    classify_status,
    rejection,
)


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason,
                            "code": code}
    if details:
        body["details"] = details
    return body


VMI_DETAILS = {"name": "vm1", "group": "kubevirt.io", "kind": "virtualmachineinstance"}


@pytest.mark.parametrize(
    ("code", "body", "decision"),
    [
        (404, status(404, "NotFound", 'virtualmachineinstance.kubevirt.io "vm1" not found',
                     **VMI_DETAILS), Retry.WHEN_VMI_CHANGES),
        (409, status(409, "Conflict", "Operation cannot be fulfilled on "
                     'virtualmachineinstance.kubevirt.io "vm1": Not configured with USB '
                     "Redirection", **VMI_DETAILS), Retry.WHEN_VMI_CHANGES),
        (409, status(409, "Conflict", "Operation cannot be fulfilled on "
                     'virtualmachineinstance.kubevirt.io "vm1": No USB support on s390x',
                     **VMI_DETAILS), Retry.WHEN_VMI_CHANGES),
        (400, status(400, "BadRequest", "VMI is not running"), Retry.WHEN_VMI_CHANGES),
        (500, status(500, "InternalError", "Internal error occurred: Can't connect to websocket "
                     "(503): websocket: bad handshake"), Retry.NO_FREE_SLOT),
        (500, status(500, "InternalError", "Internal error occurred: Can't connect to websocket "
                     "(400): websocket: bad handshake"), Retry.BACKOFF),
        (500, status(500, "InternalError", "Internal error occurred: unable to retrieve vmi"),
         Retry.BACKOFF),
        (401, status(401, "Unauthorized", "Unauthorized"), Retry.NOT_ALLOWED),
        (403, status(403, "Forbidden", "forbidden"), Retry.NOT_ALLOWED),
        (404, status(404, "NotFound", "the server could not find the requested resource"),
         Retry.BACKOFF),
        (503, status(503, "ServiceUnavailable", "service unavailable"), Retry.BACKOFF),
        (429, status(429, "TooManyRequests", "too many requests"), Retry.BACKOFF),
    ],
)
def test_refusals_are_classified(code: int, body: dict[str, Any], decision: Retry) -> None:
    assert classify_status(code=code, status=body) is decision
    error = rejection(status_code=code, body=json.dumps(body).encode())
    assert error.retry is decision
    assert classify(error) is decision
    assert str(error) == body["message"]


def test_only_timers_help_backoff_and_a_busy_vmi() -> None:
    assert [d for d in Retry if d.retryable] == [Retry.BACKOFF, Retry.NO_FREE_SLOT]


def test_rejection_keeps_the_status_message_users_see() -> None:
    body = status(409, "Conflict", "Operation cannot be fulfilled on "
                  'virtualmachineinstance.kubevirt.io "vm1": Not configured with USB Redirection',
                  **VMI_DETAILS)
    error = rejection(status_code=409, body=json.dumps(body).encode(), phrase="Conflict")
    assert isinstance(error, HandshakeRejected)
    assert (error.status_code, error.message, error.reason, error.status) == (
        409, body["message"], "Conflict", body)


def test_rejection_without_a_status_body_uses_the_text_or_the_phrase() -> None:
    assert str(rejection(status_code=502, body=b"bad gateway\n", phrase="Bad Gateway")) == (
        "bad gateway")
    assert str(rejection(status_code=502, body=b"", phrase="Bad Gateway")) == "Bad Gateway"
    assert str(rejection(status_code=502, body=None)) == "HTTP 502"
    not_status = rejection(status_code=500, body=b'{"kind": "Pod"}')
    assert (not_status.status, not_status.retry) == ({}, Retry.BACKOFF)


def test_network_failures_and_broken_streams_back_off() -> None:
    assert classify(ConnectFailed(detail="connection refused")) is Retry.BACKOFF
    assert classify(StreamBroken(side="remote", code=1006)) is Retry.BACKOFF
    assert classify(ConnectionResetError()) is Retry.BACKOFF


def test_broken_stream_says_which_side_and_code() -> None:
    assert str(StreamBroken(side="remote", code=1011, detail="keepalive ping timeout")) == (
        "remote side of the usbredir stream broke (code 1011): keepalive ping timeout")
    assert str(StreamBroken(side="local")) == "local side of the usbredir stream broke"


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [(1, 1.0, 1.0), (2, 1.0, 2.0), (4, 1.0, 8.0), (4, 0.0, 4.0), (30, 1.0, 60.0),
     (30, 0.5, 45.0), (0, 1.0, 1.0), (3, 7.0, 4.0)],
)
def test_backoff_is_exponential_capped_and_jittered(attempt: int, jitter: float,
                                                   delay: float) -> None:
    assert backoff_delay(attempt=attempt, jitter=jitter) == delay
