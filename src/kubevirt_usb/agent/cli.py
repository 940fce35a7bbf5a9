"""`kubevirt-usb agent`: the node agent, as the DaemonSet runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import click

from kubevirt_usb.agent import logs
from kubevirt_usb.agent.health import HealthServer, parse_listen
from kubevirt_usb.agent.hotplug import EventSource, NetlinkEventSource, QueueEventSource
from kubevirt_usb.agent.localpath import LocalPathSettings
from kubevirt_usb.agent.objects import FIELD_MANAGER
from kubevirt_usb.agent.runner import Agent, AgentOptions
from kubevirt_usb.agent.settings import LOG_LEVELS, UEVENT_SOURCES, AgentSettings, env_names
from kubevirt_usb.agent.streaming import start_streaming, stream_endpoint
from kubevirt_usb.allocator import fix_mmap_threshold, glibc_mallopt
from kubevirt_usb.kube.client import connect
from kubevirt_usb.kube.config import ConfigError, load_config
from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.models import USBREDIR_MISSING_PREFIX, USBREDIR_VERSION_ANNOTATION
from kubevirt_usb.redirect.libversion import LibraryVersion, usbredir_version
from kubevirt_usb.redirect.usbredirhost import LIBRARY as USBREDIR_LIBRARY
from kubevirt_usb.usb.usbids import UsbIds

log = logging.getLogger("kubevirt_usb.agent")


def lease_annotations(usbredir: LibraryVersion | None) -> dict[str, str]:
    """What the agent's heartbeat Lease says about the node for `kubectl usb doctor`."""
    described = (usbredir.describe() if usbredir is not None else
                 f"{USBREDIR_MISSING_PREFIX}: {USBREDIR_LIBRARY} cannot be loaded")
    return {USBREDIR_VERSION_ANNOTATION: described}


def agent_options(settings: AgentSettings, *, usbredir: LibraryVersion | None) -> AgentOptions:
    return AgentOptions(
        node=settings.node_name, usb_ids=UsbIds(settings.usb_ids),
        sysfs_root=settings.sysfs_root, namespace=settings.namespace,
        grace_period=settings.grace_period, rescan_interval=settings.rescan_interval,
        lease_duration=settings.lease_duration, renew_interval=settings.renew_interval,
        restart_grace=settings.restart_grace, lease_annotations=lease_annotations(usbredir))


def event_source(settings: AgentSettings) -> EventSource:
    if settings.uevents == "none":
        return QueueEventSource()  # nothing is ever pushed: periodic rescans only
    return NetlinkEventSource(source=settings.uevents)


async def serve(settings: AgentSettings) -> None:
    """Run the agent and its health endpoint until SIGTERM or SIGINT."""
    config = load_config(kubeconfig=settings.kubeconfig, context=settings.context)
    client = connect(config, field_manager=FIELD_MANAGER)
    usbredir = await asyncio.to_thread(usbredir_version)
    if usbredir is None:
        log.error("%s cannot be loaded: devices are listed but cannot be streamed into VMs; "
                  "install the usbredir host library (Debian: libusbredirhost1, Fedora: "
                  "usbredir)", USBREDIR_LIBRARY)
    agent = Agent(agent_options(settings, usbredir=usbredir), client=client,
                  events=event_source(settings))
    host, port = parse_listen(settings.health_listen)
    health = HealthServer(host=host, port=port, live=agent.live, ready=agent.ready,
                          metrics=agent.metrics.render)
    bound = await health.start()
    task = asyncio.create_task(agent.run())
    streams = start_streaming(node=settings.node_name, client=client, endpoint=stream_endpoint(
        kubeconfig=settings.kubeconfig, context=settings.context, environ=os.environ),
        registry=agent.metrics.registry, sysfs_root=settings.sysfs_root,
        local_path=LocalPathSettings(enabled=settings.local_path, host_proc=settings.host_proc))
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def stop() -> None:
        stopped.set()
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info("agent started", extra={"node": settings.node_name, "server": config.cluster.server,
                                     "health_port": bound, "sysfs_root": str(settings.sysfs_root),
                                     "usbredir": usbredir.describe() if usbredir else None})
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        streams.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streams
        if stopped.is_set():
            await _farewell(agent, node=settings.node_name)
        await health.close()
        await client.close()
        log.info("agent stopped", extra={"node": settings.node_name})


