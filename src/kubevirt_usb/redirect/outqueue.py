"""What an engine worker's link has to send and the socket did not take yet: one queue for both
transports (`wslink`'s websocket frames, `unixlink`'s raw usbredir bytes), written with
`sendmsg` (up to 64 buffers a call, no joining) whenever the socket is writable.
"""

from __future__ import annotations

import collections
import itertools
import socket

from kubevirt_usb.stream.failures import StreamBroken

HIGH_WATER = 1 << 20
"""Bytes waiting for the socket above which a link refuses more (`accepting()`)."""
_IOV = 64


class SendQueue:
    """Bytes waiting for a non-blocking socket, in order."""

    def __init__(self, *, broken_code: int | None) -> None:
        self._out: collections.deque[memoryview] = collections.deque()
        self.pending = 0
        """Bytes queued and not yet taken by the socket."""
        self._broken_code = broken_code

    def accepting(self) -> bool:
        """False while more than HIGH_WATER bytes wait."""
        return self.pending < HIGH_WATER

    def push(self, data: bytes | memoryview) -> None:
        if data:
            self._out.append(memoryview(data))
            self.pending += len(data)

    def flush(self, sock: socket.socket) -> None:
        """Write what the socket takes now; a failed write is `StreamBroken` (with the code the
        link reports for a broken connection)."""
        out = self._out
        while out:
            try:
                sent = sock.sendmsg(list(itertools.islice(out, _IOV)))
            except BlockingIOError:
                return
            except OSError as exc:
                raise StreamBroken(side="remote", code=self._broken_code,
                                   detail=exc.strerror or str(exc)) from exc
            self.pending -= sent
            while sent:
                head = out[0]
                if len(head) <= sent:
                    sent -= len(head)
                    out.popleft()
                else:
                    out[0] = head[sent:]
                    sent = 0
