"""How a stream attempt ended, what users read about it, and what to do next: plain values.

Every cause names what happened in the user's words, carries KubeVirt's own text when KubeVirt
refused, and says how to fix it. What to do next (`decide`) retries only where retrying can help:
a timer for transient trouble (network, API server, a full VM, a busy device), a change of the VMI
for VM-side refusals (missing, not running, not configured), a change in the port for a missing
or different device. A refused attempt never holds a slot and leaves the device as it was: the
device is only opened (no claim, no reset) until KubeVirt granted the slot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from kubevirt_usb.stream.failures import Retry

Phase = Literal["Connecting", "Attached", "Failed"]


class Cause(enum.StrEnum):
    """Why a stream is not (or no longer) running; the Connected condition's reason."""

    STREAM_ENDED = "StreamEnded"
    STREAM_BROKEN = "StreamBroken"
    API_UNREACHABLE = "APIServerUnreachable"
    VM_NOT_RUNNING = "VMNotRunning"
    VM_MISSING = "VMMissing"
    NOT_CONFIGURED = "VMNotConfiguredForUSBRedirection"
    NO_USB_SUPPORT = "VMHasNoUSBSupport"
    NO_FREE_SLOT = "NoFreeSlot"
    FORBIDDEN = "Forbidden"
    REFUSED = "Refused"
    DEVICE_ABSENT = "DeviceAbsent"
    DEVICE_MISMATCH = "DeviceMismatch"
    DEVICE_CHANGED = "DeviceReplugged"
    DEVICE_BUSY = "DeviceBusy"
    DEVICE_IN_USE = "DeviceInUse"
    DEVICE_ACCESS_DENIED = "DeviceAccessDenied"
    DEVICE_OPEN_FAILED = "DeviceOpenFailed"
    DEVICE_REJECTED = "DeviceRejectedByVM"
    ENGINE_FAILED = "EngineFailed"


class Wait(enum.Enum):
    """What has to happen before the next attempt."""

    NOW = "now"
    """Try again at once (the device was replugged between the check and the open)."""
    BACKOFF = "backoff"
    """A jittered exponential backoff (transient trouble)."""
    SLOW_BACKOFF = "slow-backoff"
    """A long backoff: only a person can fix it, and nothing tells the agent when."""
    VMI_CHANGE = "vmi-change"
    """Until the VMI changes (created, deleted, running, reconfigured)."""
    DEVICE_CHANGE = "device-change"
    """Until the port shows a device again, or a different one."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How one attempt ended."""

    cause: Cause
    detail: str = ""
    """The technical text: errno, libusb error, close code, KubeVirt's message."""
    kubevirt: str | None = None
    """KubeVirt's (or the API server's) own error text, when it refused the stream."""
    attached_seconds: float = 0.0
    """How long the VM had the device in this attempt (0: it never got it)."""
    holder: str | None = None
    """For DEVICE_BUSY: who holds the device's lock, as it wrote itself into the lock file."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """The names a message needs."""

    device: str
    """`USB device 46f4-0001-aaa1 (46f4:0001 serial AAA1)`."""
    node: str
    port_path: str
    namespace: str
    vm: str

    @property
    def vm_ref(self) -> str:
        return f"VM {self.namespace}/{self.vm}"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What users read and what the agent does next."""

    phase: Phase
    reason: Cause
    message: str
    wait: Wait


_PHASE_AND_WAIT: dict[Cause, tuple[Phase, Wait]] = {
    Cause.STREAM_ENDED: ("Connecting", Wait.BACKOFF),
    Cause.STREAM_BROKEN: ("Connecting", Wait.BACKOFF),
    Cause.API_UNREACHABLE: ("Connecting", Wait.BACKOFF),
    Cause.VM_NOT_RUNNING: ("Connecting", Wait.VMI_CHANGE),
    Cause.VM_MISSING: ("Failed", Wait.VMI_CHANGE),
    Cause.NOT_CONFIGURED: ("Failed", Wait.VMI_CHANGE),
    Cause.NO_USB_SUPPORT: ("Failed", Wait.VMI_CHANGE),
    Cause.NO_FREE_SLOT: ("Failed", Wait.BACKOFF),
    Cause.FORBIDDEN: ("Failed", Wait.SLOW_BACKOFF),
    Cause.REFUSED: ("Failed", Wait.BACKOFF),
    Cause.DEVICE_ABSENT: ("Connecting", Wait.DEVICE_CHANGE),
    Cause.DEVICE_MISMATCH: ("Failed", Wait.DEVICE_CHANGE),
    Cause.DEVICE_CHANGED: ("Connecting", Wait.NOW),
    Cause.DEVICE_BUSY: ("Failed", Wait.BACKOFF),
    Cause.DEVICE_IN_USE: ("Failed", Wait.SLOW_BACKOFF),
    Cause.DEVICE_ACCESS_DENIED: ("Failed", Wait.SLOW_BACKOFF),
    Cause.DEVICE_OPEN_FAILED: ("Failed", Wait.BACKOFF),
    Cause.DEVICE_REJECTED: ("Failed", Wait.SLOW_BACKOFF),
    Cause.ENGINE_FAILED: ("Connecting", Wait.BACKOFF),
}


def _quoted(outcome: Outcome) -> str:
    return f' (KubeVirt: "{outcome.kubevirt}")' if outcome.kubevirt else ""


def _detail(outcome: Outcome) -> str:
    return f": {outcome.detail}" if outcome.detail else ""


