"""`kubevirt-usb sandbox`: the cluster in a box.

Plain `kubevirt-usb sandbox` starts everything, shows it working and stays until Ctrl-C. `up
--detach` leaves it running in the background; `status`, `exec`, `plug`, `unplug`, `kubeconfig`
and `down` talk to it through the control socket in its state directory.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from kubevirt_usb.lazycli import LazyGroup

DEFAULT_STATE_DIR = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) \
    / "kubevirt-usb" / "sandbox"
STATE_MARK = ".kubevirt-usb-sandbox"
"""The file that makes a directory the sandbox's own, so that stopping may remove it. The sandbox
holds a `flock` on it from before it starts until its state is removed: one sandbox a directory."""


def _paths(ctx: click.Context) -> Any:
    from kubevirt_usb.sandbox.control import StatePaths

    return StatePaths(Path(ctx.obj["state_dir"]))


def _call(ctx: click.Context, request: dict[str, Any], *, timeout: float = 120.0
          ) -> dict[str, Any]:
    from kubevirt_usb.sandbox.cluster import SandboxError
    from kubevirt_usb.sandbox.control import call

    try:
        return asyncio.run(call(_paths(ctx), request, timeout=timeout))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup, invoke_without_command=True,
             lazy={"apiserver": "kubevirt_usb.sandbox.apiserver_cli:apiserver"})
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="KUBEVIRT_USB_SANDBOX_DIR",
              default=DEFAULT_STATE_DIR, show_default=True,
              help="Where the running sandbox keeps its kubeconfig, logs and control socket "
              "(a new or empty directory: it is removed when the sandbox stops).")
@click.pass_context
def sandbox(ctx: click.Context, state_dir: Path) -> None:
    """The whole system on one machine: API emulator, virt-api emulator, QEMU node and VM guests.

    Without a subcommand: start it, show it working, and stay until Ctrl-C.
    """
    ctx.ensure_object(dict)
    ctx.obj["state_dir"] = state_dir
    if ctx.invoked_subcommand is None:
        _run_foreground(ctx, config=None, demo=True)


@sandbox.command()
@click.option("--config", "config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="A scenario YAML file (default: node1 with AAA1, AAA2 and a "
              "serial adapter, node2; VMs default/vm1 and default/vm2 on node1, default/vm3 "
              "on node2).")
@click.option("--detach", is_flag=True, help="Return once ready and leave it running.")
@click.option("--apiserver-kubeconfig", "apiserver_kubeconfig",
              type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Run against the real kube-apiserver this kubeconfig names (cluster-admin; "
              "you bring it, with kube-controller-manager and the front-proxy flags for "
              "aggregated APIs) instead of the API emulator. Everything the sandbox creates "
              "there is removed when it stops.")
@click.pass_context
def up(ctx: click.Context, config: Path | None, detach: bool,
       apiserver_kubeconfig: Path | None) -> None:
    """Start the sandbox; return (with --detach) or stay (without) once everything is ready."""
    real = apiserver_kubeconfig.resolve() if apiserver_kubeconfig is not None else None
    if detach:
        _start_detached(ctx, config, apiserver_kubeconfig=real)
    else:
        _run_foreground(ctx, config=config, demo=False, apiserver_kubeconfig=real)


@sandbox.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop the sandbox: no process, socket or temporary file is left behind."""
    from kubevirt_usb.sandbox.cluster import SandboxError
    from kubevirt_usb.sandbox.control import NotRunning, call, pid_alive, read_state

    paths = _paths(ctx)
    state = read_state(paths) or {}
    pid = int(state.get("pid", 0))
    try:
        asyncio.run(call(paths, {"op": "shutdown"}, timeout=30))
    except NotRunning:
        if not pid or not pid_alive(pid):
            _remove_state(paths.directory)
            click.echo(f"no sandbox is running in {paths.directory}")
            return
        os.kill(pid, signal.SIGTERM)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    deadline = time.monotonic() + 60
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _remove_state(paths.directory)
    click.echo("sandbox stopped")


