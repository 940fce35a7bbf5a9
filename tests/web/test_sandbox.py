"""The web UI in the cluster in a box: started against its API, with a token for a user of
namespace default who may attach there."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from kubevirt_usb import crds
from kubevirt_usb.apiserver.server import APIServer, BackgroundAPIServer, ServerOptions
from kubevirt_usb.sandbox import kubevirt
from kubevirt_usb.web.sandbox import sandbox_objects, start_web_for_sandbox

T = TypeVar("T")


@dataclass
class FakeSandbox:
    """Just the part of a Sandbox the UI stands on: its API emulator."""

    api: APIServer


def test_the_objects_give_the_user_edit_rights_and_a_policy() -> None:
    objects = sandbox_objects(user="dev", namespace="default", grant=True)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert ("RoleBinding", "dev-edit") in kinds
    assert ("ClusterRoleBinding", "kubevirt-usb-device-viewer-dev") in kinds
    assert ("USBPolicy", "sandbox-default") in kinds
    assert ("ClusterRole", "kubevirt-usb-edit") in kinds
    assert "USBPolicy" not in [o["kind"] for o in sandbox_objects(user="dev", namespace="x",
                                                                  grant=False)]


def test_the_sandbox_ui_signs_its_user_in(tmp_path: Path) -> None:
    manifests = [*crds.all_crds(), *kubevirt.crds(), *kubevirt.cluster_roles()]
    background = BackgroundAPIServer(ServerOptions(state_dir=tmp_path, manifests=manifests))
    server = background.start()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, background.loop).result(30)

    try:
        web = run(start_web_for_sandbox(FakeSandbox(api=server)))
        try:
            assert web.url.startswith("http://127.0.0.1:")
            assert web.user == "developer"
            with httpx.Client(base_url=web.url) as browser:
                # Secure cookies on localhost: httpx will not send them, so carry them by hand.
                form = browser.get("/login")
                pre = form.cookies["__Host-kvu-login"]
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert csrf is not None
                signed = browser.post("/login", data={"csrf_token": csrf[1], "token": web.token},
                                      headers={"Origin": web.url,
                                               "Cookie": f"__Host-kvu-login={pre}"})
                assert signed.status_code == 303, signed.text
                session = signed.cookies["__Host-kvu-session"]
                page = browser.get("/namespaces/default/vms",
                                   headers={"Cookie": f"__Host-kvu-session={session}"})
                assert page.status_code == 200
                assert "developer" in page.text
                devices = browser.get("/devices",
                                      headers={"Cookie": f"__Host-kvu-session={session}"})
                assert 'id="attach-form"' in devices.text  # may attach in default
                policies = browser.get("/policies",
                                       headers={"Cookie": f"__Host-kvu-session={session}"})
                assert 'data-policy="sandbox-default"' in policies.text
        finally:
            run(web.stop())
    finally:
        background.stop()
