"""`kubevirt-usb controller`: the controller, as its Deployment runs it (two replicas are fine:
only the one holding the election Lease acts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from kubevirt_usb.agent import logs
from kubevirt_usb.agent.health import HealthServer, parse_listen
from kubevirt_usb.allocator import fix_mmap_threshold, glibc_mallopt
from kubevirt_usb.controller.manager import Controller, run_elected
from kubevirt_usb.controller.settings import ControllerSettings
from kubevirt_usb.kube.client import connect
from kubevirt_usb.kube.config import ConfigError, load_config

log = logging.getLogger("kubevirt_usb.controller")
FIELD_MANAGER = "kubevirt-usb-controller"


class Status:
    """What /healthz, /readyz and /metrics report."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.controller: Controller | None = None
        self.terms = 0

    def on_term(self, controller: Controller | None) -> None:
        self.controller = controller
        self.terms += controller is not None

    def live(self) -> str | None:
        return "the controller loop has stopped" if self.task.done() else None

    def metrics(self) -> tuple[bytes, str]:
        c = self.controller
        lines = [
            "# TYPE kubevirt_usb_controller_leading gauge",
            f"kubevirt_usb_controller_leading {int(c is not None)}",
            "# TYPE kubevirt_usb_controller_terms_total counter",
            f"kubevirt_usb_controller_terms_total {self.terms}",
            "# TYPE kubevirt_usb_controller_reconciles gauge",
            f"kubevirt_usb_controller_reconciles {c.reconciles if c else 0}",
            "# TYPE kubevirt_usb_controller_writes gauge",
            f"kubevirt_usb_controller_writes {c.executor.writes if c else 0}",
            "# TYPE kubevirt_usb_controller_queue_depth gauge",
            f"kubevirt_usb_controller_queue_depth {len(c.queue) if c else 0}",
        ]
        return ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4"


async def serve(settings: ControllerSettings) -> None:
    """Run the controller and its health endpoint until SIGTERM or SIGINT."""
    config = load_config(kubeconfig=settings.kubeconfig, context=settings.context)
    client = connect(config, field_manager=FIELD_MANAGER)
    holder: list[Status] = []
    task = asyncio.create_task(run_elected(client, settings.options(),
                                           on_term=lambda c: holder[0].on_term(c)))
    status = Status(task)
    holder.append(status)
    host, port = parse_listen(settings.health_listen)
    health = HealthServer(host=host, port=port, live=status.live, ready=status.live,
                          metrics=status.metrics)
    bound = await health.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    log.info("controller started", extra={"identity": settings.identity,
                                          "server": config.cluster.server,
                                          "health_port": bound})
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await health.close()
        await client.close()
        log.info("controller stopped", extra={"identity": settings.identity})


def _settings(options: dict[str, Any]) -> ControllerSettings:
    given = {key: value for key, value in options.items() if value is not None}
    try:
        return ControllerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise click.UsageError(problems) from exc


@click.command()
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              help="Kubeconfig file (default: in-cluster service account, else $KUBECONFIG).")
@click.option("--context", help="Kubeconfig context (default: its current context).")
@click.option("--namespace", help="Namespace of the election Lease and the agents' heartbeat "
              "Leases [env POD_NAMESPACE; default kubevirt-usb].")
@click.option("--identity", help="This replica's name [env POD_NAME; default host-pid].")
@click.option("--workers", type=int, help="Attachments reconciled at once [8].")
@click.option("--lease-duration", type=float, help="Seconds a leader's renewal counts [15].")
@click.option("--renew-deadline", type=float,
              help="Seconds a leader keeps acting without a renewal [10].")
@click.option("--retry-period", type=float, help="Seconds between election attempts [2].")
@click.option("--agent-lease-prefix", help="Name prefix of the agents' heartbeat Leases "
              "[kubevirt-usb-agent-].")
@click.option("--health-listen", metavar="HOST:PORT",
              help="/healthz, /readyz and /metrics [default 0.0.0.0:8081].")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def controller(**options: Any) -> None:
    """Bind USBAttachments to USBDevices under the USBPolicies, and keep them bound.

    Every option can also be set as KUBEVIRT_USB_<OPTION> (e.g. KUBEVIRT_USB_WORKERS).
    """
    settings = _settings(options)
    logs.configure(level=settings.log_level)
    # Every reconnect would otherwise fragment the heap a little more (kubevirt_usb.allocator).
    fix_mmap_threshold(mallopt=glibc_mallopt())
    try:
        asyncio.run(serve(settings))
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(f"the controller cannot start: {exc}") from exc