@sandbox.command()
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def status(ctx: click.Context, output: str) -> None:
    """What runs: the API endpoint, nodes with their devices, VMs with their slots."""
    state = _call(ctx, {"op": "status"})["status"]
    if output == "json":
        click.echo(json.dumps(state, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    plane = " (a real API server)" if state.get("controlPlane") == "real" else ""
    console.print(f"API: {state['api']}{plane}   kubeconfig: {state['kubeconfig']}")
    devices = Table("NODE", "DEVICE", "KIND", "PORT", "PLUGGED", title="Nodes")
    for node, info in state["nodes"].items():
        for ref, dev in info["devices"].items():
            devices.add_row(node, ref, dev["kind"], dev["port"], "yes" if dev["plugged"] else "no")
    console.print(devices)
    vms = Table("VM", "NODE", "RUNNING", "CLIENT-PASSTHROUGH", "SLOTS IN USE", "VMI UID",
                title="VMs")
    for name, info in state["vms"].items():
        vms.add_row(name, info["node"], "yes" if info["running"] else "no",
                    "yes" if info["clientPassthrough"] else "no",
                    ",".join(map(str, info["slotsInUse"])) or "-", info["vmi"])
    console.print(vms)


@sandbox.command()
@click.option("--raw", is_flag=True, help="Print the kubeconfig itself, not its path.")
@click.pass_context
def kubeconfig(ctx: click.Context, raw: bool) -> None:
    """Where the running sandbox's kubeconfig is (use: export KUBECONFIG=$(... kubeconfig))."""
    paths = _paths(ctx)
    _call(ctx, {"op": "status"})
    click.echo(paths.kubeconfig.read_text() if raw else str(paths.kubeconfig), nl=not raw)


@sandbox.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--node", default=None, help="Run in this node guest.")
@click.option("--vm", default=None, metavar="NS/NAME", help="Run in this VM guest.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds.")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_(ctx: click.Context, node: str | None, vm: str | None, timeout: float,
          command: tuple[str, ...]) -> None:
    """Run COMMAND (one string, run by the guest's shell) and exit with its status."""
    if (node is None) == (vm is None):
        raise click.UsageError("say where to run: exactly one of --node NAME or --vm NS/NAME")
    answer = _call(ctx, {"op": "exec", "node": node, "vm": vm, "command": " ".join(command),
                         "timeout": timeout}, timeout=timeout + 10)
    sys.stdout.buffer.write(base64.b64decode(answer["output"]))
    sys.stdout.flush()
    ctx.exit(int(answer["exit_code"]))


@sandbox.command()
@click.option("--node", required=True, help="The node guest.")
@click.option("--port", default=None, help="Another port than the device's own (e.g. 5, 4.2).")
@click.argument("device")
@click.pass_context
def plug(ctx: click.Context, node: str, port: str | None, device: str) -> None:
    """Plug DEVICE (its serial, else its scenario id) into a node, through QMP.

    Returns once the node's kernel has enumerated it.
    """
    answer = _call(ctx, {"op": "plug", "node": node, "device": device, "port": port})
    click.echo(f"{device} plugged into {node} port {answer['port']}")


@sandbox.command()
@click.option("--node", required=True, help="The node guest.")
@click.argument("device")
@click.pass_context
def unplug(ctx: click.Context, node: str, device: str) -> None:
    """Pull DEVICE (its serial, else its scenario id) out of a node, through QMP."""
    _call(ctx, {"op": "unplug", "node": node, "device": device})
    click.echo(f"{device} unplugged from {node}")


@sandbox.command(name="restart-vm")
@click.argument("vm", metavar="NS/NAME")
@click.pass_context
def restart_vm(ctx: click.Context, vm: str) -> None:
    """Restart a VM guest as KubeVirt would: a new VMI with a new uid."""
    answer = _call(ctx, {"op": "restart-vm", "vm": vm}, timeout=180)
    click.echo(f"{vm} restarted (VMI uid {answer['vmi']})")


# ---- running it -------------------------------------------------------------------------------


def _load_scenario(config: Path | None) -> Any:
    from kubevirt_usb.sandbox.scenario import ScenarioError, default_scenario, load_scenario

    if config is None:
        return default_scenario()
    try:
        return load_scenario(config)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc


def _is_state_dir(directory: Path) -> bool:
    """Whether `directory` is the sandbox's own: marked by it, or empty."""
    return directory.is_dir() and ((directory / STATE_MARK).exists()
                                   or not any(directory.iterdir()))


def _check_state_dir(directory: Path) -> None:
    """Refuse a state directory that holds anything but the sandbox's own files."""
    if directory.exists() and not _is_state_dir(directory):
        what = "holds files that are not the sandbox's" if directory.is_dir() else \
            "is not a directory"
        raise click.ClickException(f"--state-dir {directory} {what}: choose a new or empty "
                                   "directory (the sandbox removes it when it stops)")


def _claim_state_dir(directory: Path) -> None:
    """Make `directory` the sandbox's (see `_check_state_dir`)."""
    _check_state_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STATE_MARK).touch()


def _hold_state_dir(directory: Path) -> int:
    """Lock the sandbox's directory for this process (a descriptor to close when done); a
    ClickException when another sandbox holds it, running or still starting."""
    fd = os.open(directory / STATE_MARK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise click.ClickException(
            f"a sandbox is already running or starting in {directory}; stop it with "
            "`kubevirt-usb sandbox down`, or give this one another --state-dir") from None
    return fd


def _refuse_if_held(directory: Path) -> None:
    """ClickException when a sandbox holds `directory` (see `_hold_state_dir`)."""
    if (directory / STATE_MARK).exists():
        os.close(_hold_state_dir(directory))


def _remove_state(directory: Path) -> None:
    """Remove the sandbox's state directory; never a directory that is not the sandbox's."""
    if _is_state_dir(directory):
        shutil.rmtree(directory, ignore_errors=True)


def _run_foreground(ctx: click.Context, *, config: Path | None, demo: bool,
                    apiserver_kubeconfig: Path | None = None) -> None:
    from kubevirt_usb.sandbox.runner import run_sandbox

    scenario = _load_scenario(config)
    paths = _paths(ctx)
    _claim_state_dir(paths.directory)
    held = _hold_state_dir(paths.directory)
    try:
        code = asyncio.run(run_sandbox(scenario, paths, demo=demo, echo=click.echo,
                                       apiserver_kubeconfig=apiserver_kubeconfig))
    except KeyboardInterrupt:
        code = 130
    finally:
        _remove_state(paths.directory)
        os.close(held)
    ctx.exit(code)


def _start_detached(ctx: click.Context, config: Path | None, *,
                    apiserver_kubeconfig: Path | None) -> None:
    from kubevirt_usb.sandbox.control import pid_alive, read_state

    paths = _paths(ctx)
    _load_scenario(config)  # a broken scenario fails here, before anything starts
    _check_state_dir(paths.directory)  # before anything starts
    _refuse_if_held(paths.directory)
    _remove_state(paths.directory)
    _claim_state_dir(paths.directory)
    argv = [sys.executable, "-m", "kubevirt_usb", "sandbox", "--state-dir",
            str(paths.directory), "up"]
    if config is not None:
        argv += ["--config", str(config.resolve())]
    if apiserver_kubeconfig is not None:
        argv += ["--apiserver-kubeconfig", str(apiserver_kubeconfig)]
    with paths.log.open("ab") as log_file:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    # Read through our own descriptor: a sandbox that fails removes its state directory, log
    # included, and its last lines (the error) must still be shown.
    with paths.log.open("rb") as log:
        pending = b""
        while True:
            pending += log.read()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                click.echo(line.decode(errors="replace"))
            state = read_state(paths)
            if state is not None and state.get("ready"):
                break
            if child.poll() is not None or not pid_alive(child.pid):
                for line in (pending + log.read()).decode(errors="replace").splitlines():
                    click.echo(line)
                _remove_state(paths.directory)
                raise click.ClickException("the sandbox failed to start (the reason is above)")
            time.sleep(0.2)
