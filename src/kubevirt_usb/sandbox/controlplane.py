"""The control plane a sandbox mirrors its guests into: the seam between the cluster in a box and
the API server it uses.

`EmulatorPlane` is the API emulator in the sandbox's own process with the virt-api emulator mounted
(the default); `sandbox.realplane.RealPlane` is a real kube-apiserver the user brings, with the
virt-api emulator served beside it as an aggregated API. The sandbox, its components and the test
harness only use what `ControlPlane` offers, so one story runs on either.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kubevirt_usb.apiserver import errors
from kubevirt_usb.apiserver.api import RequestContext
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.kubeconfig import kubeconfig as make_kubeconfig
from kubevirt_usb.apiserver.server import ADMIN, APIServer, ServerOptions
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from kubevirt_usb.tasks import end_task

HOST_FROM_GUEST = "10.0.2.2"
"""The host's loopback as QEMU user networking shows it to the guests."""


class ControlPlaneError(RuntimeError):
    """The control plane cannot be used; the message says what to change."""


@dataclass(frozen=True, kw_only=True)
class Resource:
    """A resource as a REST path names it: `group` "" is the core group."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


NODES = Resource(group="", version="v1", plural="nodes", namespaced=False)
LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases")
USB_DEVICES = Resource(group="usb.kubevirt-usb.io", version="v1alpha1", plural="usbdevices",
                       namespaced=False)
VMS = Resource(group="kubevirt.io", version="v1", plural="virtualmachines")
VMIS = Resource(group="kubevirt.io", version="v1", plural="virtualmachineinstances")
PODS = Resource(group="", version="v1", plural="pods")


def removed_by_delete(answer: dict[str, Any]) -> bool:
    """Whether a DELETE's answer says the object is gone: a success Status, or the object as it
    went; False when finalizers keep it or a Pod waits, Terminating, for its kubelet."""
    if answer.get("kind") == "Status":
        return True
    meta = answer.get("metadata") or {}
    return not meta.get("finalizers") and not meta.get("deletionGracePeriodSeconds")


def guest_server_url(server: str, *, port: int) -> str:
    """The API server's URL as the node guests reach it: the host's loopback is 10.0.2.2 inside
    QEMU user networking; any other address is reached as it is (QEMU forwards outbound)."""
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    host = parts.hostname or ""
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return f"https://{HOST_FROM_GUEST}:{port}"
    return server


class ControlPlane(Protocol):
    """What the sandbox needs from an API server. Every call is made as the cluster admin."""

    virtapi: VirtAPIEmulator

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def kind(self) -> str:
        """"emulator" or "real": what the progress lines and `sandbox status` say."""
        ...

    def admin_kubeconfig(self) -> dict[str, Any]: ...

    def kubeconfig(self, *, token: str, user: str) -> dict[str, Any]: ...

    def ssl_context(self) -> ssl.SSLContext: ...

    @property
    def admin_token(self) -> str: ...

    async def start(self, *, manifests: list[dict[str, Any]]) -> None:
        """Serve (or connect), then create `manifests` in order (CRDs are waited for)."""
        ...

    async def stop(self) -> None:
        """Stop serving; a real server is left as it was found."""
        ...

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace it when it exists."""
        ...

    async def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def get(self, resource: Resource, *, namespace: str = "",
                  name: str) -> dict[str, Any] | None: ...

    async def list(self, resource: Resource) -> list[dict[str, Any]]: ...

    async def update_status(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, resource: Resource, *, namespace: str = "", name: str,
                     grace_period_seconds: int | None = None) -> bool:
        """Delete; False while the object stays (finalizers, or a Pod bound to a node that is
        Terminating until its kubelet, the sandbox, confirms with `grace_period_seconds=0`)."""
        ...

    async def service_account_token(self, *, namespace: str, name: str) -> str: ...

    async def user_token(self, *, name: str) -> str:
        """A bearer token for a user with no rights beyond being authenticated."""
        ...


