"""The usbredir websocket as the engine worker drives it: non-blocking, from its own poll loop.

It speaks exactly what `kubevirt_usb.stream.usbredir_client` speaks (the same `websockets` protocol
implementation, sans I/O; the same endpoint, URL, token, TLS context and error types from
`kubevirt_usb.stream`): `GET .../usbredir` upgraded with subprotocol `plain.kubevirt.io`, bearer
token, binary frames, pings from this side. The difference is where it runs: inside the worker,
next to libusb, so usbredir bytes go device -> usbredirhost -> TLS -> network in one process, with
no second process and no asyncio loop in between (measured: the extra hop through the agent cost
about half the throughput on the sandbox's nodes).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from kubevirt_usb import __version__
from kubevirt_usb.redirect.outqueue import SendQueue
from kubevirt_usb.stream.endpoint import APIEndpoint
from kubevirt_usb.stream.failures import ConnectFailed, StreamBroken, rejection

SUBPROTOCOL = "plain.kubevirt.io"
USER_AGENT = f"kubevirt-usb/{__version__}"
FRAME = 1 << 16
"""Largest frame sent (the stream client's chunk size)."""
MAX_FRAME = 1 << 20
PING_INTERVAL = 10.0
PING_TIMEOUT = 20.0
_RECV = 1 << 18

Clock = Callable[[], float]


class _Tls:
    """TLS over memory BIOs (as asyncio does it), so the socket stays ours and non-blocking."""

    def __init__(self, ctx: ssl.SSLContext, hostname: str | None) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)

    def handshake(self, sock: socket.socket, deadline: float) -> None:
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                _send_all(sock, self.outgoing.read(), deadline)
                received = _recv_some(sock, deadline)
                if not received:
                    raise ConnectFailed(detail="the server closed the connection during the "
                                        "TLS handshake") from None
                self.incoming.write(received)
                continue
            except ssl.SSLError as exc:
                raise ConnectFailed(detail=f"TLS handshake failed: {exc}") from exc
            _send_all(sock, self.outgoing.read(), deadline)
            return

    def encrypt(self, data: bytes | memoryview) -> bytes:
        self.obj.write(data)
        return self.outgoing.read()

    def decrypt(self, raw: bytes) -> tuple[bytes, bool]:
        """Plaintext from `raw`, and whether the peer ended TLS."""
        if raw:
            self.incoming.write(raw)
        else:
            self.incoming.write_eof()
        out = bytearray()
        while True:
            try:
                chunk = self.obj.read(_RECV)
            except ssl.SSLWantReadError:
                return bytes(out), False
            except ssl.SSLZeroReturnError:
                return bytes(out), True
            if not chunk:
                return bytes(out), True
            out += chunk


