"""The console plugin in the real OpenShift console, with the VM's kernel as judge: the console's
bridge (off-cluster, user auth disabled, a user's bearer token) serves the console's own frontend
against the sandbox's API server and loads this project's plugin (and KubeVirt's, where built).
A user of namespace default opens vm1's "USB devices" tab, attaches AAA1 by clicking, sees it
Attached and its byte count grow while vm1's kernel lists AAA1, detaches it; opens the USB devices
page; an admin grants a namespace the use of a device there and revokes it; a user who may only
view sees the read-only tab.

Opt-in, since the console cannot be installed by the project (tests/e2e/console_support.py says
how to name a build):

    KUBEVIRT_USB_TEST_CONSOLE=/opt/console/src/bin/bridge \\
    KUBEVIRT_USB_TEST_KUBEVIRT_PLUGIN=/opt/console/kubevirt-plugin/src/dist \\
        .venv/bin/pytest tests/e2e/test_console_e2e.py

Needs console-plugin/dist built, QEMU (the sandbox) and Debian's Chromium. Screenshots
(console-*.png) go where the `screenshots` fixture says; `make screenshots` refreshes the ones in
docs/screenshots.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.models import API_VERSION
from kubevirt_usb.sandbox.harness import SandboxHarness
from kubevirt_usb.web import rbac
from kubevirt_usb.web.sandbox import sandbox_objects
from tests.e2e.console_support import (
    KUBEVIRT_PLUGIN_NAME,
    PLUGIN_DIST,
    PLUGIN_NAME,
    REASON,
    ConsoleBuild,
    RunningConsole,
    bridge,
    bytes_shown,
    console_build,
    static_files,
)
from tests.web.browser import Watched, chromium, open_page, screenshot_scrolled

BUILD = console_build(os.environ)
if BUILD is None:
    pytest.skip(REASON, allow_module_level=True)

pytestmark = [pytest.mark.qemu, pytest.mark.browser]
DEVICES = f"/apis/{API_VERSION}/usbdevices"
VM_TAB = "/k8s/ns/default/kubevirt.io~v1~VirtualMachine/vm1/usb-devices"
DEVICES_PAGE = "/usb-devices"
FIRST_LOAD = 240_000  # ms: the console's development bundle on a loaded two-core machine


@dataclass(frozen=True)
class Users:
    developer: str  # edit rights in default, the device inventory in view, a policy
    viewer: str  # view rights in default and the inventory: may look, not attach
    admin: str  # the cluster's administrators (system:masters): may change USBPolicies


@pytest.fixture(scope="module")
def build() -> ConsoleBuild:
    if isinstance(BUILD, str):
        pytest.fail(BUILD, pytrace=False)
    assert BUILD is not None
    return BUILD


@pytest.fixture(scope="module")
def users(sandbox: SandboxHarness) -> Users:
    api = sandbox.sandbox.api
    objects = [*sandbox_objects(user="developer", namespace="default", grant=True),
               rbac.namespace_role("viewer", namespace="default", role="view"),
               rbac.device_viewer("viewer")]

    def create() -> Users:
        for obj in objects:
            api.create_object(obj)
        return Users(
            developer=api.add_user(UserInfo(name="developer", groups=("system:authenticated",))),
            viewer=api.add_user(UserInfo(name="viewer", groups=("system:authenticated",))),
            admin=api.add_user(UserInfo(name="admin",
                                        groups=("system:masters", "system:authenticated"))))

    return sandbox.call(create)


@pytest.fixture(scope="module")
def plugins(build: ConsoleBuild) -> Iterator[dict[str, str]]:
    with static_files(PLUGIN_DIST) as ours:
        if build.kubevirt_plugin is None:
            yield {PLUGIN_NAME: ours}
            return
        with static_files(build.kubevirt_plugin) as kubevirt:
            yield {KUBEVIRT_PLUGIN_NAME: kubevirt, PLUGIN_NAME: ours}


def _console(build: ConsoleBuild, sandbox: SandboxHarness, token: str,
             plugins: dict[str, str], log: Path) -> AbstractContextManager[RunningConsole]:
    api = sandbox.sandbox.api
    return bridge(build, api_url=api.url, ca_file=Path(api.certificate.ca_path), token=token,
                  plugins=plugins, log=log)


def _device_named(sandbox: SandboxHarness, serial: str) -> str | None:
    with sandbox.http() as http:
        for device in http.get(DEVICES).json()["items"]:
            if (device.get("status") or {}).get("serial") == serial:
                return str(device["metadata"]["name"])
    return None


def _published(sandbox: SandboxHarness, serial: str) -> str:
    """The USBDevice name of the device with `serial`, once the agent has published it."""
    sandbox.wait_until(lambda: _device_named(sandbox, serial) is not None, within=90,
                       what=f"the agent to publish {serial} as a USBDevice")
    name = _device_named(sandbox, serial)
    assert name is not None
    return name


@contextlib.contextmanager
def _signed_in(sandbox: SandboxHarness, build: ConsoleBuild, token: str,
               plugins: dict[str, str], tmp_path: Path) -> Iterator[Watched]:
    """Chromium on a console whose bridge acts with `token`; a picture of the page when a step
    inside fails."""
    with contextlib.ExitStack() as stack:
        console = stack.enter_context(
            _console(build, sandbox, token, plugins, tmp_path / "bridge.log"))
        context = stack.enter_context(chromium(tmp_path / "profile"))
        watched = open_page(context, console.url)
        stack.enter_context(_picture_on_failure(watched, tmp_path / "failure.png"))
        yield watched


def _open(watched: Watched, path: str, ready: str, *, welcome: bool = False) -> Page:
    """Open a console page and wait for `ready`, past the console's first-visit tour, and past
    KubeVirt's "Welcome to OpenShift Virtualization" modal when `welcome` (its VM pages show it
    to a user who has not dismissed it for good, as a fresh profile has not)."""
    page = watched.page
    page.goto(f"{watched.base_url}{path}")
    page.wait_for_selector(ready, timeout=FIRST_LOAD)
    if welcome:
        modal = page.get_by_role("dialog", name="Welcome modal")
        modal.wait_for(timeout=60_000)
        modal.get_by_role("button", name="Close").click()
        modal.wait_for(state="detached")
    skip = page.locator("[data-test='tour-step-footer-secondary']:has-text('Skip tour')")
    if skip.count():
        skip.click()
    return page


@contextlib.contextmanager
def _picture_on_failure(watched: Watched, path: Path) -> Iterator[None]:
    """What the browser showed when a step failed, beside the test's other files."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            watched.page.screenshot(path=str(path))
        raise


