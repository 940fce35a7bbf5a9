"""The node-local transport of the engine worker: the VMI's usb-redir slot socket itself, already
connected by the agent (`redirect.localpath`) and handed over with SCM_RIGHTS. The same face as
`wslink.Link`, with nothing to frame, encrypt or ping: usbredir bytes go straight to QEMU's
chardev, and QEMU's end closing is the stream ending.
"""

from __future__ import annotations

import contextlib
import math
import socket

from kubevirt_usb.redirect.outqueue import SendQueue
from kubevirt_usb.stream.failures import StreamBroken

_RECV = 1 << 18


class UnixLink:
    """A connected usb-redir slot socket: `send()` queues, `flush()` writes what the socket
    takes, `receive()` returns what arrived (None once QEMU closed its end)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._queue = SendQueue(broken_code=None)

    def fileno(self) -> int:
        return self.sock.fileno()

    def accepting(self) -> bool:
        return self._queue.accepting()

    def wants_write(self) -> bool:
        return self._queue.pending > 0

    def send(self, data: bytes | memoryview) -> None:
        self._queue.push(data)

    def flush(self) -> None:
        self._queue.flush(self.sock)

    def buffered(self) -> bool:
        return False

    def receive(self) -> list[bytes] | None:
        payloads: list[bytes] = []
        while True:
            try:
                data = self.sock.recv(_RECV)
            except BlockingIOError:
                return payloads
            except OSError as exc:
                raise StreamBroken(side="remote", code=None,
                                   detail=exc.strerror or str(exc)) from exc
            if not data:
                return None
            payloads.append(data)

    def next_deadline(self) -> float:
        return math.inf

    def tick(self) -> None:
        """Nothing to keep alive: a local socket breaks loudly."""

    @property
    def close_code(self) -> int | None:
        return None

    def close(self) -> None:
        with contextlib.suppress(StreamBroken):
            self.flush()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
