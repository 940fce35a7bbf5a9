"""Which way a stream takes into its VM: the node-local path (straight into the VMI's usb-redir
slot socket inside its virt-launcher, no API server in between) or the API path (the VMI's
`usbredir` subresource through kube-apiserver, virt-api and virt-handler). Plain values in, a
`Local` or an `API` choice with its reason out; the I/O that gathers the values is
`redirect.localpath`.

The local path is taken only when everything about it is certain: the feature is on, the VMI runs
on this node, exactly one Running virt-launcher Pod of this VMI is on this node (and, when the VMI
lists its active pods, it is one of them: virt-controller writes that list, tenants cannot), one of
that pod's processes has the VMI's private directory in its root, and a slot socket there is a
socket owned by one of the pod's processes, reached without following any link. Anything else goes
through the API, which refuses or streams exactly as it did before the local path existed.

Slots: virt-handler hands slots out from 0 up and knows nothing of connections it did not make,
so direct streams take the highest free slot from 3 down. QEMU serves one client per usb-redir
chardev: while a slot is held, a second client's connect is left in the listen backlog (or refused
when the backlog is full) and QEMU never sends it its usbredir `hello`; such a slot is `HELD`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SLOTS = 4
"""usb-redir slots per VMI (KubeVirt's UsbClientPassthroughMaxNumberOf)."""
CREATED_BY = "kubevirt.io/created-by"
"""The label virt-controller puts on a VMI's virt-launcher Pod: the VMI's uid."""
PRIVATE_DIR = ("run", "kubevirt-private")


def direct_slot_order() -> tuple[int, ...]:
    """The order direct streams try slots in: from the top, away from virt-handler's."""
    return tuple(range(SLOTS - 1, -1, -1))


def slot_socket(vmi_uid: str, slot: int) -> tuple[str, ...]:
    """The slot socket's path components inside the launcher's root."""
    return (*PRIVATE_DIR, vmi_uid, f"virt-usbredir-{slot}")


class PathKind(enum.StrEnum):
    LOCAL = "Local"
    API = "API"


class SlotKind(enum.StrEnum):
    """Who handed the slot out: the agent itself (direct) or virt-handler (API path)."""

    DIRECT = "Direct"
    VIRT_HANDLER = "VirtHandler"


class PathReason(enum.StrEnum):
    """Why a stream takes its path (`status.pathReason`)."""

    SAME_NODE = "SameNode"
    LOCAL_PATH_DISABLED = "LocalPathDisabled"
    VMI_NOT_RUNNING = "VMINotRunning"
    VMI_ON_OTHER_NODE = "VMIOnOtherNode"
    LAUNCHER_NOT_FOUND = "LauncherNotFound"
    LAUNCHER_AMBIGUOUS = "LauncherAmbiguous"
    LAUNCHER_PROCESS_NOT_FOUND = "LauncherProcessNotFound"
    LAUNCHER_PROCESS_GONE = "LauncherProcessGone"
    SOCKET_MISSING = "SocketMissing"
    SOCKET_IS_A_LINK = "SocketIsALink"
    SOCKET_NOT_A_SOCKET = "SocketNotASocket"
    SOCKET_OWNER_MISMATCH = "SocketOwnerMismatch"
    NO_FREE_SLOT = "NoFreeSlot"


class SlotProbe(enum.StrEnum):
    """What opening one slot socket found."""

    FREE = "free"
    """Connected, and QEMU said hello: the slot is ours now."""
    HELD = "held"
    """Another client has it (no hello, or the connect was refused for a full backlog)."""
    MISSING = "missing"
    IS_A_LINK = "link"
    NOT_A_SOCKET = "not-a-socket"
    OWNER_MISMATCH = "owner-mismatch"
    PROCESS_GONE = "process-gone"


@dataclass(frozen=True, kw_only=True)
class VMIView:
    """What the choice needs of the VMI."""

    namespace: str
    name: str
    uid: str
    node: str | None
    """`status.nodeName` (None before it is scheduled)."""
    running: bool
    active_pods: Mapping[str, str] | None = None
    """`status.activePods` (pod uid -> node) when the VMI lists them."""


@dataclass(frozen=True, kw_only=True)
class PodView:
    """A Pod labelled `kubevirt.io/created-by=<vmi uid>`."""

    name: str
    uid: str
    node: str | None
    phase: str | None


@dataclass(frozen=True, kw_only=True)
class ProcessView:
    """A host process whose cgroup names a pod of interest."""

    pid: int
    pod_uid: str
    uid: int
    """The process's owner (real uid)."""
    has_private_dir: bool
    """Whether its root holds `run/kubevirt-private/<vmi uid>` (reached without links)."""


@dataclass(frozen=True, kw_only=True)
class Launcher:
    """The VMI's launcher on this node: where its slot sockets are, and whose they may be."""

    pod: str
    pod_uid: str
    pid: int
    owners: frozenset[int]
    """The uids of the pod's processes: a slot socket must belong to one of them."""


@dataclass(frozen=True, kw_only=True)
class Local:
    pid: int
    slot: int
    pod: str
    path: str
    """The slot socket as it was reached (for messages): `/proc/<pid>/root/run/...`."""
    reason: PathReason = PathReason.SAME_NODE

    kind = PathKind.LOCAL

    @property
    def message(self) -> str:
        return (f"The VM runs on this node: streaming straight into usb-redir slot {self.slot} "
                f"of virt-launcher pod {self.pod} (process {self.pid}), without the API server.")


@dataclass(frozen=True, kw_only=True)
class API:
    reason: PathReason
    message: str

    kind = PathKind.API


Choice = Local | API


def pod_uid_from_cgroup(text: str) -> str | None:
    """The pod uid a `/proc/<pid>/cgroup` names, in either kubelet form: `pod<uid>` (cgroupfs
    driver) or `pod<uid with _ for ->` (systemd driver, `kubepods-burstable-pod<uid>.slice`)."""
    for line in text.splitlines():
        found = _POD_IN_CGROUP.search(line.rpartition(":")[2])
        if found:
            return found.group(1).replace("_", "-").lower()
    return None


_HEX = "[0-9a-fA-F]"
_POD_IN_CGROUP = re.compile(
    rf"pod({_HEX}{{8}}[-_]{_HEX}{{4}}[-_]{_HEX}{{4}}[-_]{_HEX}{{4}}[-_]{_HEX}{{12}})(?![0-9a-fA-F])")


def find_launcher(*, node: str, enabled: bool, vmi: VMIView | None, pods: Iterable[PodView],
                  processes: Iterable[ProcessView]) -> Launcher | API:
    """The VMI's launcher on this node, or why the stream goes through the API."""
    if not enabled:
        return API(reason=PathReason.LOCAL_PATH_DISABLED,
                   message="The node-local path is switched off on this node's agent "
                           "(--no-local-path): streaming through the API server.")
    if vmi is None or not vmi.running or not vmi.node:
        return API(reason=PathReason.VMI_NOT_RUNNING,
                   message="The VM is not running: its stream waits on the API path.")
    ref = f"VMI {vmi.namespace}/{vmi.name}"
    if vmi.node != node:
        return API(reason=PathReason.VMI_ON_OTHER_NODE,
                   message=f"{ref} runs on node {vmi.node}, the device is on node {node}: "
                           "streaming through the API server.")
    mine = [p for p in pods if p.node == node]
    running = [p for p in mine if p.phase == "Running" and _active(vmi, p, node)]
    if not running:
        others = ", ".join(f"{p.name} ({p.phase or 'no phase'})" for p in mine)
        seen = f" (seen here: {others})" if others else ""
        return API(reason=PathReason.LAUNCHER_NOT_FOUND,
                   message=f"No Running virt-launcher pod of {ref} on node {node}{seen}: "
                           "streaming through the API server.")
    if len(running) > 1:
        names = ", ".join(sorted(p.name for p in running))
        return API(reason=PathReason.LAUNCHER_AMBIGUOUS,
                   message=f"More than one Running pod on node {node} claims to be the "
                           f"virt-launcher of {ref} ({names}): streaming through the API "
                           "server.")
    pod = running[0]
    procs = [p for p in processes if p.pod_uid == pod.uid]
    rooted = sorted(p.pid for p in procs if p.has_private_dir)
    if not rooted:
        return API(reason=PathReason.LAUNCHER_PROCESS_NOT_FOUND,
                   message=f"No process of virt-launcher pod {pod.name} on node {node} has the "
                           f"VMI's run/kubevirt-private/{vmi.uid} directory "
                           f"({len(procs)} processes of the pod seen): streaming through the "
                           "API server.")
    return Launcher(pod=pod.name, pod_uid=pod.uid, pid=rooted[0],
                    owners=frozenset(p.uid for p in procs))


def _active(vmi: VMIView, pod: PodView, node: str) -> bool:
    """Whether the VMI lists the pod as active on this node (True when it lists none)."""
    return vmi.active_pods is None or vmi.active_pods.get(pod.uid) == node


_REFUSALS: dict[SlotProbe, tuple[PathReason, str]] = {
    SlotProbe.MISSING: (PathReason.SOCKET_MISSING, "is not there (yet)"),
    SlotProbe.IS_A_LINK: (PathReason.SOCKET_IS_A_LINK,
                          "is a symbolic link (links inside the launcher are never followed)"),
    SlotProbe.NOT_A_SOCKET: (PathReason.SOCKET_NOT_A_SOCKET, "is not a socket"),
    SlotProbe.OWNER_MISMATCH: (PathReason.SOCKET_OWNER_MISMATCH,
                               "belongs to nobody running in the launcher pod"),
    SlotProbe.PROCESS_GONE: (PathReason.LAUNCHER_PROCESS_GONE,
                             "could not be reached: the launcher process exited"),
}


def choose_slot(launcher: Launcher, *, vmi_uid: str,
                probes: Sequence[tuple[int, SlotProbe]]) -> Choice:
    """The choice after probing slots in `direct_slot_order()` (the probing stops at the first
    answer that is not HELD): the first FREE slot, or why not."""
    for slot, probe in probes:
        if probe is SlotProbe.FREE:
            return Local(pid=launcher.pid, slot=slot, pod=launcher.pod,
                         path=slot_path(launcher.pid, vmi_uid, slot))
        if probe is SlotProbe.HELD:
            continue
        reason, what = _REFUSALS[probe]
        return API(reason=reason,
                   message=f"The slot socket {slot_path(launcher.pid, vmi_uid, slot)} {what}: "
                           "streaming through the API server.")
    held = ", ".join(str(slot) for slot, _ in probes)
    return API(reason=PathReason.NO_FREE_SLOT,
               message=f"All usb-redir slots of virt-launcher pod {launcher.pod} are held "
                       f"(slots {held}: by this agent's direct streams or by virtctl usbredir "
                       "users); waiting for one to free up.")


def slot_path(pid: int, vmi_uid: str, slot: int) -> str:
    return "/".join(("/proc", str(pid), "root", *slot_socket(vmi_uid, slot)))


def falls_back(choice: Choice) -> bool:
    """Whether the stream goes through the API now (everything but a local slot, and all slots
    held: the API path would hand out a held slot too, and virt-handler would hang on it)."""
    return isinstance(choice, API) and choice.reason is not PathReason.NO_FREE_SLOT


def vmi_view(obj: Mapping[str, Any] | None) -> VMIView | None:
    """What the choice needs of a VirtualMachineInstance object (None without one)."""
    if not obj:
        return None
    meta = obj.get("metadata") or {}
    st = obj.get("status") or {}
    active = st.get("activePods")
    return VMIView(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                   uid=str(meta.get("uid") or ""), node=_str(st.get("nodeName")),
                   running=st.get("phase") == "Running",
                   active_pods={str(k): str(v) for k, v in active.items()}
                   if isinstance(active, Mapping) else None)


def pod_view(obj: Mapping[str, Any]) -> PodView:
    meta = obj.get("metadata") or {}
    return PodView(name=str(meta.get("name") or ""), uid=str(meta.get("uid") or ""),
                   node=_str((obj.get("spec") or {}).get("nodeName")),
                   phase=_str((obj.get("status") or {}).get("phase")))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