def message(outcome: Outcome, ctx: Context) -> str:
    """The cause and the fix, in one or two sentences."""
    c, vm, dev, kv = outcome.cause, ctx.vm_ref, ctx.device, _quoted(outcome)
    where = f"node {ctx.node} port {ctx.port_path}"
    texts: dict[Cause, str] = {
        Cause.STREAM_ENDED: f"{vm} closed the stream (the VM stopped, restarted or let the "
                            "device go); reconnecting.",
        Cause.STREAM_BROKEN: f"The stream to {vm} broke{_detail(outcome)}; reconnecting.",
        Cause.API_UNREACHABLE: f"Cannot reach the Kubernetes API server{_detail(outcome)}; "
                               "retrying.",
        Cause.VM_NOT_RUNNING: f"{vm} is not running{kv}; the device attaches when it runs "
                              f"(start it: virtctl start {ctx.vm} -n {ctx.namespace}).",
        Cause.VM_MISSING: f"{vm} does not exist{kv}; create it, or point the USBAttachment's "
                          "spec.vm at an existing VM.",
        Cause.NOT_CONFIGURED: f"{vm} is not configured for USB redirection{kv}. Add "
                              "`clientPassthrough: {}` under spec.template.spec.domain.devices "
                              "of the VirtualMachine and restart it; the device attaches when "
                              "the new VMI runs.",
        Cause.NO_USB_SUPPORT: f"{vm} cannot take USB devices{kv}: KubeVirt has no USB "
                              "redirection on s390x.",
        Cause.NO_FREE_SLOT: f"All 4 USB redirection slots of {vm} are in use{kv}; detach a "
                            "device from it (kubectl usb detach, or stop a virtctl usbredir). "
                            "Retrying.",
        Cause.FORBIDDEN: f"The agent may not open USB redirection streams to {vm}{kv}; grant "
                         "its service account `get` on virtualmachineinstances/usbredir in "
                         "subresources.kubevirt.io (kubevirt.io:edit has it since KubeVirt "
                         "v1.4).",
        Cause.REFUSED: f"KubeVirt refused the stream to {vm}{kv}; retrying.",
        Cause.DEVICE_ABSENT: f"{dev} is not plugged into {where}{_detail(outcome)}; plug it "
                             "back in there and it attaches by itself.",
        Cause.DEVICE_MISMATCH: f"{where} holds another device ({outcome.detail}), not {dev}; "
                               "plug the bound device back into that port, or bind the one "
                               "now there.",
        Cause.DEVICE_CHANGED: f"{dev} was replugged while it was opened; opening it again.",
        Cause.DEVICE_BUSY: f"{dev} is already being streamed on node {ctx.node}"
                           f"{_detail(outcome)}; detach it there first. Retrying.",
        Cause.DEVICE_IN_USE: f"{dev} is in use by another program on node {ctx.node} "
                             f"(usbredirect, virtctl usbredir, ...){_detail(outcome)}; stop "
                             "that program.",
        Cause.DEVICE_ACCESS_DENIED: f"The agent may not open {dev} on node {ctx.node}"
                                    f"{_detail(outcome)}; give the agent read-write access to "
                                    "/dev/bus/usb (see the agent's DaemonSet).",
        Cause.DEVICE_OPEN_FAILED: f"Opening {dev} on node {ctx.node} failed"
                                  f"{_detail(outcome)}; retrying.",
        Cause.DEVICE_REJECTED: f"{vm} rejected {dev} (its usbredir filter does not allow it).",
        Cause.ENGINE_FAILED: f"The redirection engine failed{_detail(outcome)}; restarting it.",
    }
    return texts[c]


def decide(outcome: Outcome, ctx: Context) -> Decision:
    """The phase, reason and message users see, and what has to happen before trying again."""
    phase, wait = _PHASE_AND_WAIT[outcome.cause]
    return Decision(phase=phase, reason=outcome.cause, message=message(outcome, ctx), wait=wait)


def last_error(outcome: Outcome) -> str:
    """The short technical text for status.lastError."""
    text = outcome.kubevirt or outcome.detail
    return f"{outcome.cause.value}: {text}" if text else outcome.cause.value


def backoff_delay(*, attempt: int, jitter: float, wait: Wait, base: float = 0.5,
                  cap: float = 30.0, slow_cap: float = 300.0) -> float:
    """Seconds before attempt number `attempt` (1 = the first retry) for a timed wait: doubling
    from `base`, capped, scaled by `jitter` in [0, 1] between half and the full delay."""
    if wait is Wait.NOW:
        return 0.0
    limit = slow_cap if wait is Wait.SLOW_BACKOFF else cap
    raw = min(limit, base * 2.0 ** max(0, attempt - 1))
    return raw * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))


def rejection_cause(*, status_code: int, message: str, retry: Retry,
                    vm_exists: bool | None = None) -> Cause:
    """The cause of a refused usbredir upgrade, from KubeVirt's answer (kubevirt-facts.md) and,
    for a missing VMI, whether the VirtualMachine exists (None: unknown)."""
    if retry is Retry.NOT_ALLOWED:
        return Cause.FORBIDDEN
    if retry is Retry.NO_FREE_SLOT:
        return Cause.NO_FREE_SLOT
    if status_code == 404:
        return Cause.VM_MISSING if vm_exists is False else Cause.VM_NOT_RUNNING
    if status_code == 409 and "No USB support" in message:
        return Cause.NO_USB_SUPPORT
    if status_code == 409 and "Not configured with USB Redirection" in message:
        return Cause.NOT_CONFIGURED
    if status_code == 400:
        return Cause.VM_NOT_RUNNING
    return Cause.REFUSED
