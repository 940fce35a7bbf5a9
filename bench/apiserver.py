"""The API emulator's own rates: creates and updates per second, a list of 2,000 objects, and watch
fan-out to 100 watchers. The emulator runs in its own process (as in the sandbox), the clients here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    ca: str


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


def _client(ep: Endpoint, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=ep.url, verify=ep.ca, timeout=60,
                             headers={"Authorization": f"Bearer {ep.token}"},
                             limits=httpx.Limits(max_connections=connections))


async def _run_parallel(jobs: list[Any], concurrency: int) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await queue.get_nowait()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def measure(ep: Endpoint, *, objects: int, watchers: int, concurrency: int
                  ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with _client(ep, concurrency) as http:
        await http.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}})
        base = "/api/v1/namespaces/bench/configmaps"

        async def create(i: int) -> None:
            r = await http.post(base, json={"metadata": {"name": f"cm-{i}"}, "data": {"i": "0"}})
            r.raise_for_status()

        seconds = await _run_parallel([create(i) for i in range(objects)], concurrency)
        results["creates_per_s"] = objects / seconds

        async def update(i: int) -> None:
            r = await http.patch(f"{base}/cm-{i}", json={"data": {"i": "1"}},
                                 headers={"Content-Type": "application/merge-patch+json"})
            r.raise_for_status()

        seconds = await _run_parallel([update(i) for i in range(objects)], concurrency)
        results["updates_per_s"] = objects / seconds

        list_times = []
        for _ in range(5):
            start = time.perf_counter()
            r = await http.get(base)
            r.raise_for_status()
            assert len(r.json()["items"]) == objects
            list_times.append(time.perf_counter() - start)
        results["list_2000_ms_median"] = statistics.median(list_times) * 1000

    results.update(await _fan_out(ep, watchers=watchers, events=100))
    return results


async def _fan_out(ep: Endpoint, *, watchers: int, events: int) -> dict[str, Any]:
    async with _client(ep, watchers + 4) as http:
        r = await http.post("/api/v1/namespaces/bench/configmaps",
                            json={"metadata": {"name": "fan-out"}, "data": {"n": "0"}})
        rv = r.json()["metadata"]["resourceVersion"]
        received = [0] * watchers

        async def watch(index: int) -> None:
            params = {"watch": "1", "resourceVersion": rv,
                      "fieldSelector": "metadata.name=fan-out"}
            async with http.stream("GET", "/api/v1/namespaces/bench/configmaps",
                                   params=params) as stream:
                async for line in stream.aiter_lines():
                    if line and json.loads(line)["type"] == "MODIFIED":
                        received[index] += 1
                        if received[index] == events:
                            return

        # Watches start from `rv`, so one established after some writes replays them from the
        # history: every watcher sees every event, and the clock covers setup and delivery.
        tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
        start = time.perf_counter()
        for n in range(1, events + 1):
            await http.patch("/api/v1/namespaces/bench/configmaps/fan-out",
                             json={"data": {"n": str(n)}},
                             headers={"Content-Type": "application/merge-patch+json"})
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
        seconds = time.perf_counter() - start
    delivered = watchers * events
    return {"watchers": watchers, "watch_events": events,
            "fan_out_deliveries_per_s": delivered / seconds}


def run(*, objects: int = 2000, watchers: int = 100, concurrency: int = 16) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, ep = start_emulator(Path(tmp))
        try:
            out = asyncio.run(measure(ep, objects=objects, watchers=watchers,
                                      concurrency=concurrency))
        finally:
            proc.terminate()
            proc.wait(10)
    out["objects"] = objects
    out["concurrency"] = concurrency
    out["cpus"] = os.cpu_count()
    return out
