"""Running the sandbox in the foreground: progress lines, the control socket, the state file,
signals, and a clean stop whatever happens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from kubevirt_usb.apiserver.server import ServerStartError
from kubevirt_usb.sandbox.cluster import Sandbox, SandboxError, SandboxOptions
from kubevirt_usb.sandbox.control import ControlServer, StatePaths
from kubevirt_usb.sandbox.guest import GuestError
from kubevirt_usb.sandbox.guest_image import ImageBuildError
from kubevirt_usb.sandbox.scenario import Scenario
from kubevirt_usb.web.sandbox import SandboxWeb, start_web_for_sandbox

Echo = Callable[[str], None]
REAL_SERVER_NOTE = ("  (on a real API server the web UI and the demo are not started: they use the "
                    "API emulator's own users)")
STARTUP_ERRORS = (SandboxError, GuestError, ImageBuildError, ServerStartError, OSError)


def _progress(echo: Echo) -> Callable[[str], None]:
    start = time.monotonic()

    def report(message: str) -> None:
        echo(f"[{time.monotonic() - start:5.1f}s] {message}")

    return report


def next_steps(sandbox: Sandbox, paths: StatePaths) -> str:
    nodes = ", ".join(sorted(sandbox.nodes)) or "none"
    vms = ", ".join(f"{ns}/{n}" for ns, n in sorted(sandbox.vms)) or "none"
    first_node = next(iter(sorted(sandbox.nodes)), "node1")
    return "\n".join([
        "",
        f"The sandbox is ready: nodes {nodes}; VMs {vms}.",
        f"  export KUBECONFIG={paths.kubeconfig}",
        "  kubectl get nodes,vms,vmis",
        "  kubevirt-usb sandbox status",
        f"  kubevirt-usb sandbox exec --node {first_node} -- 'cat /sys/bus/usb/devices/*/serial'",
        f"  kubevirt-usb sandbox unplug --node {first_node} AAA2   # and plug it back with plug",
        "  kubevirt-usb sandbox down",
        "",
    ])


async def run_sandbox(scenario: Scenario, paths: StatePaths, *, demo: bool, echo: Echo,
                      web_port: int = 0, apiserver_kubeconfig: Path | None = None) -> int:
    """Start, serve until SIGINT/SIGTERM or `down`, stop. Returns the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    paths.directory.mkdir(parents=True, exist_ok=True)
    report = _progress(echo)
    sandbox = Sandbox(SandboxOptions(scenario=scenario, state_dir=paths.directory,
                                     progress=report, apiserver_kubeconfig=apiserver_kubeconfig))
    control = ControlServer(sandbox, paths, on_shutdown=stop.set)
    web: SandboxWeb | None = None
    try:
        starting = asyncio.create_task(sandbox.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            echo("interrupted while starting; stopping")
            return 130
        stopped.cancel()
        starting.result()
        await control.start()
        if not sandbox.on_real_apiserver:
            web = await start_web_for_sandbox(sandbox, host="127.0.0.1", port=web_port)
        paths.state.write_text(json.dumps({"pid": os.getpid(), "ready": True,
                                           "api": sandbox.plane.url,
                                           "web": web.url if web else None,
                                           "kubeconfig": str(paths.kubeconfig)}))
        echo(next_steps(sandbox, paths))
        if web is not None:
            echo(f"  web UI: {web.url}  (sign in as {web.user} with the token {web.token})\n")
        else:
            echo(REAL_SERVER_NOTE + "\n")
        if demo and web is not None:
            from kubevirt_usb.sandbox.demo import show_it_working

            await show_it_working(sandbox, echo=report)
            echo("Ctrl-C stops the sandbox.")
        await stop.wait()
        echo("stopping the sandbox")
        return 0
    except STARTUP_ERRORS as exc:
        echo(f"error: {exc}")
        return 1
    finally:
        if web is not None:
            await web.stop()
        await control.stop()
        await sandbox.stop()
        paths.state.unlink(missing_ok=True)
