"""The Kubernetes API as one signed-in user sees it: every request carries that user's own bearer
token, so the API server's RBAC decides what the UI may show and do. The UI has no rights of its
own.

    api = UserAPI(server=url, verify=ssl_context)
    you = api.as_user(token)
    devices = await you.list(USB_DEVICES)

Failures are `APIFailure` with the API's own reason and message (`Unauthenticated` for 401).
Tokens never appear in URLs, exception texts or logs.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubevirt_usb import models
from kubevirt_usb.kube.objects import Obj, ObjectList, WatchEvent


@dataclass(frozen=True)
class Resource:
    """One kind of API object and where it lives."""

    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


USB_DEVICES = Resource(models.GROUP, models.VERSION, "usbdevices", namespaced=False)
USB_ATTACHMENTS = Resource(models.GROUP, models.VERSION, "usbattachments", namespaced=True)
USB_POLICIES = Resource(models.GROUP, models.VERSION, "usbpolicies", namespaced=False)
VMS = Resource("kubevirt.io", "v1", "virtualmachines", namespaced=True)
VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances", namespaced=True)
EVENTS = Resource("", "v1", "events", namespaced=True)


class APIFailure(Exception):
    """The API server refused or failed a request; `message` is its own explanation."""

    def __init__(self, *, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    @property
    def unreachable(self) -> bool:
        """The API server did not answer at all (no status code)."""
        return self.code == 0


class Unauthenticated(APIFailure):
    """The token is not (or no longer) accepted: the user must sign in again."""


def failure_from(response: httpx.Response, body: bytes) -> APIFailure:
    """The API's refusal as an `APIFailure`, from its `Status` body when it sent one."""
    message, reason = "", ""
    try:
        status = json.loads(body)
        if isinstance(status, dict):
            message = str(status.get("message") or "")
            reason = str(status.get("reason") or "")
    except ValueError:
        message = body.decode("utf-8", "replace").strip()[:300]
    message = message or f"the API server answered {response.status_code} " \
                         f"{response.reason_phrase}"
    cls = Unauthenticated if response.status_code == 401 else APIFailure
    return cls(code=response.status_code, reason=reason or response.reason_phrase,
               message=message)


MAX_TOKEN = 8192


def is_bearer_token(text: str) -> bool:
    """Whether `text` can be a bearer token: one word of visible ASCII (anything else cannot
    travel in an HTTP header)."""
    return 0 < len(text) <= MAX_TOKEN and all("!" <= c <= "~" for c in text)


def trust(*, ca_file: Path | None = None, ca_data: str | None = None,
          insecure: bool = False) -> ssl.SSLContext | bool:
    """How to check the API server's certificate: its CA (a file or PEM text), the system's
    trusted CAs when neither is given, or not at all when `insecure`."""
    if insecure:
        return False
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    if ca_data is not None:
        return ssl.create_default_context(cadata=ca_data)
    return ssl.create_default_context()


class UserAPI:
    """A connection pool to the API server; `as_user(token)` gives that user's view of it."""

    def __init__(self, *, server: str, verify: ssl.SSLContext | bool,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 15.0) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.server, verify=verify, transport=transport,
                                       timeout=timeout, follow_redirects=False)

    def as_user(self, token: str) -> UserClient:
        """That user's client; `Unauthenticated` when `token` cannot be one."""
        if not is_bearer_token(token):
            raise Unauthenticated(code=401, reason="Unauthorized",
                                  message="this is not an API token: a token is one word of "
                                          "visible ASCII characters")
        return UserClient(self._http, token=token)

    async def close(self) -> None:
        await self._http.aclose()


class UserClient:
    """What one user may read and write, with their own token."""

    def __init__(self, http: httpx.AsyncClient, *, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       body: Any = None, content_type: str = "application/json") -> Obj:
        headers = dict(self._headers)
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        try:
            response = await self._http.request(method, path, params=params, content=content,
                                                headers=headers)
        except httpx.HTTPError as exc:
            raise APIFailure(code=0, reason="Unavailable",
                             message=f"the API server cannot be reached ({type(exc).__name__}); "
                                     "try again when it answers"
                             ) from None
        if response.status_code >= 400:
            raise failure_from(response, response.content)
        try:
            out = response.json() if response.content else {}
        except ValueError:
            raise APIFailure(code=502, reason="BadGateway",
                             message=f"the API server's answer to {method} is not JSON: is "
                                     "the server URL the API server's?") from None
        return out if isinstance(out, dict) else {}

    async def list(self, res: Resource, *, namespace: str | None = None,
                   field_selector: str | None = None) -> ObjectList:
        params = {"fieldSelector": field_selector} if field_selector else None
        body = await self._request("GET", res.path(namespace=namespace), params=params)
        meta = body.get("metadata") or {}
        return ObjectList(items=list(body.get("items") or []),
                          resource_version=str(meta.get("resourceVersion") or ""))

    async def get(self, res: Resource, name: str, *, namespace: str | None = None) -> Obj:
        return await self._request("GET", res.path(namespace=namespace, name=name))

    async def create(self, res: Resource, body: Obj, *, namespace: str | None = None) -> Obj:
        return await self._request("POST", res.path(namespace=namespace), body=body)

    async def merge_patch(self, res: Resource, name: str, patch: Obj, *,
                          namespace: str | None = None) -> Obj:
        return await self._request("PATCH", res.path(namespace=namespace, name=name), body=patch,
                                   content_type="application/merge-patch+json")

    async def delete(self, res: Resource, name: str, *, namespace: str | None = None) -> None:
        await self._request("DELETE", res.path(namespace=namespace, name=name))

    async def can(self, verb: str, res: Resource, *, namespace: str | None = None) -> bool:
        """Whether the API would allow this user `verb` on `res` (a SelfSubjectAccessReview)."""
        attributes = {"verb": verb, "group": res.group, "resource": res.plural}
        if namespace and res.namespaced:
            attributes["namespace"] = namespace
        review = await self._request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attributes}})
        return bool((review.get("status") or {}).get("allowed"))

    async def whoami(self) -> str:
        """The user name the API server knows this token by (a SelfSubjectReview)."""
        review = await self._request(
            "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        info = (review.get("status") or {}).get("userInfo") or {}
        return str(info.get("username") or "")

    async def watch(self, res: Resource, *, resource_version: str,
                    namespace: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[WatchEvent]:
        """The changes after `resource_version` until the server ends the watch."""
        params = {"watch": "true", "resourceVersion": resource_version,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if field_selector:
            params["fieldSelector"] = field_selector
        timeout = httpx.Timeout(15.0, read=timeout_seconds + 30.0)
        try:
            async with self._http.stream("GET", res.path(namespace=namespace), params=params,
                                         headers=self._headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    raise failure_from(response, await response.aread())
                async for line in response.aiter_lines():
                    if line.strip():
                        yield _watch_event(json.loads(line))
        except httpx.HTTPError as exc:
            raise APIFailure(code=0, reason="Unavailable",
                             message=f"the watch on {res.plural} broke: {type(exc).__name__}"
                             ) from None


def _watch_event(raw: Obj) -> WatchEvent:
    kind = str(raw.get("type") or "")
    obj = raw.get("object") or {}
    if kind == "ERROR":
        code = int(obj.get("code") or 500)
        raise APIFailure(code=code, reason=str(obj.get("reason") or "Error"),
                         message=str(obj.get("message") or "the watch failed"))
    return WatchEvent(type=kind, object=obj)
