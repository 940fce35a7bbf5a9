"""Listening addresses: `HOST:PORT` options and bound sockets, with errors that say what to do.

One piece for every server the project runs (API emulator, web UI, agent and controller health).
"""

from __future__ import annotations

import errno
import socket


class ListenError(ValueError):
    """An address that cannot be used; the message says why and what to change."""


def parse_listen(text: str, *, default_host: str | None = None) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 hosts in brackets) as (host, port); an empty host is `default_host`
    when one is given, else an error."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") or (default_host or "")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ListenError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def bind(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A listening, non-blocking TCP socket on host:port (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"{host}:{port} is already in use: stop what listens there or "
                              "choose another port with --listen") from exc
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    # accepted connections inherit it: no Nagle delay between a response's header and body
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