class Link:
    """An open usbredir websocket: `send()` usbredir bytes, `receive()` what arrived, `flush()`
    when the socket is writable, `tick()` for keepalive. Errors are `StreamBroken`."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, tls: _Tls | None,
                 *, leftover: list[Frame], clock: Clock) -> None:
        self.sock = sock
        self._protocol = protocol
        self._tls = tls
        self._queue = SendQueue(broken_code=1006)
        self._clock = clock
        self._frames = leftover
        self._ping_at = clock() + PING_INTERVAL
        self._pong_due: float | None = None
        self.closed_by_peer = False
        self.bytes_in = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    # ---- sending ---------------------------------------------------------------------------

    def accepting(self) -> bool:
        """False while more than HIGH_WATER bytes wait for the network."""
        return self._queue.accepting()

    def wants_write(self) -> bool:
        return self._queue.pending > 0

    def send(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), FRAME):
            self._protocol.send_binary(view[start:start + FRAME])
        self._queue_protocol_output()

    def flush(self) -> None:
        """Write what the socket takes now."""
        self._queue.flush(self.sock)

    def _queue_protocol_output(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:
                try:
                    data = self._tls.encrypt(chunk) if self._tls else chunk
                except ssl.SSLError as exc:
                    raise StreamBroken(side="remote", code=1006, detail=f"TLS: {exc}") from exc
                self._queue.push(data)

    # ---- receiving -------------------------------------------------------------------------

    def buffered(self) -> bool:
        """True when frames arrived with the handshake response and were not handed out yet
        (the socket will not signal them again)."""
        return bool(self._frames)

    def receive(self) -> list[bytes] | None:
        """The usbredir payloads that arrived; None once the peer closed the websocket cleanly.
        StreamBroken when the connection broke (reset, EOF without a close frame) or the peer
        sent what is no websocket frame (garbage, a frame over MAX_FRAME, a masked frame...):
        the close frame saying so (1002, 1009) is sent, best effort, and the stream ends."""
        payloads = [bytes(f.data) for f in self._frames
                    if f.opcode in (Opcode.BINARY, Opcode.CONT)]
        self._frames = []
        eof = False
        while not eof:
            try:
                raw = self.sock.recv(_RECV)
            except BlockingIOError:
                break
            except OSError as exc:
                raise StreamBroken(side="remote", code=1006,
                                   detail=exc.strerror or str(exc)) from exc
            try:
                plain, eof = self._tls.decrypt(raw) if self._tls else (raw, not raw)
            except ssl.SSLError as exc:
                raise StreamBroken(side="remote", code=1006, detail=f"TLS: {exc}") from exc
            if plain:
                self._protocol.receive_data(plain)
        if eof:
            self._protocol.receive_eof()
        for event in self._protocol.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode in (Opcode.BINARY, Opcode.CONT):
                payloads.append(bytes(event.data))
            elif event.opcode is Opcode.PONG:
                self._pong_due = None
            elif event.opcode is Opcode.CLOSE:
                self.closed_by_peer = True
        self._queue_protocol_output()
        self.bytes_in += sum(len(p) for p in payloads)
        if self._protocol.parser_exc is not None:
            self._broken_frame(self._protocol.parser_exc)
        if self.closed_by_peer:
            with contextlib.suppress(StreamBroken):
                self.flush()
            return None
        if eof:
            raise StreamBroken(side="remote", code=1006, detail="the connection was closed "
                               "without a close frame")
        return payloads

    def _broken_frame(self, exc: Exception) -> None:
        sent = self._protocol.close_sent
        with contextlib.suppress(StreamBroken):
            self.flush()
        raise StreamBroken(side="remote", code=int(sent.code) if sent else 1002,
                           detail=f"invalid websocket frame from the VM side: {exc}")

    # ---- keepalive and closing -------------------------------------------------------------

    def next_deadline(self) -> float:
        return self._pong_due if self._pong_due is not None else self._ping_at

    def tick(self) -> None:
        """Send a ping when one is due; StreamBroken when the last one went unanswered."""
        now = self._clock()
        if self._pong_due is not None and now >= self._pong_due:
            raise StreamBroken(side="remote", code=1011, detail="keepalive ping timeout")
        if now >= self._ping_at:
            self._protocol.send_ping(b"kvu")
            self._queue_protocol_output()
            self._ping_at = now + PING_INTERVAL
            self._pong_due = now + PING_TIMEOUT

    @property
    def close_code(self) -> int | None:
        return self._protocol.close_code

    def close(self) -> None:
        """Say goodbye (close frame, best effort) and close the socket: the slot is freed."""
        with contextlib.suppress(Exception):
            if not self.closed_by_peer:
                self._protocol.send_close(1000)
                self._queue_protocol_output()
            self.sock.setblocking(False)
            self.flush()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def connect(endpoint: APIEndpoint, *, path: str, timeout: float = 10.0,
            clock: Clock = time.monotonic) -> Link:
    """Open the websocket at `path`; HandshakeRejected (with KubeVirt's Status message) when the
    server refuses, ConnectFailed when it cannot be reached. Blocks for at most `timeout`."""
    url = endpoint.websocket_url(path)
    deadline = time.monotonic() + timeout
    sock = _open_socket(endpoint, url, deadline)
    try:
        tls: _Tls | None = None
        if endpoint.is_tls():
            tls = _Tls(endpoint.ssl_context(),
                       endpoint.tls_server_name or urlsplit(endpoint.server).hostname)
            tls.handshake(sock, deadline)
        protocol = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol(SUBPROTOCOL)],
                                  max_size=MAX_FRAME)
        request = protocol.connect()
        token = endpoint.bearer_token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        request.headers["User-Agent"] = USER_AGENT
        protocol.send_request(request)
        leftover = _handshake(sock, protocol, tls, deadline)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return Link(sock, protocol, tls, leftover=leftover, clock=clock)


def _handshake(sock: socket.socket, protocol: ClientProtocol, tls: _Tls | None,
               deadline: float) -> list[Frame]:
    """Send the upgrade request and read until the response; frames that came with it."""
    for chunk in protocol.data_to_send():
        _send_all(sock, tls.encrypt(chunk) if tls else chunk, deadline)
    while True:
        raw = _recv_some(sock, deadline)
        plain, eof = tls.decrypt(raw) if tls else (raw, not raw)
        if plain:
            protocol.receive_data(plain)
        if eof:
            protocol.receive_eof()
        events = protocol.events_received()
        responses = [e for e in events if isinstance(e, Response)]
        if responses:
            return _accepted(protocol, responses[0], [e for e in events if isinstance(e, Frame)])
        if eof:
            raise ConnectFailed(detail="the server closed the connection during the handshake")


def _accepted(protocol: ClientProtocol, response: Response, frames: list[Frame]) -> list[Frame]:
    error = protocol.handshake_exc
    if isinstance(error, InvalidStatus):
        raise rejection(status_code=error.response.status_code, body=error.response.body,
                        phrase=error.response.reason_phrase)
    if isinstance(error, InvalidHandshake):
        raise ConnectFailed(detail=f"websocket handshake failed: {error}")
    if error is not None:
        raise ConnectFailed(detail=f"websocket handshake failed: {error}")
    del response
    return frames


def _open_socket(endpoint: APIEndpoint, url: str, deadline: float) -> socket.socket:
    target = urlsplit(url)
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "wss" else 80)
    via = urlsplit(endpoint.proxy) if endpoint.proxy else None
    try:
        sock = socket.create_connection(
            (via.hostname or "", via.port or 80) if via else (host, port),
            timeout=max(0.1, deadline - time.monotonic()))
    except OSError as exc:
        raise ConnectFailed(detail=f"{url}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    if via is not None:
        try:
            _tunnel(sock, host, port, deadline)
        except BaseException:
            sock.close()
            raise
    return sock


def _tunnel(sock: socket.socket, host: str, port: int, deadline: float) -> None:
    """An HTTP CONNECT tunnel through the kubeconfig's `proxy-url`."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    _send_all(sock, f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode(),
              deadline)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = _recv_some(sock, deadline)
        if not chunk:
            raise ConnectFailed(detail="the proxy closed the connection")
        answer += chunk
    first_line = answer.split(b"\r\n", 1)[0]
    status = first_line.split()
    if len(status) < 2 or status[1] != b"200":
        raise ConnectFailed(detail=f"the proxy refused: {first_line.decode(errors='replace')}")


def _wait(sock: socket.socket, events: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConnectFailed(detail="timed out")
    poller = select.poll()
    poller.register(sock, events)
    if not poller.poll(remaining * 1000):
        raise ConnectFailed(detail="timed out")


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            _wait(sock, select.POLLOUT, deadline)
            continue
        except OSError as exc:
            raise ConnectFailed(detail=exc.strerror or str(exc)) from exc
        view = view[sent:]


def _recv_some(sock: socket.socket, deadline: float) -> bytes:
    while True:
        try:
            return sock.recv(_RECV)
        except BlockingIOError:
            _wait(sock, select.POLLIN, deadline)
        except OSError as exc:
            raise ConnectFailed(detail=exc.strerror or str(exc)) from exc
