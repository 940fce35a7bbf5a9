"""A real kube-apiserver as the sandbox's control plane (`kubevirt-usb sandbox up
--apiserver-kubeconfig FILE`): the user brings the API server (with kube-controller-manager for
namespaces and garbage collection); the sandbox installs what it needs there, serves the virt-api
emulator as an aggregated API beside it, and removes everything it created when it stops.

What it writes carries the label `app.kubernetes.io/managed-by: kubevirt-usb-sandbox`. An object
that is already there without that label belongs to someone else: the sandbox refuses to start
rather than change it. One left by an earlier sandbox that did not stop cleanly is taken over and
removed at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from kubevirt_usb.sandbox import aggregated
from kubevirt_usb.sandbox.controlplane import (
    HOST_FROM_GUEST,
    ControlPlaneError,
    Resource,
    removed_by_delete,
)
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator

Progress = Callable[[str], None]
LABEL_KEY, LABEL_VALUE = next(iter(aggregated.MANAGED_BY.items()))
NODE_LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases")
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_SECONDS = 40
KEEP = frozenset({("Namespace", "default"), ("Namespace", "kube-system"),
                  ("Namespace", NODE_LEASE_NAMESPACE)})
"""Objects a sandbox may name in its manifests but never creates or removes."""

_CLUSTER_KINDS = {
    "Namespace": Resource(group="", version="v1", plural="namespaces", namespaced=False),
    "Node": Resource(group="", version="v1", plural="nodes", namespaced=False),
    "CustomResourceDefinition": Resource(group="apiextensions.k8s.io", version="v1",
                                         plural="customresourcedefinitions", namespaced=False),
    "ClusterRole": Resource(group="rbac.authorization.k8s.io", version="v1",
                            plural="clusterroles", namespaced=False),
    "ClusterRoleBinding": Resource(group="rbac.authorization.k8s.io", version="v1",
                                   plural="clusterrolebindings", namespaced=False),
    "APIService": Resource(group="apiregistration.k8s.io", version="v1", plural="apiservices",
                           namespaced=False),
    "USBPolicy": Resource(group="usb.kubevirt-usb.io", version="v1alpha1", plural="usbpolicies",
                          namespaced=False),
    "USBDevice": Resource(group="usb.kubevirt-usb.io", version="v1alpha1", plural="usbdevices",
                          namespaced=False),
}
_NAMESPACED_KINDS = {
    "ServiceAccount": Resource(group="", version="v1", plural="serviceaccounts"),
    "Service": Resource(group="", version="v1", plural="services"),
    "ConfigMap": Resource(group="", version="v1", plural="configmaps"),
    "Role": Resource(group="rbac.authorization.k8s.io", version="v1", plural="roles"),
    "RoleBinding": Resource(group="rbac.authorization.k8s.io", version="v1",
                            plural="rolebindings"),
    "Lease": NODE_LEASES,
    "VirtualMachine": Resource(group="kubevirt.io", version="v1", plural="virtualmachines"),
    "VirtualMachineInstance": Resource(group="kubevirt.io", version="v1",
                                       plural="virtualmachineinstances"),
}


# ----------------------------------------------------------------------------- decisions


def resource_of(obj: dict[str, Any]) -> Resource:
    """The REST resource of a manifest's kind (the kinds a sandbox writes)."""
    kind = str(obj.get("kind", ""))
    found = _CLUSTER_KINDS.get(kind) or _NAMESPACED_KINDS.get(kind)
    if found is None:
        raise ControlPlaneError(f"the sandbox does not write {kind or 'kind-less'} objects")
    return found


