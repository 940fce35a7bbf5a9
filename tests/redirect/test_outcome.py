"""What users read after an attempt, and what the agent waits for before the next one."""

from __future__ import annotations

import pytest

from kubevirt_usb.redirect.outcome import (
    Cause,
    Context,
    Outcome,
    Wait,
    backoff_delay,
    decide,
    last_error,
    rejection_cause,
)
from kubevirt_usb.stream.failures import Retry

CTX = Context(device="USB device 46f4-0001-aaa1 (46f4:0001 serial AAA1)", node="node1",
              port_path="2-1", namespace="default", vm="vm1")
NOT_CONFIGURED = ('Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "vm1": '
                  "Not configured with USB Redirection")
FULL = "Internal error occurred: Can't connect to websocket (503): websocket: bad handshake"


@pytest.mark.parametrize(("code", "message", "retry", "exists", "cause"), [
    (404, 'virtualmachineinstance.kubevirt.io "vm1" not found', Retry.WHEN_VMI_CHANGES, True,
     Cause.VM_NOT_RUNNING),
    (404, 'virtualmachineinstance.kubevirt.io "vm1" not found', Retry.WHEN_VMI_CHANGES, False,
     Cause.VM_MISSING),
    (404, 'virtualmachineinstance.kubevirt.io "vm1" not found', Retry.WHEN_VMI_CHANGES, None,
     Cause.VM_NOT_RUNNING),
    (409, NOT_CONFIGURED, Retry.WHEN_VMI_CHANGES, None, Cause.NOT_CONFIGURED),
    (409, 'Operation cannot be fulfilled on ...: No USB support on s390x',
     Retry.WHEN_VMI_CHANGES, None, Cause.NO_USB_SUPPORT),
    (400, "VMI is not running", Retry.WHEN_VMI_CHANGES, None, Cause.VM_NOT_RUNNING),
    (500, FULL, Retry.NO_FREE_SLOT, None, Cause.NO_FREE_SLOT),
    (403, "forbidden", Retry.NOT_ALLOWED, None, Cause.FORBIDDEN),
    (502, "bad gateway", Retry.BACKOFF, None, Cause.REFUSED),
])
def test_kubevirt_refusals_become_causes(code: int, message: str, retry: Retry,
                                         exists: bool | None, cause: Cause) -> None:
    assert rejection_cause(status_code=code, message=message, retry=retry,
                           vm_exists=exists) is cause


def test_a_vm_without_client_passthrough_quotes_kubevirt_and_says_how_to_fix_it() -> None:
    decision = decide(Outcome(cause=Cause.NOT_CONFIGURED, kubevirt=NOT_CONFIGURED), CTX)
    assert decision.phase == "Failed"
    assert decision.wait is Wait.VMI_CHANGE
    assert f'(KubeVirt: "{NOT_CONFIGURED}")' in decision.message
    assert "clientPassthrough: {}" in decision.message
    assert "restart it" in decision.message


@pytest.mark.parametrize(("cause", "phase", "wait"), [
    (Cause.STREAM_ENDED, "Connecting", Wait.BACKOFF),
    (Cause.STREAM_BROKEN, "Connecting", Wait.BACKOFF),
    (Cause.API_UNREACHABLE, "Connecting", Wait.BACKOFF),
    (Cause.VM_NOT_RUNNING, "Connecting", Wait.VMI_CHANGE),
    (Cause.VM_MISSING, "Failed", Wait.VMI_CHANGE),
    (Cause.NO_FREE_SLOT, "Failed", Wait.BACKOFF),
    (Cause.FORBIDDEN, "Failed", Wait.SLOW_BACKOFF),
    (Cause.DEVICE_ABSENT, "Connecting", Wait.DEVICE_CHANGE),
    (Cause.DEVICE_MISMATCH, "Failed", Wait.DEVICE_CHANGE),
    (Cause.DEVICE_CHANGED, "Connecting", Wait.NOW),
    (Cause.DEVICE_BUSY, "Failed", Wait.BACKOFF),
    (Cause.DEVICE_IN_USE, "Failed", Wait.SLOW_BACKOFF),
])
def test_retries_only_where_retrying_can_help(cause: Cause, phase: str, wait: Wait) -> None:
    decision = decide(Outcome(cause=cause, detail="x"), CTX)
    assert (decision.phase, decision.wait, decision.reason) == (phase, wait, cause)


def test_every_cause_has_a_message_naming_what_it_is_about() -> None:
    for cause in Cause:
        text = decide(Outcome(cause=cause, detail="detail"), CTX).message
        assert text.endswith(".") or text.endswith(")"), (cause, text)
        assert "vm1" in text or "46f4-0001-aaa1" in text or "API server" in text \
            or "engine" in text, (cause, text)


def test_a_missing_device_names_node_and_port() -> None:
    text = decide(Outcome(cause=Cause.DEVICE_ABSENT), CTX).message
    assert "is not plugged into node node1 port 2-1" in text


def test_last_error_prefers_kubevirts_text() -> None:
    assert last_error(Outcome(cause=Cause.NO_FREE_SLOT, kubevirt=FULL, detail="HTTP 500")) == \
        f"NoFreeSlot: {FULL}"
    assert last_error(Outcome(cause=Cause.STREAM_ENDED)) == "StreamEnded"


def test_backoff_doubles_is_capped_and_jittered() -> None:
    delays = [backoff_delay(attempt=n, jitter=1.0, wait=Wait.BACKOFF) for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == 30.0
    assert backoff_delay(attempt=3, jitter=0.0, wait=Wait.BACKOFF) == 1.0
    assert backoff_delay(attempt=20, jitter=1.0, wait=Wait.SLOW_BACKOFF) == 300.0
    assert backoff_delay(attempt=5, jitter=0.5, wait=Wait.NOW) == 0.0
