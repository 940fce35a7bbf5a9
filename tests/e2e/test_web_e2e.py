"""The web UI's "done when", in the cluster in a box with the VM's kernel as judge: a user of
namespace default signs in, attaches AAA1 to vm1 by clicking, the guest kernel sees AAA1, the
page shows it attached with a growing byte count, and a click on Detach takes it out of the VM.

Needs the agent (publishing USBDevices, streaming, counting bytes) and the controller (binding)
running in the sandbox, and Debian's Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.web.sandbox import SandboxWeb, start_web_for_sandbox
from tests.web.browser import chromium, open_page, screenshot, sign_in

pytestmark = [pytest.mark.qemu, pytest.mark.browser]
DEVICES = f"/apis/{API_VERSION}/usbdevices"


@pytest.fixture
def web(sandbox: SandboxHarness) -> Iterator[SandboxWeb]:
    started = sandbox.run(start_web_for_sandbox(sandbox.sandbox))
    yield started
    sandbox.run(started.stop())


def _device_named(sandbox: SandboxHarness, serial: str) -> str | None:
    with sandbox.http() as http:
        for device in http.get(DEVICES).json()["items"]:
            if (device.get("status") or {}).get("serial") == serial:
                return str(device["metadata"]["name"])
    return None


def _bytes_to_vm(page: Page, name: str) -> int:
    cell = page.locator(f"tr[data-device='{name}'] td[data-label='To VM']")
    return int(cell.get_attribute("data-bytes") or 0)


def test_attach_and_detach_aaa1_by_clicking(sandbox: SandboxHarness, web: SandboxWeb,
                                            tmp_path: Path, screenshots: Path) -> None:
    sandbox.wait_until(lambda: _device_named(sandbox, "AAA1") is not None, within=90,
                       what="the agent to publish AAA1 as a USBDevice")
    aaa1 = _device_named(sandbox, "AAA1")
    assert aaa1 is not None
    with chromium(tmp_path / "profile") as context:
        watched = open_page(context, web.url)
        page = watched.page
        sign_in(watched, web.token)
        page.goto(f"{web.url}/namespaces/default/vms/vm1")
        page.select_option("#attach-device", aaa1)
        page.click("#attach-submit")
        page.wait_for_selector(".kvu-progress[data-settled='true']:has-text('Attached to vm1')",
                               timeout=180_000)

        # the judge: vm1's kernel sees exactly that stick
        sandbox.wait_vm_sees("default/vm1", "AAA1", within=60)
        assert not sandbox.vm_sees("default/vm1", "AAA2")
        page.wait_for_selector(f"tr[data-device='{aaa1}'][data-phase='Attached']")
        # the attach card reloaded by itself: AAA1 is no longer offered, AAA2 still is
        page.wait_for_selector(f"#attach-device:not(:has(option[value='{aaa1}']))")
        aaa2 = _device_named(sandbox, "AAA2")
        assert page.locator(f"#attach-device option[value='{aaa2}']").count() == 1

        # reading the stick in the VM moves bytes; the page shows the count grow, live
        sandbox.wait_vm_disk("default/vm1", "AAA1")
        before = _bytes_to_vm(page, aaa1)
        sandbox.read_in_vm("default/vm1", "AAA1", mib=16)
        sandbox.wait_until(lambda: _bytes_to_vm(page, aaa1) > before + 8 * 1024 * 1024,
                           within=60, what="the page's byte count to grow with the reads")
        screenshot(page, "vm-sandbox", into=screenshots)

        page.locator(f"tr[data-device='{aaa1}'] button:has-text('Detach')").click()
        page.wait_for_selector(".kvu-progress:has-text('Detached from vm1')", timeout=120_000)
        sandbox.wait_vm_loses("default/vm1", "AAA1", within=60)
        page.wait_for_selector("#no-attachments")
        page.wait_for_selector(f"#attach-device option[value='{aaa1}']", state="attached")
        assert watched.foreign_requests() == []
        assert watched.errors == []
