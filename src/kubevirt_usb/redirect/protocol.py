"""The messages between the agent and a device's engine worker, one JSON object per datagram on a
unix SOCK_SEQPACKET pair (the lock's file descriptor rides along with `Open` as SCM_RIGHTS).

A session, in the order that keeps device and VM safe:

    agent: Open (+ lock fd)  -> worker: Opened | OpenFailed        the device, exactly, untouched
    agent: Stream(endpoint)  -> worker: Rejected | Unreachable      no slot taken, device untouched
       or StreamLocal (+ the slot socket's fd, connected by the agent: the node-local path)
                                      | StartFailed                 slot given back
                                      | Started, Attached, Progress..., Ended
    agent: Close             -> worker: Ended (if a session is open)

The worker then waits for the next `Open`; it exits when the agent closes the control socket.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from kubevirt_usb.stream.endpoint import APIEndpoint, StaticToken

OpenFailure = Literal["absent", "changed", "mismatch", "access", "error"]
EndReason = Literal["device-lost", "rejected", "protocol-error", "stopped", "stream-closed",
                    "stream-broken", "error"]
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Open:
    """Open the device at `port_path`, expected at `bus`/`devnum` with these ids."""

    port_path: str
    bus: int
    devnum: int
    vendor_id: int
    product_id: int
    sysfs_root: str = "/sys"
    devfs_root: str = "/dev"


@dataclass(frozen=True, kw_only=True)
class Stream:
    """Take a VM slot (open the websocket at `path` on `endpoint`) and stream the device."""

    endpoint: dict[str, Any]
    path: str
    connect_timeout: float = 10.0


@dataclass(frozen=True, kw_only=True)
class StreamLocal:
    """Stream the device into the VM slot socket that rides along (SCM_RIGHTS): the agent
    connected it on the node-local path, and the slot is held from then on."""

    slot: int


@dataclass(frozen=True)
class Close:
    """End the session: stop streaming, give the device back, free the slot."""


@dataclass(frozen=True, kw_only=True)
class Ready:
    pid: int
    libusb: str


@dataclass(frozen=True)
class Opened:
    """The usbfs node is open and is the device that was checked; nothing was sent to it."""


@dataclass(frozen=True, kw_only=True)
class OpenFailed:
    kind: OpenFailure
    detail: str


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """The server answered the upgrade with an HTTP error (KubeVirt's `Status` in `body`)."""

    status_code: int
    body: str
    phrase: str = ""


@dataclass(frozen=True, kw_only=True)
class Unreachable:
    detail: str


@dataclass(frozen=True, kw_only=True)
class StartFailed:
    """The usbredir host refused the device (claiming or resetting it failed)."""

    detail: str


@dataclass(frozen=True)
class Started:
    """The slot is taken and the usbredir host owns the device (claimed, reset)."""


@dataclass(frozen=True)
class Attached:
    """The VM's usbredir slot answered: the first bytes came from the VM."""


@dataclass(frozen=True, kw_only=True)
class Progress:
    to_vm: int
    from_vm: int


@dataclass(frozen=True, kw_only=True)
class Ended:
    reason: EndReason
    detail: str = ""
    close_code: int | None = None
    to_vm: int = 0
    from_vm: int = 0


@dataclass(frozen=True, kw_only=True)
class Log:
    level: int
    message: str


Request = Open | Stream | StreamLocal | Close
Event = (Ready | Opened | OpenFailed | Rejected | Unreachable | StartFailed | Started | Attached
         | Progress | Ended | Log)
Message = Request | Event

_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    Open, Stream, StreamLocal, Close, Ready, Opened, OpenFailed, Rejected, Unreachable,
    StartFailed, Started, Attached, Progress, Ended, Log)}


class ProtocolError(ValueError):
    """A datagram that is not a message of this protocol."""


def encode(message: Message) -> bytes:
    data = json.dumps({"type": type(message).__name__, **asdict(message)}).encode()
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message too long ({len(data)} bytes)")
    return data


def decode(data: bytes) -> Message:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {data[:80]!r}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError(f"not an object: {data[:80]!r}")
    cls = _TYPES.get(str(raw.pop("type", "")))
    if cls is None:
        raise ProtocolError(f"unknown message: {data[:80]!r}")
    names = {f.name for f in fields(cls)}
    try:
        message: Message = cls(**{k: v for k, v in raw.items() if k in names})
    except TypeError as exc:
        raise ProtocolError(f"bad {cls.__name__}: {exc}") from exc
    return message


_PATHS = ("ca_file", "client_cert_file", "client_key_file")
_DATA = ("ca_data", "client_cert_data", "client_key_data")
_TEXT = ("server", "tls_server_name", "proxy")


def endpoint_to_wire(endpoint: APIEndpoint) -> dict[str, Any]:
    """An endpoint as a message field, with the bearer token as it is now (tokens rotate: each
    stream gets the current one)."""
    wire: dict[str, Any] = {"token": endpoint.bearer_token(),
                            "insecure_skip_tls_verify": endpoint.insecure_skip_tls_verify}
    for name in _PATHS:
        value = getattr(endpoint, name)
        wire[name] = str(value) if value is not None else None
    for name in _DATA:
        value = getattr(endpoint, name)
        wire[name] = base64.b64encode(value).decode() if value is not None else None
    for name in _TEXT:
        wire[name] = getattr(endpoint, name)
    return wire


def endpoint_from_wire(wire: dict[str, Any]) -> APIEndpoint:
    """The endpoint `endpoint_to_wire` described."""
    token = wire.get("token")

    def path(name: str) -> Path | None:
        return Path(wire[name]) if wire.get(name) else None

    def data(name: str) -> bytes | None:
        return base64.b64decode(wire[name]) if wire.get(name) else None

    return APIEndpoint(
        server=str(wire["server"]),
        token=StaticToken(str(token)) if token else None,
        ca_file=path("ca_file"), ca_data=data("ca_data"),
        client_cert_file=path("client_cert_file"), client_key_file=path("client_key_file"),
        client_cert_data=data("client_cert_data"), client_key_data=data("client_key_data"),
        insecure_skip_tls_verify=bool(wire.get("insecure_skip_tls_verify")),
        tls_server_name=wire.get("tls_server_name") or None,
        proxy=wire.get("proxy") or None,
    )
