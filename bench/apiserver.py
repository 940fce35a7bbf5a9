"""The API emulator's own rates: creates and updates per second, a list of 2,000 objects, and watch
fan-out to 100 watchers. The emulator runs in its own process (as in the sandbox), the clients here.

The load comes from a minimal keep-alive HTTP/1.1 client over TLS (TCP_NODELAY, as Go clients set
it) so that on a 2-core machine the client costs little next to the server; the emulator's own CPU
time per request is measured too (from /proc), which says what one core of it sustains whatever
else the machine is doing.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LISTS = 20


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    ca: str

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 443


def start_emulator(workdir: Path) -> tuple[subprocess.Popen[bytes], Endpoint]:
    kubeconfig = workdir / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevirt_usb.cli", "sandbox", "apiserver", "--listen",
         "127.0.0.1:0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the API emulator did not start: {err}")
        time.sleep(0.05)
    config = yaml.safe_load(kubeconfig.read_text())
    ca = workdir / "ca.crt"
    ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]
                                    ["certificate-authority-data"]))
    return proc, Endpoint(url=config["clusters"][0]["cluster"]["server"],
                          token=config["users"][0]["user"]["token"], ca=str(ca))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Connection:
    """One keep-alive HTTP/1.1 connection: a request at a time, Content-Length or chunked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 token: str) -> None:
        self.reader = reader
        self.writer = writer
        self.auth = f"Authorization: Bearer {token}\r\n".encode()

    @classmethod
    async def open(cls, ep: Endpoint) -> Connection:
        host, port = ep.host_port
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context(cafile=ep.ca), limit=2**24)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, ep.token)

    def send(self, method: str, path: str, body: bytes = b"",
             content_type: str = "application/json") -> None:
        head = (f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n").encode()
        self.writer.write(head + self.auth + b"\r\n" + body)

    async def response_head(self) -> tuple[int, dict[str, str]]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        return status, headers

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        self.send(method, path, body, content_type)
        status, headers = await self.response_head()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, data

    async def chunks(self) -> Any:
        """The chunks of a chunked (streaming) response body, as they arrive."""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                return
            chunk = await self.reader.readexactly(size + 2)
            yield chunk[:-2]

    def close(self) -> None:
        self.writer.close()


async def _run_parallel(connections: list[Connection], count: int,
                        job: Callable[[Connection, int], Awaitable[None]]) -> float:
    counter = iter(range(count))

    async def worker(conn: Connection) -> None:
        for index in counter:
            await job(conn, index)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    return time.perf_counter() - start


async def _writes(ep: Endpoint, pid: int, *, objects: int, concurrency: int
                  ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    connections = [await Connection.open(ep) for _ in range(concurrency)]
    base = "/api/v1/namespaces/bench/configmaps"
    await connections[0].request("POST", "/api/v1/namespaces",
                                 orjson.dumps({"metadata": {"name": "bench"}}))

    async def create(conn: Connection, i: int) -> None:
        status, body = await conn.request("POST", base, orjson.dumps(
            {"metadata": {"name": f"cm-{i}"}, "data": {"i": "0"}}))
        if status != 201:
            raise RuntimeError(f"create: {status} {body[:200]!r}")

    async def update(conn: Connection, i: int) -> None:
        status, body = await conn.request("PATCH", f"{base}/cm-{i}",
                                          orjson.dumps({"data": {"i": "1"}}),
                                          "application/merge-patch+json")
        if status != 200:
            raise RuntimeError(f"update: {status} {body[:200]!r}")

    for name, job in (("creates", create), ("updates", update)):
        cpu = cpu_seconds(pid)
        seconds = await _run_parallel(connections, objects, job)
        used = cpu_seconds(pid) - cpu
        results[f"{name}_per_s"] = round(objects / seconds)
        results[f"server_cpu_ms_per_{name[:-1]}"] = round(used / objects * 1000, 3)
        results[f"{name}_per_server_cpu_s"] = round(objects / used) if used else None

    list_times = []
    cpu = cpu_seconds(pid)
    for _ in range(LISTS):
        start = time.perf_counter()
        status, body = await connections[0].request("GET", base)
        items = orjson.loads(body)["items"]
        list_times.append(time.perf_counter() - start)
        if status != 200 or len(items) < objects:  # and the namespace's kube-root-ca.crt
            raise RuntimeError(f"list: {status}, {len(items)} items")
    results["list_2000_ms_median"] = round(statistics.median(list_times) * 1000, 1)
    results["server_cpu_ms_per_list_2000"] = round((cpu_seconds(pid) - cpu) / LISTS * 1000, 1)
    for conn in connections:
        conn.close()
    return results


async def _fan_out(ep: Endpoint, pid: int, *, watchers: int, events: int) -> dict[str, Any]:
    writer = await Connection.open(ep)
    path = "/api/v1/namespaces/bench/configmaps"
    _status, body = await writer.request("POST", path, orjson.dumps(
        {"metadata": {"name": "fan-out"}, "data": {"n": "0"}}))
    rv = orjson.loads(body)["metadata"]["resourceVersion"]
    streams = [await Connection.open(ep) for _ in range(watchers)]

    async def watch(conn: Connection) -> None:
        conn.send("GET", f"{path}?watch=1&resourceVersion={rv}"
                  "&fieldSelector=metadata.name%3Dfan-out&timeoutSeconds=300")
        status, _headers = await conn.response_head()
        if status != 200:
            raise RuntimeError(f"watch: {status}")
        seen = 0
        async for chunk in conn.chunks():
            seen += chunk.count(b'"type":"MODIFIED"')
            if seen >= events:
                return

    # Watches start from `rv`, so one established after some writes replays them from the
    # history: every watcher sees every event, and the clock covers setup and delivery.
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    tasks = [asyncio.create_task(watch(conn)) for conn in streams]
    for n in range(1, events + 1):
        await writer.request("PATCH", f"{path}/fan-out", orjson.dumps({"data": {"n": str(n)}}),
                             "application/merge-patch+json")
    async with asyncio.timeout(300):
        await asyncio.gather(*tasks)
    seconds = time.perf_counter() - start
    used = cpu_seconds(pid) - cpu
    for conn in [writer, *streams]:
        conn.close()
    delivered = watchers * events
    return {"watchers": watchers, "watch_events": events,
            "fan_out_deliveries_per_s": round(delivered / seconds),
            "fan_out_deliveries_per_server_cpu_s": round(delivered / used) if used else None}


async def measure(ep: Endpoint, pid: int, *, objects: int, watchers: int, concurrency: int
                  ) -> dict[str, Any]:
    results = await _writes(ep, pid, objects=objects, concurrency=concurrency)
    results.update(await _fan_out(ep, pid, watchers=watchers, events=100))
    return results


def run(*, objects: int = 2000, watchers: int = 100, concurrency: int = 16) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, ep = start_emulator(Path(tmp))
        try:
            out = asyncio.run(measure(ep, proc.pid, objects=objects, watchers=watchers,
                                      concurrency=concurrency))
        finally:
            proc.terminate()
            proc.wait(10)
    out["objects"] = objects
    out["concurrency"] = concurrency
    out["cpus"] = os.cpu_count()
    return out
