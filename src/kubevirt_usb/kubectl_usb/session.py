"""The cluster as `kubectl usb` talks to it: kubectl's connection flags turned into a client, and
the reads and writes the commands need, each failing as a one-line `CLIError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightkube
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview, SubjectAccessReview
from lightkube.resources.core_v1 import Namespace, Node

from kubevirt_usb.kube.client import KubeClient, connect
from kubevirt_usb.kube.config import ConfigError, load_config
from kubevirt_usb.kube.errors import (
    CERTIFICATE_NOT_TRUSTED,
    RESOURCE_NOT_SERVED,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from kubevirt_usb.kube.objects import ObjectList, WatchEvent
from kubevirt_usb.kube.resources import (
    Lease,
    USBAttachment,
    USBDevice,
    USBPolicy,
    VirtualMachine,
    VirtualMachineInstance,
)
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode

T = TypeVar("T")
Obj = dict[str, Any]
ALL_NAMESPACES = lightkube.ALL_NS
FIELD_MANAGER = "kubectl-usb"
_MISSING = {
    USBDevice: "kubevirt-usb is not installed in this cluster (no usbdevices.usb.kubevirt-usb.io)",
    USBAttachment: "kubevirt-usb is not installed in this cluster (no "
                   "usbattachments.usb.kubevirt-usb.io)",
    USBPolicy: "kubevirt-usb is not installed in this cluster (no usbpolicies.usb.kubevirt-usb.io)",
    VirtualMachine: "KubeVirt is not installed in this cluster (no virtualmachines.kubevirt.io)",
    VirtualMachineInstance: "KubeVirt is not installed in this cluster (no "
                            "virtualmachineinstances.kubevirt.io)",
}
_INSTALL_HINT = {USBDevice: "install it: kubevirt-usb crds | kubectl apply -f -"}


def from_kube_error(error: KubeError, *, server: str) -> CLIError:
    """The error to show for a failed API request to `server`."""
    message = error.message
    if isinstance(error, Unauthorized):
        return CLIError(f"the API server {server} did not accept your credentials "
                        f"({error.code} {error.reason}): log in again or check the kubeconfig's "
                        "user", code=ExitCode.FORBIDDEN)
    if isinstance(error, Forbidden):
        return CLIError(f"{message}; ask a cluster admin for that permission",
                        code=ExitCode.FORBIDDEN)
    if isinstance(error, NotFound):
        return CLIError(message, code=ExitCode.NOT_FOUND)
    if isinstance(error, Unavailable) and error.reason == CERTIFICATE_NOT_TRUSTED:
        return CLIError(f"the API server at {server} is not the one the kubeconfig trusts "
                        f"({_detail(message)}): check the context's certificate-authority and "
                        "server", code=ExitCode.UNREACHABLE)
    if isinstance(error, Unavailable) and not error.code:
        return CLIError(f"cannot reach the Kubernetes API at {server} ({_detail(message)}): "
                        "check --context/--kubeconfig and that the cluster is up",
                        code=ExitCode.UNREACHABLE)
    if isinstance(error, Unavailable):
        return CLIError(f"the API server {server} failed: {message}; try again",
                        code=ExitCode.UNREACHABLE)
    if isinstance(error, Conflict | Gone):
        return CLIError(f"{message}; someone changed it meanwhile, run the command again")
    if isinstance(error, Invalid):
        return CLIError(f"the API server rejected the request: {message}")
    return CLIError(f"the API server answered {error.code} {error.reason}: {message}")


def _detail(message: str) -> str:
    return message.removeprefix("cannot reach the API server: ") or "no answer"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """kubectl's connection flags: --kubeconfig, --context, -n, -A, --request-timeout (None: no
    limit, what kubectl's 0 means)."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    request_timeout: float | None = 10.0


