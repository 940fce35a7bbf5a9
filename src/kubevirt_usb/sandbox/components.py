"""The product running inside the cluster in a box, as a real install runs it: the node agent inside
each node guest (against the guest's real sysfs and usbfs), the controller beside the API, each
with its own ServiceAccount and exactly the RBAC the deploy manifests ship.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubevirt_usb.apiserver.kubeconfig import write_kubeconfig
from kubevirt_usb.sandbox.controlplane import ControlPlane, guest_server_url
from kubevirt_usb.sandbox.guest import BackgroundProcess
from kubevirt_usb.sandbox.node_guest import NodeGuest

NAMESPACE = "kubevirt-usb"
AGENT_SA = "kubevirt-usb-agent"
CONTROLLER_SA = "kubevirt-usb-controller"
GUEST_RUN_DIR = "/run/kubevirt-usb"  # inside the chroot of the host's root (a tmpfs)
DEPLOY_BASE = Path(__file__).resolve().parents[3] / "deploy" / "base"
RBAC_FILES = ("namespace.yaml", "agent-rbac.yaml", "controller-rbac.yaml", "user-roles.yaml")


class ComponentError(RuntimeError):
    pass


def install_manifests(*, deploy_base: Path = DEPLOY_BASE) -> list[dict[str, Any]]:
    """The namespace, ServiceAccounts and RBAC of deploy/base, as a real install applies them."""
    objects: list[dict[str, Any]] = []
    for name in RBAC_FILES:
        path = deploy_base / name
        if not path.exists():
            raise ComponentError(f"{path} is missing: the sandbox installs the agent and "
                                 "controller with the RBAC the deploy manifests ship")
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            meta.setdefault("namespace", NAMESPACE)
    return objects


def guest_kubeconfig(plane: ControlPlane, *, token: str, user: str,
                     port: int | None = None) -> dict[str, Any]:
    """A kubeconfig for a program in a node guest; with `port`, whatever listens there in front
    of the API (the chaos soak's fault proxy)."""
    config = plane.kubeconfig(token=token, user=user)
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = guest_server_url(plane.url, port=port or plane.port)
    return config


AGENT_HEALTH = "127.0.0.1:8080"


AGENT_RESTART_GRACE = 300
"""Seconds a stopped node agent's Lease counts for in the sandbox: its nodes are QEMU guests
under software emulation, where starting Python takes close to a minute on a busy host (59 s
measured from SIGTERM to the new agent's first renewal), several times a real node's."""


def agent_argv(*, node: str, kubeconfig: str) -> list[str]:
    return [sys.executable, "-m", "kubevirt_usb", "agent", "--node-name", node,
            "--kubeconfig", kubeconfig, "--namespace", NAMESPACE,
            "--health-listen", AGENT_HEALTH, "--grace-period", "600",
            "--restart-grace", str(AGENT_RESTART_GRACE)]


CONTROLLER_IDENTITY = "sandbox-controller"


def controller_argv(*, kubeconfig: Path, identity: str = CONTROLLER_IDENTITY) -> list[str]:
    return [sys.executable, "-m", "kubevirt_usb", "controller", "--kubeconfig", str(kubeconfig),
            "--namespace", NAMESPACE, "--identity", identity,
            "--health-listen", "127.0.0.1:0"]


def controller_identities(replicas: int) -> list[str]:
    """The replicas' identities (their pod names): one replica keeps the historical name."""
    if replicas == 1:
        return [CONTROLLER_IDENTITY]
    return [f"{CONTROLLER_IDENTITY}-{index}" for index in range(replicas)]


@dataclass
class Components:
    """The agents (one per node guest) and the controller replicas of one sandbox. The product
    reaches the API at `client_port` (default: the API's own port; the chaos soak puts a fault
    proxy there)."""

    plane: ControlPlane
    state_dir: Path
    agents: dict[str, BackgroundProcess] = field(default_factory=dict)
    controllers: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    client_port: int | None = None

    @property
    def controller(self) -> asyncio.subprocess.Process | None:
        """The first replica."""
        return next(iter(self.controllers.values()), None)

    async def service_account_token(self, name: str) -> str:
        return await self.plane.service_account_token(namespace=NAMESPACE, name=name)

    async def start_agent(self, guest: NodeGuest) -> None:
        token = await self.service_account_token(AGENT_SA)
        config = yaml.safe_dump(guest_kubeconfig(self.plane, token=token, user=AGENT_SA,
                                                 port=self.client_port))
        encoded = base64.b64encode(config.encode()).decode()
        path = f"{GUEST_RUN_DIR}/agent.kubeconfig"
        write = (f"mkdir -p /host{GUEST_RUN_DIR} && echo {encoded} | base64 -d > /host{path} && "
                 f"chmod 600 /host{path}")
        (await guest.exec(write, timeout=30)).check("writing the agent's kubeconfig")
        command = guest.host_command(agent_argv(node=guest.name, kubeconfig=path))
        self.agents[guest.name] = await guest.start_background(command,
                                                               log_path="/tmp/agent.log")

    def controller_log(self, identity: str = CONTROLLER_IDENTITY) -> Path:
        name = "controller" if identity == CONTROLLER_IDENTITY else identity
        return self.state_dir / f"{name}.log"

    async def start_controller(self, identity: str = CONTROLLER_IDENTITY) -> None:
        """Start (or, after it died, start again) the replica `identity`."""
        token = await self.service_account_token(CONTROLLER_SA)
        kubeconfig = self.state_dir / "controller.kubeconfig"
        config = self.plane.kubeconfig(token=token, user=CONTROLLER_SA)
        if self.client_port is not None:
            for cluster in config["clusters"]:
                cluster["cluster"]["server"] = f"https://127.0.0.1:{self.client_port}"
        write_kubeconfig(kubeconfig, config)
        log = self.controller_log(identity).open("ab")
        try:
            self.controllers[identity] = await asyncio.create_subprocess_exec(
                *controller_argv(kubeconfig=kubeconfig, identity=identity),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()

    async def stop(self) -> None:
        processes = [p for p in self.controllers.values() if p.returncode is None]
        self.controllers = {}
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                async with asyncio.timeout(10):  # not wait_for: see kubevirt_usb.tasks
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def controller_failed(self) -> str | None:
        """Why a controller replica is gone, or None while they run."""
        for identity, process in self.controllers.items():
            if process.returncode is not None:
                lines = self.controller_log(identity).read_text(errors="replace").splitlines()
                return (f"the controller {identity} exited {process.returncode}:\n"
                        + "\n".join(lines[-15:]))
        return None


async def agent_ready(guest: NodeGuest) -> bool:
    """Whether the node's agent says it is ready: its first publish of the node's devices is
    done and the API server answers (its /readyz, asked inside the node guest)."""
    result = await guest.exec(f"wget -q -O - http://{AGENT_HEALTH}/readyz", timeout=20)
    return result.ok


async def agent_log(guest: NodeGuest, *, lines: int = 20) -> str:
    result = await guest.exec(f"tail -n {lines} /tmp/agent.log 2>/dev/null", timeout=10)
    return result.output


def describe(argv: list[str]) -> str:
    return shlex.join(argv)
