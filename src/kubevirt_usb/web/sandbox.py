"""The web UI in the cluster in a box: served next to the sandbox's API emulator, with a user of
namespace `default` (edit rights there, the device inventory in view) and a token to sign in with.

    web = await start_web_for_sandbox(sandbox, host="127.0.0.1", port=8080)
    print(f"web UI: {web.url}  sign in with: {web.token}")
    ...
    await web.stop()

Runs on the sandbox's event loop (the API emulator's store is not thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.server import APIServer
from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web import rbac
from kubevirt_usb.web.app import build_app
from kubevirt_usb.web.config import WebConfig
from kubevirt_usb.web.context import WebContext
from kubevirt_usb.web.kubeapi import UserAPI, trust
from kubevirt_usb.web.server import start

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class HasAPI(Protocol):
    """A started cluster in a box (`kubevirt_usb.sandbox.cluster.Sandbox`): its API emulator."""

    @property
    def api(self) -> APIServer: ...


@dataclass(frozen=True)
class SandboxWeb:
    """The UI serving on `url`; `token` signs in as `user`; `await stop()` ends it."""

    url: str
    token: str
    user: str
    stop: Callable[[], Coroutine[Any, Any, None]]


def sandbox_objects(*, user: str, namespace: str, grant: bool) -> list[dict[str, Any]]:
    """What the sandbox's UI user needs: the shipped user roles, edit rights in `namespace`, the
    device inventory in view, and (with `grant`) a policy letting `namespace` use every device."""
    objects = [*rbac.shipped_user_roles(), rbac.namespace_role(user, namespace=namespace),
               rbac.device_viewer(user)]
    if grant:
        objects.append({"apiVersion": API_VERSION, "kind": "USBPolicy",
                        "metadata": {"name": f"sandbox-{namespace}"},
                        "spec": {"namespaces": [namespace], "devices": {}}})
    return objects


async def start_web_for_sandbox(sandbox: HasAPI, *, host: str = "127.0.0.1", port: int = 0,
                                user: str = "developer", namespace: str = "default",
                                grant: bool = True) -> SandboxWeb:
    """Start the UI against the sandbox's API and mint a sign-in token for `user`."""
    api_server = sandbox.api
    for obj in sandbox_objects(user=user, namespace=namespace, grant=grant):
        api_server.create_object(obj)
    token = api_server.add_user(UserInfo(name=user, groups=("system:authenticated",)))
    api = UserAPI(server=api_server.url, verify=trust(ca_file=api_server.certificate.ca_path))
    # Browsers keep Secure cookies on plain HTTP only for localhost.
    config = WebConfig(default_namespace=namespace, secure_cookies=host in LOOPBACK)
    try:
        running = await start(build_app(WebContext.create(config, api=api)), host=host,
                              port=port)
    except BaseException:
        await api.close()
        raise

    async def stop() -> None:
        await running.stop()
        await api.close()

    return SandboxWeb(url=running.url, token=token, user=user, stop=stop)