class Session:
    """One connection to the cluster; the namespace is -n, else the context's."""

    def __init__(self, client: KubeClient, *, server: str, namespace: str,
                 all_namespaces: bool = False) -> None:
        self.client = client
        self.server = server
        self.namespace = namespace
        self.all_namespaces = all_namespaces

    @classmethod
    def open(cls, settings: Settings, *, environ: Mapping[str, str] | None = None) -> Session:
        try:
            config = load_config(kubeconfig=settings.kubeconfig, context=settings.context,
                                 environ=environ)
            client = connect(config, field_manager=FIELD_MANAGER,
                             timeout=settings.request_timeout)
        except ConfigError as exc:
            raise CLIError(f"no cluster to talk to: {exc}", code=ExitCode.UNREACHABLE) from exc
        return cls(client, server=str(config.cluster.server),
                   namespace=settings.namespace or client.namespace,
                   all_namespaces=settings.all_namespaces)

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, request: Awaitable[T], *, res: Any = None) -> T:
        try:
            return await request
        except KubeError as exc:
            raise self.error(exc, res=res) from exc

    def error(self, exc: KubeError, *, res: Any = None) -> CLIError:
        """The CLIError for an API failure; a missing resource type names what is missing."""
        if isinstance(exc, NotFound) and exc.reason == RESOURCE_NOT_SERVED and res in _MISSING:
            hint = _INSTALL_HINT.get(res, "")
            return CLIError(_MISSING[res] + (f"; {hint}" if hint else ""),
                            code=ExitCode.NOT_FOUND)
        return from_kube_error(exc, server=self.server)

    # ---- generic ----------------------------------------------------------------------------

    async def listing(self, res: Any, *, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> ObjectList:
        return await self._call(self.client.list(res, namespace=namespace, labels=labels),
                                res=res)

    async def get(self, res: Any, name: str, *, namespace: str | None = None) -> Obj:
        return await self._call(self.client.get(res, name, namespace=namespace), res=res)

    async def find(self, res: Any, name: str, *, namespace: str | None = None) -> Obj | None:
        """The object, or None when there is no object of that name."""
        try:
            return await self.client.get(res, name, namespace=namespace)
        except NotFound as exc:
            if exc.reason == RESOURCE_NOT_SERVED:
                raise self.error(exc, res=res) from exc
            return None
        except KubeError as exc:
            raise self.error(exc, res=res) from exc

    async def create(self, res: Any, obj: Obj) -> Obj:
        return await self._call(self.client.create(res, obj), res=res)

    async def patch(self, res: Any, name: str, patch: Obj, *, namespace: str | None = None,
                    resource_version: str | None = None) -> Obj:
        return await self._call(self.client.patch(res, name, patch, namespace=namespace,
                                                  resource_version=resource_version), res=res)

    async def delete(self, res: Any, name: str, *, namespace: str | None = None) -> bool:
        """Delete it; False when it was already gone."""
        try:
            await self.client.delete(res, name, namespace=namespace)
        except NotFound:
            return False
        except KubeError as exc:
            raise self.error(exc, res=res) from exc
        return True

    async def watch(self, res: Any, *, resource_version: str,
                    namespace: str | None = None) -> AsyncGenerator[WatchEvent, None]:
        """Events after `resource_version`; `Gone` (too old) is raised as it is. Use it inside
        `contextlib.aclosing`, so that the stream is closed, in order, however the loop ends."""
        try:
            async with contextlib.aclosing(self.client.watch(
                    res, resource_version=resource_version, namespace=namespace)) as events:
                async for event in events:
                    yield event
        except Gone:
            raise  # the caller lists again
        except KubeError as exc:
            raise self.error(exc, res=res) from exc

    # ---- what the commands read -------------------------------------------------------------

    async def devices(self) -> list[Obj]:
        return (await self.listing(USBDevice)).items

    async def attachments(self, *, namespace: str | None) -> list[Obj]:
        """Attachments of one namespace, or of all (`ALL_NAMESPACES`)."""
        return (await self.listing(USBAttachment, namespace=namespace)).items

    async def vm(self, name: str, *, namespace: str) -> Obj | None:
        return await self.find(VirtualMachine, name, namespace=namespace)

    async def vmi(self, name: str, *, namespace: str) -> Obj | None:
        return await self.find(VirtualMachineInstance, name, namespace=namespace)

    async def namespace_exists(self, name: str) -> bool | None:
        """Whether the namespace exists; None when we may not look."""
        try:
            await self.client.get(Namespace, name)
        except NotFound:
            return False
        except KubeError:
            return None
        return True

    async def crd_names(self) -> list[str]:
        crds = await self.listing(CustomResourceDefinition)
        return [str((c.get("metadata") or {}).get("name")) for c in crds.items]

    async def node_names(self) -> list[str]:
        nodes = (await self.listing(Node)).items
        return [str((n.get("metadata") or {}).get("name")) for n in nodes]

    async def leases(self, *, labels: Mapping[str, str]) -> list[Obj]:
        return (await self.listing(Lease, namespace=ALL_NAMESPACES, labels=labels)).items

    async def can(self, *, verb: str, group: str, resource: str, subresource: str = "",
                  namespace: str = "", user: str | None = None,
                  groups: tuple[str, ...] = ()) -> bool:
        """Whether `user` (None: whoever we are) may do this (an access review)."""
        attributes = {"verb": verb, "group": group, "resource": resource,
                      "subresource": subresource, "namespace": namespace}
        review: Obj = {"apiVersion": "authorization.k8s.io/v1",
                       "spec": {"resourceAttributes": attributes}}
        if user is None:
            answer = await self.create(SelfSubjectAccessReview,
                                       {**review, "kind": "SelfSubjectAccessReview"})
        else:
            review["spec"].update(user=user, groups=list(groups))
            answer = await self.create(SubjectAccessReview,
                                       {**review, "kind": "SubjectAccessReview"})
        return bool((answer.get("status") or {}).get("allowed"))

    async def raw_get(self, path: str) -> Obj:
        """GET a non-resource path (e.g. /version) and return its JSON."""
        try:
            return await self.client.get_path(path)
        except KubeError as exc:
            # an answer that is not the JSON asked for says so; no answer is a connection error
            raise (CLIError(exc.message) if exc.code else self.error(exc)) from exc
