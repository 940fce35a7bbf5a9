"""The controller's settings: command-line options, else environment variables, else defaults.

Every setting can come from `KUBEVIRT_USB_<NAME>` (e.g. `KUBEVIRT_USB_WORKERS`). The namespace
also comes from `POD_NAMESPACE` and the replica's identity from `POD_NAME`, which is how a
Deployment passes them with the downward API.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubevirt_usb.controller.manager import ControllerOptions
from kubevirt_usb.listen import parse_listen
from kubevirt_usb.models import is_dns_label


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ControllerSettings(BaseSettings):
    """Everything `kubevirt-usb controller` can be told."""

    model_config = SettingsConfigDict(env_prefix="KUBEVIRT_USB_", populate_by_name=True,
                                      extra="ignore")

    namespace: str = Field(
        default="kubevirt-usb", min_length=1, max_length=63,
        validation_alias=AliasChoices("namespace", "KUBEVIRT_USB_NAMESPACE", "POD_NAMESPACE"),
        description="where the election Lease and the agents' heartbeat Leases live")
    identity: str = Field(
        default_factory=default_identity, min_length=1, max_length=253,
        validation_alias=AliasChoices("identity", "KUBEVIRT_USB_IDENTITY", "POD_NAME"),
        description="this replica's name in the election Lease and in Events")
    kubeconfig: Path | None = None
    context: str | None = None
    election_lease: str = "kubevirt-usb-controller"
    agent_lease_prefix: str = "kubevirt-usb-agent-"
    workers: int = Field(default=8, ge=1, le=256)
    lease_duration: float = Field(default=15.0, gt=0)
    renew_deadline: float = Field(default=10.0, gt=0)
    retry_period: float = Field(default=2.0, gt=0)
    health_listen: str = "0.0.0.0:8081"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("namespace")
    @classmethod
    def _namespace_is_a_label(cls, value: str) -> str:
        if not is_dns_label(value):
            raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits and '-')")
        return value

    @field_validator("health_listen")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        parse_listen(value, default_host="0.0.0.0")  # its ListenError is a ValueError
        return value

    @model_validator(mode="after")
    def _election_timing(self) -> ControllerSettings:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                f"need retry_period ({self.retry_period}s) < renew_deadline "
                f"({self.renew_deadline}s) < lease_duration ({self.lease_duration}s)")
        return self

    def options(self) -> ControllerOptions:
        return ControllerOptions(
            namespace=self.namespace, identity=self.identity,
            agent_lease_prefix=self.agent_lease_prefix, election_lease=self.election_lease,
            workers=self.workers, lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline, retry_period=self.retry_period)
