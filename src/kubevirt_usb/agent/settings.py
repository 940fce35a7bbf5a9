"""The agent's settings: command-line options, else environment variables, else defaults.

Every setting can come from `KUBEVIRT_USB_<NAME>` (e.g. `KUBEVIRT_USB_SYSFS_ROOT`). The node name
also comes from `NODE_NAME` and the namespace from `POD_NAMESPACE`, which is how a DaemonSet passes
them with the downward API (`fieldRef: spec.nodeName` / `metadata.namespace`).

This is a plain dataclass read by click (`envvar=`), not a pydantic-settings model: pydantic and
pydantic-settings would add about 9 MiB to an agent that runs on every node, whose budget is
60 MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

from kubevirt_usb.listen import ListenError, parse_listen
from kubevirt_usb.usb.usbids import DEFAULT_USB_IDS

ENV_PREFIX = "KUBEVIRT_USB_"
DOWNWARD_API = {"node_name": "NODE_NAME", "namespace": "POD_NAMESPACE"}
UEVENT_SOURCES = ("kernel", "udev", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def env_names(setting: str) -> list[str]:
    """The environment variables a setting is read from, first match wins."""
    names = [f"{ENV_PREFIX}{setting.upper()}"]
    if setting in DOWNWARD_API:
        names.append(DOWNWARD_API[setting])
    return names


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """Everything `kubevirt-usb agent` can be told (times in seconds)."""

    node_name: str
    namespace: str = "kubevirt-usb"
    kubeconfig: Path | None = None
    context: str | None = None
    sysfs_root: Path = Path("/sys")
    usb_ids: Path = DEFAULT_USB_IDS
    health_listen: str = "0.0.0.0:8080"
    grace_period: float = 600.0
    rescan_interval: float = 60.0
    lease_duration: int = 40
    renew_interval: float = 10.0
    restart_grace: int = 120
    uevents: str = "kernel"
    log_level: str = "info"
    local_path: bool = True
    """Stream straight into the VM's slot socket when the VM runs on this node."""
    host_proc: Path = Path("/proc")
    """The host's /proc (its processes: the virt-launchers' roots)."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> list[str]:
        out = []
        if not (len(self.node_name) <= 253 and _SUBDOMAIN.fullmatch(self.node_name)):
            out.append(f"node name {self.node_name!r} is not a DNS subdomain (lowercase letters, "
                       "digits, '-' and '.')")
        if not (len(self.namespace) <= 63 and _LABEL.fullmatch(self.namespace)):
            out.append(f"namespace {self.namespace!r} is not a DNS label")
        if self.grace_period < 0:
            out.append("grace period must not be negative")
        if self.rescan_interval <= 0 or self.renew_interval <= 0 or self.lease_duration <= 0:
            out.append("intervals and durations must be positive")
        if self.restart_grace < self.lease_duration:
            out.append(f"the restart grace ({self.restart_grace}s) must not be shorter than the "
                       f"lease duration ({self.lease_duration}s)")
        if self.renew_interval >= self.lease_duration:
            out.append(f"the renew interval ({self.renew_interval}s) must be shorter than the "
                       f"lease duration ({self.lease_duration}s)")
        if self.uevents not in UEVENT_SOURCES:
            out.append(f"uevents must be one of {', '.join(UEVENT_SOURCES)}")
        if self.log_level not in LOG_LEVELS:
            out.append(f"log level must be one of {', '.join(LOG_LEVELS)}")
        try:
            parse_listen(self.health_listen, default_host="0.0.0.0")
        except ListenError as exc:
            out.append(f"health listen address {exc}")
        return out


SETTINGS = tuple(f.name for f in fields(AgentSettings))