class EmulatorPlane:
    """The API emulator on the sandbox's loop, the virt-api emulator mounted in it."""

    kind = "emulator"

    def __init__(self, *, virtapi: VirtAPIEmulator, state_dir: Path, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.virtapi = virtapi
        self._options = ServerOptions(host=host, port=port, state_dir=state_dir, manifests=[],
                                      extensions=[virtapi])
        self.server: APIServer | None = None
        self._serve_task: asyncio.Task[None] | None = None

    @property
    def api(self) -> APIServer:
        if self.server is None:
            raise ControlPlaneError("the API emulator has not been started")
        return self.server

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def port(self) -> int:
        return self.api.port

    @property
    def admin_token(self) -> str:
        return self.api.admin_token

    def admin_kubeconfig(self) -> dict[str, Any]:
        return self.api.kubeconfig()

    def kubeconfig(self, *, token: str, user: str) -> dict[str, Any]:
        return make_kubeconfig(server=self.url, ca_pem=self.api.certificate.ca_pem(),
                               token=token, user=user)

    def ssl_context(self) -> ssl.SSLContext:
        return self.api.ssl_context()

    async def start(self, *, manifests: list[dict[str, Any]]) -> None:
        server = APIServer(self._options)
        for obj in manifests:  # a CRD is served as soon as it is stored
            server.create_object(obj)
        self.server = server
        ready = asyncio.Event()
        self._serve_task = asyncio.create_task(server.serve(on_ready=ready.set))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiter, self._serve_task},
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._serve_task in done:
            waiter.cancel()
            self._serve_task.result()
            raise ControlPlaneError("the API emulator stopped while starting")

    async def stop(self) -> None:
        if self.server is not None:
            self.server.request_stop()
        if self._serve_task is not None:
            await end_task(self._serve_task, within=10)
            self._serve_task = None

    def _ctx(self) -> RequestContext:
        return RequestContext(user=ADMIN, field_manager="kubevirt-usb-sandbox")

    def _info(self, resource: Resource) -> Any:
        info = self.api.api.registry.get(resource.group, resource.version, resource.plural)
        if info is None:
            raise ControlPlaneError(f"{resource.plural}.{resource.group or 'core'} are not "
                                    "served")
        return info

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.api.create_object(obj)

    async def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = (obj.get("metadata") or {}).get("namespace", "") if resource.namespaced \
            else ""
        created: dict[str, Any] = self.api.api.create(self._info(resource), namespace=namespace,
                                                      body=obj, ctx=self._ctx())
        return created

    async def get(self, resource: Resource, *, namespace: str = "",
                  name: str) -> dict[str, Any] | None:
        info = self._info(resource)
        found: dict[str, Any] | None = self.api.api.store.get(info.group_resource, namespace,
                                                              name)
        return found

    async def list(self, resource: Resource) -> list[dict[str, Any]]:
        return list(self.api.api.store.items(self._info(resource).group_resource))

    async def update_status(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        updated: dict[str, Any] = self.api.api.update(
            self._info(resource), namespace=meta.get("namespace", ""), name=meta["name"],
            body=obj, ctx=self._ctx(), subresource="status")
        return updated

    async def delete(self, resource: Resource, *, namespace: str = "", name: str,
                     grace_period_seconds: int | None = None) -> bool:
        options = {} if grace_period_seconds is None else \
            {"gracePeriodSeconds": grace_period_seconds}
        try:
            _obj, removed = self.api.api.delete(self._info(resource), namespace=namespace,
                                                name=name, options=options, ctx=self._ctx())
        except errors.APIError as exc:
            if exc.code == 404:
                return True
            raise
        return bool(removed)

    async def service_account_token(self, *, namespace: str, name: str) -> str:
        return self.api.authenticator.mint(UserInfo.service_account(namespace=namespace,
                                                                    name=name))

    async def user_token(self, *, name: str) -> str:
        return self.api.add_user(UserInfo(name=name, groups=("system:authenticated",)))
