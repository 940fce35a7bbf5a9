"""The agent's node-local path: for one binding, ask the API for the VMI and its virt-launcher
pods, then look at the host's processes and dial the slot (`redirect.localpath`, in a thread:
the proc walk and the wait for QEMU's hello block). The choice is `redirect.pathchoice`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubevirt_usb.kube.errors import KubeError
from kubevirt_usb.redirect.localpath import HELLO_TIMEOUT, Dialed, HostProc
from kubevirt_usb.redirect.pathchoice import (
    API,
    PathReason,
    find_launcher,
    pod_view,
    vmi_view,
)

LauncherObjects = tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]
"""The VMI object (None without one) and the pods labelled with its uid."""
LookUp = Callable[[str, str], Awaitable[LauncherObjects]]


@dataclass(frozen=True, kw_only=True)
class LocalPathSettings:
    """`--local-path/--no-local-path`, `--host-proc`."""

    enabled: bool = True
    host_proc: Path = Path("/proc")
    hello_timeout: float = HELLO_TIMEOUT


async def dial(*, node: str, settings: LocalPathSettings, look_up: LookUp, namespace: str,
               vm: str) -> Dialed:
    """The node-local path for VM `namespace/vm` from this node: a connected slot, or why the
    stream goes through the API."""
    if not settings.enabled:
        found = find_launcher(node=node, enabled=False, vmi=None, pods=(), processes=())
        return Dialed(found if isinstance(found, API) else _unknown(), None)
    try:
        vmi_obj, pod_objs = await look_up(namespace, vm)
    except KubeError as exc:
        return Dialed(API(reason=PathReason.LAUNCHER_NOT_FOUND,
                          message=f"Cannot look up the virt-launcher pod of VM {namespace}/{vm} "
                                  f"({exc}): streaming through the API server."), None)
    vmi = vmi_view(vmi_obj)
    pods = [pod_view(p) for p in pod_objs]
    host = HostProc(root=settings.host_proc, hello_timeout=settings.hello_timeout)

    def look() -> Dialed:
        here = {p.uid for p in pods if p.node == node}
        processes = host.processes(here, vmi_uid=vmi.uid) if vmi and vmi.node == node else []
        found = find_launcher(node=node, enabled=True, vmi=vmi, pods=pods, processes=processes)
        if isinstance(found, API) or vmi is None:
            return Dialed(found if isinstance(found, API) else _unknown(), None)
        return host.dial(found, vmi_uid=vmi.uid)

    looking = asyncio.ensure_future(asyncio.to_thread(look))
    try:
        return await asyncio.shield(looking)
    except asyncio.CancelledError:
        # the binding ended while the thread dials: the slot it may connect is let go at once
        looking.add_done_callback(_let_go)
        raise


def _let_go(looking: asyncio.Future[Dialed]) -> None:
    if not looking.cancelled() and looking.exception() is None:
        sock = looking.result().sock
        if sock is not None:
            sock.close()


def _unknown() -> API:  # pragma: no cover - find_launcher answers API without a VMI
    return API(reason=PathReason.VMI_NOT_RUNNING, message="The VM is not running.")