async def _farewell(agent: Agent, *, node: str) -> None:
    """Leave the heartbeat Lease counting for the restart grace (a few seconds at most)."""
    try:
        async with asyncio.timeout(5.0):  # not wait_for: see kubevirt_usb.tasks
            failure = await agent.heartbeat.farewell()
    except TimeoutError:
        failure = KubeError("no answer within 5s", reason="Timeout")
    if failure is not None:
        log.warning("the heartbeat Lease was not extended for a restart: %s", failure.message,
                    extra={"node": node, "reason": failure.reason})


def _settings(options: dict[str, Any]) -> AgentSettings:
    given = {key: value for key, value in options.items() if value is not None}
    if "node_name" not in given:
        raise click.UsageError("the node name is missing: pass --node-name or set NODE_NAME "
                               "(the downward API's spec.nodeName)")
    try:
        return AgentSettings(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--node-name", envvar=env_names("node_name"), show_envvar=True,
              help="This node's name (the downward API's spec.nodeName).")
@click.option("--kubeconfig", envvar=env_names("kubeconfig"), show_envvar=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="Kubeconfig file (default: in-cluster service account, else $KUBECONFIG).")
@click.option("--context", envvar=env_names("context"), show_envvar=True,
              help="Kubeconfig context (default: its current context).")
@click.option("--namespace", envvar=env_names("namespace"), show_envvar=True,
              help="Namespace of the heartbeat Lease [default: kubevirt-usb].")
@click.option("--sysfs-root", envvar=env_names("sysfs_root"), show_envvar=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="Where sysfs is mounted [default: /sys].")
@click.option("--usb-ids", envvar=env_names("usb_ids"), show_envvar=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="The usb.ids database [default: /usr/share/misc/usb.ids].")
@click.option("--health-listen", envvar=env_names("health_listen"), show_envvar=True,
              metavar="HOST:PORT", help="/healthz, /readyz and /metrics [default: 0.0.0.0:8080].")
@click.option("--grace-period", envvar=env_names("grace_period"), show_envvar=True, type=float,
              help="Seconds an absent, unbound device is kept before it is deleted [600].")
@click.option("--rescan-interval", envvar=env_names("rescan_interval"), show_envvar=True,
              type=float, help="Seconds between full rescans [60].")
@click.option("--lease-duration", envvar=env_names("lease_duration"), show_envvar=True, type=int,
              help="Seconds the heartbeat Lease counts for [40].")
@click.option("--renew-interval", envvar=env_names("renew_interval"), show_envvar=True, type=float,
              help="Seconds between heartbeat renewals [10].")
@click.option("--restart-grace", envvar=env_names("restart_grace"), show_envvar=True, type=int,
              help="Seconds the heartbeat Lease counts for once the agent is stopped: a "
              "restart within them keeps the node's devices reachable [120].")
@click.option("--uevents", envvar=env_names("uevents"), show_envvar=True,
              type=click.Choice(UEVENT_SOURCES),
              help="Hot-plug events from the kernel, from udevd, or none [kernel].")
@click.option("--log-level", envvar=env_names("log_level"), show_envvar=True,
              type=click.Choice(LOG_LEVELS), help="[default: info]")
@click.option("--local-path/--no-local-path", envvar=env_names("local_path"), show_envvar=True,
              default=None, help="Stream straight into the VM's usb-redir slot socket when the VM "
              "runs on this node (needs the host's /proc; see docs/install.md) [default: on].")
@click.option("--host-proc", envvar=env_names("host_proc"), show_envvar=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="The host's /proc, for the node-local path [default: /proc].")
def agent(**options: Any) -> None:
    """Publish this node's USB devices as USBDevice objects and keep them current."""
    settings = _settings(options)
    logs.configure(level=settings.log_level)
    # Every reconnect would otherwise fragment the heap a little more (kubevirt_usb.allocator).
    # The streams' own reads happen in the engine workers, separate processes left as they are.
    fix_mmap_threshold(mallopt=glibc_mallopt())
    try:
        asyncio.run(serve(settings))
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(f"the agent cannot start: {exc}") from exc
