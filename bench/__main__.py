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


@main.command()
@click.option("--agents", default=100, show_default=True, help="Simulated node agents.")
@click.option("--devices", default=16, show_default=True, help="USB devices per node.")
@click.option("--steady-seconds", default=60.0, show_default=True,
              help="Length of the steady-state window in which API requests are counted.")
@click.option("--settle-seconds", default=15.0, show_default=True,
              help="How long the real agent process runs after it is ready before its RSS is read.")
def agents(agents: int, devices: int, steady_seconds: float, settle_seconds: float) -> None:
    """Node agents: API writes per agent per minute in steady state, hot-plug latency, agent RSS."""
    from bench import agent_inventory

    record("agents", agent_inventory.run(agents=agents, devices=devices,
                                         steady_seconds=steady_seconds,
                                         settle_seconds=settle_seconds))


@main.command()
@click.option("--attachments", default=400, show_default=True)
@click.option("--devices", default=1600, show_default=True)
@click.option("--rate", default=100.0, show_default=True,
              help="Attachments created per second (0: as fast as possible).")
@click.option("--selector", type=click.Choice(["serial", "model"]), default="serial",
              show_default=True, help="Each names one device, or any of the model.")
@click.option("--workers", default=8, show_default=True)
@click.option("--sandbox", "in_sandbox", is_flag=True,
              help="Instead: attach latency into a VM's kernel in the cluster in a box.")
@click.option("--rounds", default=3, show_default=True, help="With --sandbox.")
def controller(attachments: int, devices: int, rate: float, selector: str, workers: int,
               in_sandbox: bool, rounds: int) -> None:
    """The controller: USBAttachment created until Bound, on the API emulator (or, with
    --sandbox, until the VM's kernel sees the device)."""
    from bench import controller as bench_controller

    if in_sandbox:
        record("controller-sandbox", bench_controller.run_sandbox(
            rounds=rounds))
        return
    key = "controller" if (selector, rate) == ("serial", 100.0) else \
        f"controller-{selector}-{'burst' if rate == 0 else f'{rate:g}-per-s'}"
    record(key, bench_controller.run(attachments=attachments, devices=devices, rate=rate,
                                     selector=selector, workers=workers))


@main.command()
@click.option("--mib", default=64, show_default=True, help="MiB read per measurement.")
@click.option("--rounds", default=5, show_default=True,
              help="Measured rounds after the warm-up round, each: every path in turn.")
@click.option("--reads", default=2, show_default=True, help="Reads per path per round.")
@click.option("--paths", default=",".join(("direct", "local", "api", "direct-host")),
              show_default=True,
              help="Which paths, comma-separated (direct is the baseline of the ratios).")
def datapath(mib: int, rounds: int, reads: int, paths: str) -> None:
    """The data path: a read in the VM guest over usbredirect straight into the slot (direct),
    the agent's node-local path and the agent's API path, alternating in one run."""
    from bench import datapath as bench_datapath

    chosen = tuple(p.strip() for p in paths.split(",") if p.strip())
    unknown = [p for p in chosen if p not in bench_datapath.PATHS]
    if unknown or not chosen:
        raise click.BadParameter(f"choose from {', '.join(bench_datapath.PATHS)}",
                                 param_hint="--paths")
    record("datapath", bench_datapath.run(mib=mib, rounds=rounds, reads=reads, paths=chosen))


@main.command()
@click.option("--minutes", default=30.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="How long faults are injected.")
@click.option("--min-faults", default=0, show_default=True, type=click.IntRange(min=0),
              help="Go on past --minutes until this many faults have recovered (up to a hard "
                   "cap; reaching it fails the run).")
@click.option("--seed", type=click.IntRange(min=0),
              help="The fault schedule's seed (default: random, printed).")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
              help="The sandbox's state directory (default: a temporary one).")
def soak(minutes: float, min_faults: int, seed: int | None, state_dir: Path | None) -> None:
    """The chaos soak: checksummed I/O in the VMs while faults are injected; recoveries,
    corrupt blocks, leaks and RSS."""
    from bench import soak as bench_soak

    def say(line: str) -> None:
        click.echo(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {line}", err=True)

    results = bench_soak.run(minutes=minutes, min_faults=min_faults, seed=seed,
                             state_dir=state_dir, progress=say)
    record("soak" if minutes == 30 else f"soak-{minutes:g}min", results)
    if results["incomplete"]:
        raise click.ClickException(f"the soak is incomplete: {results['incomplete']}")


if __name__ == "__main__":
    main()