def labelled(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with the sandbox's managed-by label."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_KEY: LABEL_VALUE}
    return {**obj, "metadata": meta}


def is_ours(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_KEY) == LABEL_VALUE


@dataclass(frozen=True, kw_only=True)
class Created:
    """One object the sandbox made, to remove when it stops."""

    resource: Resource
    namespace: str
    name: str
    kind: str


def teardown_order(created: list[Created]) -> list[Created]:
    """Newest first, each object once; namespaces and CRDs after everything (deleting them takes
    their contents along) and the APIService first, so nothing proxies to a stopped server."""
    seen: set[tuple[str, str, str]] = set()
    unique: list[Created] = []
    for item in reversed(created):
        key = (item.kind, item.namespace, item.name)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    rank = {"APIService": 0, "CustomResourceDefinition": 2, "Namespace": 3}
    return sorted(unique, key=lambda c: rank.get(c.kind, 1))


EVENT_API_VERSIONS = ("usb.kubevirt-usb.io/v1alpha1", "kubevirt.io/v1")
"""The Events the product and the sandbox cause are about objects of these API versions."""


def leftover_event_namespaces(created: list[Created]) -> list[str]:
    """Namespaces whose Events outlive the teardown: those the sandbox wrote into without creating
    them, and `default`, where Events about cluster-scoped objects go."""
    made = {c.name for c in created if c.kind == "Namespace"}
    used = {c.namespace for c in created if c.namespace} | {"default"}
    return sorted(used - made)


def node_lease(node: str, *, now: dt.datetime) -> dict[str, Any]:
    """The heartbeat a kubelet renews in kube-node-lease; without it kube-controller-manager's
    node lifecycle controller marks the node NotReady after its grace period."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node, "namespace": NODE_LEASE_NAMESPACE},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": NODE_LEASE_SECONDS,
                     "renewTime": stamp}}


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What a kubeconfig's current context says about the server and the user."""

    server: str
    ca_pem: bytes | None
    token: str | None
    client_cert_pem: bytes | None
    client_key_pem: bytes | None


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


def read_credentials(path: Path) -> Credentials:
    """The current context of a kubeconfig; ControlPlaneError naming the problem."""
    try:
        config = yaml.safe_load(path.read_text())
        current = next(c["context"] for c in config["contexts"]
                       if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"]
                       if c["name"] == current["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == current["user"])
        base = path.parent
        creds = Credentials(server=str(cluster["server"]).rstrip("/"),
                            ca_pem=_data(cluster, "certificate-authority", base),
                            token=user.get("token"),
                            client_cert_pem=_data(user, "client-certificate", base),
                            client_key_pem=_data(user, "client-key", base))
    except (OSError, yaml.YAMLError) as exc:
        raise ControlPlaneError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    except (KeyError, TypeError, StopIteration) as exc:
        raise ControlPlaneError(f"{path}: not a kubeconfig with a current context naming a "
                                "cluster and a user") from exc
    if not creds.token and not (creds.client_cert_pem and creds.client_key_pem):
        raise ControlPlaneError(f"{path}: its user has neither a token nor a client "
                                "certificate; the sandbox needs cluster-admin credentials")
    return creds


# ----------------------------------------------------------------------------- the plane


class RealPlane:
    """A real kube-apiserver named by a kubeconfig (cluster-admin)."""

    kind = "real"

    def __init__(self, *, kubeconfig: Path, virtapi: VirtAPIEmulator, state_dir: Path,
                 progress: Progress, ready_timeout: float = 120.0) -> None:
        self.virtapi = virtapi
        self._path = kubeconfig
        self._state_dir = state_dir
        self._progress = progress
        self._ready_timeout = ready_timeout
        self._creds: Credentials | None = None
        self._http: httpx.AsyncClient | None = None
        self._created: list[Created] = []
        self._aggregated: aggregated.AggregatedServer | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._nodes: set[str] = set()

    # -- who and where

    @property
    def creds(self) -> Credentials:
        if self._creds is None:
            self._creds = read_credentials(self._path)
        return self._creds

    @property
    def url(self) -> str:
        return self.creds.server

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or 443

    @property
    def admin_token(self) -> str:
        if not self.creds.token:
            raise ControlPlaneError(f"{self._path}: its user has no token")
        return self.creds.token

    def admin_kubeconfig(self) -> dict[str, Any]:
        """The user's credentials, self-contained (no file paths), for the sandbox's kubeconfig."""
        creds = self.creds
        if creds.token:
            return self.kubeconfig(token=creds.token, user="admin")
        config = self.kubeconfig(token="", user="admin")
        config["users"] = [{"name": "admin", "user": {
            "client-certificate-data": base64.b64encode(creds.client_cert_pem or b"").decode(),
            "client-key-data": base64.b64encode(creds.client_key_pem or b"").decode()}}]
        return config

    def kubeconfig(self, *, token: str, user: str) -> dict[str, Any]:
        from kubevirt_usb.apiserver.kubeconfig import kubeconfig

        return kubeconfig(server=self.url, ca_pem=self.creds.ca_pem or b"", token=token,
                          user=user, cluster="kubevirt-usb-real")

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.creds.ca_pem:
            ctx = ssl.create_default_context(cadata=self.creds.ca_pem.decode())
        if self.creds.client_cert_pem and self.creds.client_key_pem:
            pki = self._state_dir / "real-client"
            pki.mkdir(parents=True, exist_ok=True)
            (pki / "client.crt").write_bytes(self.creds.client_cert_pem)
            (pki / "client.key").write_bytes(self.creds.client_key_pem)
            (pki / "client.key").chmod(0o600)
            ctx.load_cert_chain(pki / "client.crt", pki / "client.key")
        return ctx

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.creds.token}"} if self.creds.token else {}
            self._http = httpx.AsyncClient(base_url=self.url, verify=self.ssl_context(),
                                           headers=headers, timeout=30)
        return self._http

    # -- lifecycle

    async def start(self, *, manifests: list[dict[str, Any]]) -> None:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        await self._check_reachable()
        await asyncio.to_thread(self._check_guest_name)
        got = await self.http.get(aggregated.AUTH_CONFIGMAP)
        if got.status_code == 404:
            raise ControlPlaneError("the API server has no ConfigMap kube-system/extension-"
                                    "apiserver-authentication: it cannot host aggregated APIs")
        got.raise_for_status()
        config = aggregated.request_header_config(got.json())
        server = aggregated.new_server(self.virtapi, http=self.http, config=config,
                                       state_dir=self._state_dir)
        await server.start()
        self._aggregated = server
        self._progress(f"virt-api emulator serving the aggregated API on 127.0.0.1:{server.port}")
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": aggregated.SERVICE_NAMESPACE}}
        for obj in [namespace, *manifests, aggregated.service_manifest(port=server.port),
                    aggregated.apiservice_manifest(port=server.port,
                                                   ca_bundle_pem=server.certificate.ca_pem())]:
            await self.apply(obj)
        await self._wait_available()
        self._heartbeat = asyncio.create_task(self._renew_node_leases())

    async def _check_reachable(self) -> None:
        try:
            answer = await self.http.get("/version")
        except httpx.HTTPError as exc:
            raise ControlPlaneError(f"cannot reach the API server at {self.url}: "
                                    f"{exc}") from exc
        if answer.status_code in (401, 403):
            raise ControlPlaneError(f"the API server at {self.url} refuses the credentials in "
                                    f"{self._path} ({answer.status_code})")
        answer.raise_for_status()
        self._progress(f"real API server {answer.json().get('gitVersion', '?')} at {self.url}")

    def _check_guest_name(self) -> None:
        """The agents in the node guests reach a loopback API server at 10.0.2.2: its serving
        certificate must name that address."""
        parts = urlsplit(self.url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            return
        ctx = self.ssl_context()
        try:
            with socket.create_connection((parts.hostname, self.port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname=HOST_FROM_GUEST):
                return
        except ssl.SSLCertVerificationError as exc:
            raise ControlPlaneError(
                f"the API server's certificate does not name {HOST_FROM_GUEST}, where the node "
                f"guests reach the host's loopback: add IP:{HOST_FROM_GUEST} to its "
                f"subjectAltName ({exc.verify_message})") from exc

    async def _wait_available(self) -> None:
        path = f"/apis/apiregistration.k8s.io/v1/apiservices/{aggregated.APISERVICE_NAME}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        message = ""
        while loop.time() < deadline:
            got = await self.http.get(path)
            got.raise_for_status()
            for condition in (got.json().get("status") or {}).get("conditions") or []:
                if condition.get("type") == "Available":
                    if condition.get("status") == "True":
                        self._progress(f"APIService {aggregated.APISERVICE_NAME} is available")
                        return
                    message = f"{condition.get('reason')}: {condition.get('message')}"
            await asyncio.sleep(0.5)
        raise ControlPlaneError(f"the APIService {aggregated.APISERVICE_NAME} did not become "
                                f"available within {self._ready_timeout:.0f} s ({message})")

    async def stop(self) -> None:
        """Remove everything this sandbox created, newest first, and wait for namespaces and CRDs
        to be gone, so the server is as it was found."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
        if self._http is not None:
            try:
                await self._remove_created()
            except (httpx.HTTPError, ControlPlaneError) as exc:
                self._progress(f"warning: removing the sandbox's objects: {exc}")
        if self._aggregated is not None:
            await self._aggregated.stop()
            self._aggregated = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _remove_created(self) -> None:
        order = teardown_order(self._created)
        for item in order:
            # its launcher Pods' kubelet is the sandbox: their deletion is confirmed at once
            options = {"gracePeriodSeconds": 0} if item.kind == "Pod" else {}
            answer = await self.http.request(
                "DELETE", item.resource.path(namespace=item.namespace, name=item.name),
                json={"apiVersion": "v1", "kind": "DeleteOptions", **options})
            if answer.status_code not in (200, 202, 404):
                self._progress(f"warning: deleting {item.kind} {item.name}: "
                               f"{answer.status_code} {answer.text[:200]}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        waiting = [i for i in order if i.kind in ("Namespace", "CustomResourceDefinition")]
        while waiting and loop.time() < deadline:
            still = []
            for item in waiting:
                got = await self.http.get(item.resource.path(name=item.name))
                if got.status_code != 404:
                    still.append(item)
            waiting = still
            if waiting:
                await asyncio.sleep(0.5)
        if waiting:
            names = ", ".join(f"{i.kind} {i.name}" for i in waiting)
            self._progress(f"warning: still being deleted after 120 s: {names}")
        await self._remove_events(order)
        self._created.clear()

    async def _remove_events(self, order: list[Created]) -> None:
        """Events about the sandbox's objects in namespaces it did not create (`default`: the
        VMs', and where cluster-scoped objects' Events go), after the objects are gone.
        kube-controller-manager may still record a Node's RemovingNode a moment later."""
        selectors = [f"involvedObject.apiVersion={v}" for v in EVENT_API_VERSIONS]
        selectors += [f"involvedObject.kind=Node,involvedObject.name={c.name}"
                      for c in order if c.kind == "Node"]  # kube-controller-manager's
        for namespace in leftover_event_namespaces(order):
            for selector in selectors:
                answer = await self.http.delete(f"/api/v1/namespaces/{namespace}/events",
                                                params={"fieldSelector": selector})
                if answer.status_code not in (200, 404):
                    self._progress(f"warning: deleting Events in {namespace}: "
                                   f"{answer.status_code} {answer.text[:200]}")

    async def _renew_node_leases(self) -> None:
        while True:
            await asyncio.sleep(10)
            for node in sorted(self._nodes):
                with contextlib.suppress(httpx.HTTPError, ControlPlaneError):
                    await self.apply(node_lease(node, now=dt.datetime.now(dt.UTC)))

    # -- objects

    def _record(self, resource: Resource, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self._created.append(Created(resource=resource, namespace=meta.get("namespace", ""),
                                     name=meta["name"], kind=str(obj.get("kind", ""))))

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource = resource_of(obj)
        meta = obj.get("metadata") or {}
        if (obj.get("kind"), meta.get("name")) in KEEP:
            return obj
        if resource.namespaced:
            meta = {**meta, "namespace": meta.get("namespace") or "default"}
            obj = {**obj, "metadata": meta}
        body = labelled(obj)
        answer = await self.http.post(resource.path(namespace=meta.get("namespace", "")),
                                      json=body)
        if answer.status_code == 409:
            return await self._replace_ours(resource, body)
        self._check(answer, f"creating {obj.get('kind')} {meta.get('name')}")
        created: dict[str, Any] = answer.json()
        self._record(resource, created)
        await self._after_create(created)
        return created

    async def _replace_ours(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        path = resource.path(namespace=meta.get("namespace", ""), name=meta["name"])
        current = await self.http.get(path)
        self._check(current, f"reading {body['kind']} {meta['name']}")
        existing = current.json()
        if not is_ours(existing):
            raise ControlPlaneError(
                f"{body['kind']} {meta['name']} already exists on the API server and was not "
                "made by a sandbox; the sandbox does not change what it did not create: remove "
                "it or use another API server")
        rv = existing["metadata"]["resourceVersion"]
        replaced = await self.http.put(path, json={**body, "metadata": {
            **meta, "resourceVersion": rv}})
        self._check(replaced, f"replacing {body['kind']} {meta['name']}")
        self._record(resource, existing)
        result: dict[str, Any] = replaced.json()
        await self._after_create(result)
        return result

    async def _after_create(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") == "CustomResourceDefinition":
            await self._wait_established(obj["metadata"]["name"])
        if obj.get("kind") == "Node":
            self._nodes.add(obj["metadata"]["name"])
            await self.apply(node_lease(obj["metadata"]["name"], now=dt.datetime.now(dt.UTC)))

    async def _wait_established(self, name: str) -> None:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            got = await self.http.get(path)
            conditions = (got.json().get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions):
                return
            await asyncio.sleep(0.2)
        raise ControlPlaneError(f"the CRD {name} was not established within 60 s")

    @staticmethod
    def _check(answer: httpx.Response, doing: str) -> None:
        if answer.is_success:
            return
        try:
            message = answer.json().get("message") or answer.text
        except ValueError:
            message = answer.text
        raise ControlPlaneError(f"{doing}: {answer.status_code} {message}")

    async def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        answer = await self.http.post(resource.path(namespace=meta.get("namespace", "")),
                                      json=labelled(obj))
        self._check(answer, f"creating {obj.get('kind')} {meta.get('name')}")
        created: dict[str, Any] = answer.json()
        self._record(resource, created)
        return created

    async def get(self, resource: Resource, *, namespace: str = "",
                  name: str) -> dict[str, Any] | None:
        answer = await self.http.get(resource.path(namespace=namespace, name=name))
        if answer.status_code == 404:
            return None
        self._check(answer, f"reading {resource.plural} {name}")
        found: dict[str, Any] = answer.json()
        return found

    async def list(self, resource: Resource) -> list[dict[str, Any]]:
        answer = await self.http.get(resource.path())
        self._check(answer, f"listing {resource.plural}")
        items: list[dict[str, Any]] = answer.json().get("items") or []
        return items

    async def update_status(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        answer = await self.http.put(resource.path(namespace=meta.get("namespace", ""),
                                                   name=meta["name"], subresource="status"),
                                     json=obj)
        self._check(answer, f"updating the status of {resource.plural} {meta['name']}")
        updated: dict[str, Any] = answer.json()
        return updated

    async def delete(self, resource: Resource, *, namespace: str = "", name: str,
                     grace_period_seconds: int | None = None) -> bool:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        answer = await self.http.request(
            "DELETE", resource.path(namespace=namespace, name=name), json=options)
        if answer.status_code == 404:
            return True
        self._check(answer, f"deleting {resource.plural} {name}")
        return removed_by_delete(answer.json())

    async def service_account_token(self, *, namespace: str, name: str) -> str:
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        answer = await self.http.post(path, json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400}})
        self._check(answer, f"requesting a token for ServiceAccount {namespace}/{name}")
        return str(answer.json()["status"]["token"])

    async def user_token(self, *, name: str) -> str:
        """A ServiceAccount in the sandbox's own namespace: authenticated, no other rights."""
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": aggregated.SERVICE_NAMESPACE}}
        await self.apply(account)
        return await self.service_account_token(namespace=aggregated.SERVICE_NAMESPACE,
                                                name=name)
