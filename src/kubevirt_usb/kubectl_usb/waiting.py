"""`--wait`: how far an attach or detach has got, decided from what the API shows, and the loop
that asks again until it is done, refused, or out of time (clock and sleep are parameters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode
from kubevirt_usb.kubectl_usb.objects import Obj, name, namespace, spec, status
from kubevirt_usb.kubectl_usb.selection import Claim, Selector, claim_of, held_elsewhere
from kubevirt_usb.kubectl_usb.tables import human_duration

REFUSING_PHASES = ("NotAllowed", "Failed")


@dataclass(frozen=True)
class Waiting:
    """Not there yet; `line` says where it is."""

    line: str


@dataclass(frozen=True)
class Done:
    """Finished; `obj` is the last object seen (None when it is gone)."""

    obj: Obj | None = None


@dataclass(frozen=True)
class Refused:
    """It will not happen without someone acting; `error` says who and how."""

    error: CLIError


Progress = Waiting | Done | Refused


def allow_hint(attachment: Obj) -> str:
    flags = Selector.from_spec(spec(attachment).get("device")).flags()
    return f"kubectl usb allow --namespace {namespace(attachment)} {flags}"


def attach_progress(attachment: Obj | None, device: Obj | None, *, wanted: str) -> Progress:
    """How far attachment `wanted` (namespace/name) is from Attached. `device` is the device it
    is bound to or names, if known."""
    if attachment is None:
        return Refused(CLIError(f"attachment {wanted} was deleted while waiting",
                                code=ExitCode.NOT_FOUND))
    st = status(attachment)
    phase = str(st.get("phase") or "Pending")
    message = str(st.get("message") or "")
    if phase == "Attached":
        return Done(attachment)
    if phase == "NotAllowed":
        why = message or f"no USBPolicy lets namespace {namespace(attachment)} use this device"
        hint = "" if "kubectl usb allow" in why else \
            f"; a cluster admin can allow it: {allow_hint(attachment)}"
        return Refused(CLIError(f"attachment {wanted} is NotAllowed: {why}{hint}",
                                code=ExitCode.REFUSED))
    if phase in REFUSING_PHASES:
        return Refused(CLIError(f"attachment {wanted} {phase}: {message or 'no reason given'}",
                                code=ExitCode.REFUSED))
    claim = claim_of(device) if device is not None else None
    if device is not None and claim is not None and not _is(claim, attachment):
        return Refused(held_elsewhere(device, claim))
    detail = f": {message}" if message else ""
    return Waiting(f"{phase}{detail}")


def _is(claim: Claim, attachment: Obj) -> bool:
    return (claim.namespace, claim.attachment) == (namespace(attachment), name(attachment))


def detach_progress(attachments: Sequence[Obj], devices: Sequence[Obj],
                    *, gone: Sequence[tuple[str, str]]) -> Progress:
    """Whether the attachments `gone` (namespace, name) are deleted and no device is still
    bound to one of them. `attachments` and `devices` are what exists of them now."""
    wanted = set(gone)
    left = [a for a in attachments if (namespace(a), name(a)) in wanted]
    if left:
        return Waiting("waiting for " + ", ".join(f"{namespace(a)}/{name(a)}" for a in left)
                       + " to be deleted")
    held = []
    for device in devices:
        claim = claim_of(device)
        if claim is not None and (claim.namespace, claim.attachment) in wanted:
            held.append(name(device))
    if held:
        return Waiting("waiting for " + ", ".join(held) + " to be released")
    return Done()


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Report = Callable[[str], None]


async def wait_for(step: Callable[[], Awaitable[Progress]], *, timeout: float, what: str,
                   clock: Clock, sleep: Sleep, report: Report,
                   interval: float = 0.5) -> Done:
    """Ask `step` until it is Done (returned) or Refused (its error raised); report each new
    line; after `timeout` seconds raise a TIMEOUT error naming `what` and the last line."""
    deadline = clock() + timeout
    last = ""
    while True:
        progress = await step()
        if isinstance(progress, Done):
            return progress
        if isinstance(progress, Refused):
            raise progress.error
        if progress.line != last:
            report(progress.line)
            last = progress.line
        if clock() >= deadline:
            raise CLIError(f"timed out after {human_duration(timeout)} waiting for {what} "
                           f"(last seen: {last})", code=ExitCode.TIMEOUT)
        await sleep(min(interval, max(0.0, deadline - clock())))