def _assert_the_usb_tab_on_the_vm_page(page: Page, build: ConsoleBuild) -> None:
    """The USB devices tab among the VM page's tabs: KubeVirt's page (its own Overview and
    Configuration tabs, links in its navbar) where its plugin is loaded, else the console's."""
    if build.kubevirt_plugin is None:
        assert page.get_by_role("tab", name="USB devices").count() == 1
        return
    for tab in ("Overview", "Configuration", "USB devices"):
        assert page.locator(f"[data-test-id='horizontal-link-{tab}']").count() == 1, tab


def _assert_headers_whole(page: Page, table: str) -> None:
    """Every column header of `table` shows its whole text (none cut to 'Attac...')."""
    cut = page.evaluate(
        "(sel) => [...document.querySelectorAll(`${sel} th`)]"
        ".filter(th => [th, ...th.querySelectorAll('*')]"
        ".some(e => e.scrollWidth > e.clientWidth + 1)).map(th => th.innerText)", table)
    assert cut == [], f"column headers cut short: {cut}"


def _policy_namespaces(sandbox: SandboxHarness, name: str) -> list[str] | None:
    with sandbox.http() as http:
        response = http.get(f"/apis/{API_VERSION}/usbpolicies/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return list((response.json().get("spec") or {}).get("namespaces") or [])


def _bytes_to_vm(page: Page, attachment: str) -> int:
    cell = page.locator(f"tr[data-test='attachment-{attachment}'] td[data-test='to-vm']")
    return bytes_shown(cell.inner_text())


def test_attach_and_detach_aaa1_in_the_console(sandbox: SandboxHarness, build: ConsoleBuild,
                                               users: Users, plugins: dict[str, str],
                                               tmp_path: Path, screenshots: Path) -> None:
    aaa1 = _published(sandbox, "AAA1")
    with _signed_in(sandbox, build, users.developer, plugins, tmp_path) as watched:
        page = _open(watched, VM_TAB, "section[data-test='attach-form']",
                     welcome=build.kubevirt_plugin is not None)
        # inside the console, not a bare plugin: its masthead, and the tab on the VM's page
        assert page.locator("[data-test-id='masthead'], .pf-v6-c-masthead").count() >= 1
        _assert_the_usb_tab_on_the_vm_page(page, build)
        page.select_option("#usb-attach-device", aaa1)
        page.click("section[data-test='attach-form'] button[type='submit']")
        page.wait_for_selector("[data-test='progress']:has-text('Attached to vm1')",
                               timeout=180_000)
        row = page.locator("tr[data-test^='attachment-']", has_text=aaa1)
        attachment = (row.get_attribute("data-test") or "").removeprefix("attachment-")
        assert attachment, "no attachment row for AAA1"

        # the judge: vm1's kernel sees exactly that stick
        sandbox.wait_vm_sees("default/vm1", "AAA1", within=60)
        assert not sandbox.vm_sees("default/vm1", "AAA2")
        # AAA1 is no longer offered, AAA2 still is
        page.wait_for_selector(f"#usb-attach-device:not(:has(option[value='{aaa1}']))")
        aaa2 = _device_named(sandbox, "AAA2")
        assert page.locator(f"#usb-attach-device option[value='{aaa2}']").count() == 1

        # reading the stick in the VM moves bytes; the tab shows the count grow, live
        sandbox.wait_vm_disk("default/vm1", "AAA1")
        before = _bytes_to_vm(page, attachment)
        sandbox.read_in_vm("default/vm1", "AAA1", mib=16)
        sandbox.wait_until(lambda: _bytes_to_vm(page, attachment) > before + 8 * 1024 * 1024,
                           within=60, what="the tab's byte count to grow with the reads")
        _assert_headers_whole(page, "section[data-test='attachments']")
        screenshot_scrolled(page, "console-vm-usb-tab", into=screenshots)

        row.get_by_role("button", name="Detach").click()
        page.wait_for_selector("[data-test='progress']:has-text('Detached from vm1')",
                               timeout=120_000)
        sandbox.wait_vm_loses("default/vm1", "AAA1", within=60)
        page.wait_for_selector(f"#usb-attach-device option[value='{aaa1}']", state="attached")

        # Virtualization -> USB devices: every device by node, AAA1 free again
        page = _open(watched, DEVICES_PAGE, f"tr[data-test='device-{aaa1}']")
        device_row = page.locator(f"tr[data-test='device-{aaa1}']")
        assert device_row.locator("[data-test='serial']").inner_text() == "AAA1"
        page.wait_for_selector(f"tr[data-test='device-{aaa1}']:has-text('Available')")
        if build.kubevirt_plugin is not None:  # its Virtualization section holds our entry
            section = page.locator("nav button.pf-v6-c-nav__link", has_text="Virtualization")
            if section.get_attribute("aria-expanded") != "true":
                section.click()
            page.wait_for_selector("nav a[href='/usb-devices'][aria-current='page']"
                                   ":has-text('USB devices')")
        _assert_headers_whole(page, "[data-test^='node-']")
        screenshot_scrolled(page, "console-usb-devices", into=screenshots)
        assert watched.dialogs == []


def test_an_admin_grants_and_revokes_a_namespace(sandbox: SandboxHarness, build: ConsoleBuild,
                                                 users: Users, plugins: dict[str, str],
                                                 tmp_path: Path, screenshots: Path) -> None:
    aaa2 = _published(sandbox, "AAA2")
    policy = f"allow-device-{aaa2}"
    with _signed_in(sandbox, build, users.admin, plugins, tmp_path) as watched:
        page = _open(watched, DEVICES_PAGE, "section[data-test='policies'] form")
        assert page.locator("[data-test='read-only']").count() == 0

        # grant: the USBPolicy `kubectl usb allow` would make, and its row, live
        page.select_option("#usb-grant-device", aaa2)
        page.fill("#usb-grant-namespace", "team-b")
        page.click("section[data-test='policies'] button[type='submit']")
        page.wait_for_selector("[data-test='policy-outcome']:has-text('Granted team-b')")
        sandbox.wait_until(lambda: _policy_namespaces(sandbox, policy) == ["team-b"], within=30,
                           what=f"USBPolicy {policy} to grant team-b")
        row = page.locator(f"tr[data-test='policy-{policy}']")
        row.wait_for()
        assert "team-b" in row.inner_text()
        _assert_headers_whole(page, "section[data-test='policies']")
        screenshot_scrolled(page, "console-usb-devices-admin", into=screenshots)

        # revoke: the namespace's label closes; the policy no longer names it
        row.get_by_role("button", name="Revoke team-b").click()
        page.wait_for_selector("[data-test='policy-outcome']:has-text('Revoked team-b')")
        sandbox.wait_until(lambda: _policy_namespaces(sandbox, policy) == [], within=30,
                           what=f"USBPolicy {policy} to no longer name team-b")
        page.wait_for_selector(f"tr[data-test='policy-{policy}']:not(:has-text('team-b'))")
        assert watched.dialogs == []


def test_a_viewer_sees_the_read_only_tab(sandbox: SandboxHarness, build: ConsoleBuild,
                                         users: Users, plugins: dict[str, str],
                                         tmp_path: Path, screenshots: Path) -> None:
    with _signed_in(sandbox, build, users.viewer, plugins, tmp_path) as watched:
        page = _open(watched, VM_TAB, "[data-test='read-only']",
                     welcome=build.kubevirt_plugin is not None)
        assert "may not create USBAttachments" in page.inner_text("[data-test='read-only']")
        assert page.locator("section[data-test='attach-form']").count() == 0
        page.wait_for_selector("section[data-test='attachments']")
        screenshot_scrolled(page, "console-vm-usb-tab-read-only", into=screenshots)

