"""`python -m bench`: run a benchmark and record its results in docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

import click

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmark-results.json"


def record(name: str, results: dict[str, Any]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {"measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "machine": platform.platform(), **results}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    click.echo(json.dumps(results, indent=2, sort_keys=True))


@click.group()
def main() -> None:
    """Benchmarks of kubevirt-usb; each writes docs/benchmark-results.json."""


@main.command()
@click.option("--objects", default=2000, show_default=True)
@click.option("--watchers", default=100, show_default=True)
@click.option("--concurrency", default=16, show_default=True)
def apiserver(objects: int, watchers: int, concurrency: int) -> None:
    """The API emulator's create/update rates, list latency and watch fan-out."""
    from bench import apiserver as bench_apiserver

    record("apiserver", bench_apiserver.run(objects=objects, watchers=watchers,
                                            concurrency=concurrency))


@main.command()
@click.option("--runs", default=3, show_default=True)
@click.option("--rounds", default=5, show_default=True)
def sandbox(runs: int, rounds: int) -> None:
    """The cluster in a box: `up` to ready, and QMP hot-plug latency in the node's sysfs."""
    from bench import sandbox as bench_sandbox

    record("sandbox", bench_sandbox.run(runs=runs, rounds=rounds))


if __name__ == "__main__":
    main()
