"""The UI in Debian's Chromium, clicked through like a user: attach and detach with live
progress, the escaping of hostile device strings, read-only pages, an expired token, and the
screenshots of docs/screenshots (written where the `screenshots` fixture says: `make screenshots`
refreshes the committed ones)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.models import API_VERSION
from tests.polling import wait_until
from tests.web.browser import Watched, chromium, open_page, screenshot, sign_in
from tests.web.support import ALICE, EVIL_PRODUCT, MALLORY, Cluster, WebThread, device

pytestmark = pytest.mark.browser
ATTACHMENTS = f"/apis/{API_VERSION}/namespaces/default/usbattachments"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebThread]:
    """A cluster of its own (the screenshots show only what these tests did) and the UI with
    Secure cookies, as deployed."""
    cluster = Cluster(tmp_path_factory.mktemp("browser-apiserver"))
    try:
        cluster.seed()
        served = WebThread(cluster).start()
        yield served
        served.stop()
    finally:
        cluster.stop()


@pytest.fixture
def browser(ui: WebThread, tmp_path: Path) -> Iterator[Watched]:
    with chromium(tmp_path / "profile") as context:
        watched = open_page(context, ui.url)
        yield watched
        assert watched.foreign_requests() == []
        assert watched.failures == []
        assert watched.errors == []  # a CSP violation would be one
        assert watched.dialogs == []


def _attachments(ui: WebThread, vm: str) -> list[dict[str, Any]]:
    return [a for a in ui.cluster.list(ATTACHMENTS) if a["spec"]["vm"] == vm]


def test_attach_and_detach_by_clicking(ui: WebThread, browser: Watched,
                                       screenshots: Path) -> None:
    page = browser.page
    sign_in(browser, ALICE)
    page.click("a.pf-v6-c-nav__link:has-text('Virtual machines')")
    page.click("a:has-text('vm1')")
    page.wait_for_selector("#no-attachments")
    page.select_option("#attach-device", "46f4-0001-aaa1")
    page.click("#attach-submit")
    page.wait_for_selector(".kvu-progress:has-text('Attaching name=46f4-0001-aaa1 to vm1')")
    made = wait_until(lambda: _attachments(ui, "vm1"), what="the attachment to exist")[0]
    row = page.locator(f"tr[data-attachment='{made['metadata']['name']}']")
    row.wait_for()  # the live table shows it without a reload

    # the controller and the agent, played by the test: bound, then attached and streaming
    ui.cluster.set_status(made, {"phase": "Bound", "device": "46f4-0001-aaa1", "node": "node1"})
    page.wait_for_selector(".kvu-steps .kvu-current:has-text('Bound')")
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ui.cluster.set_status(made, {"phase": "Attached", "bytesToVM": 65536,
                                 "bytesFromVM": 512, "attachedSince": since})
    page.wait_for_selector(".kvu-progress[data-settled='true']:has-text('Attached to vm1')")
    page.wait_for_selector("tr[data-phase='Attached']")
    to_vm = row.locator("td[data-label='To VM']")
    assert to_vm.get_attribute("data-bytes") == "65536"
    ui.cluster.set_status(made, {"bytesToVM": 1048576})
    page.wait_for_selector("td[data-label='To VM'][data-bytes='1048576']")
    assert to_vm.inner_text() == "1.0 MiB"
    assert "46f4-0001-aaa1" in page.locator("[data-slot='1']").inner_text()
    assert page.locator("[data-slots-used='1']").count() == 1
    screenshot(page, "vm", into=screenshots)

    row.locator("button:has-text('Detach')").click()
    page.wait_for_selector(".kvu-progress:has-text('Detached from vm1')")
    page.wait_for_selector("#no-attachments")
    assert _attachments(ui, "vm1") == []
    page.wait_for_selector("[data-slots-used='0']")
    assert "free" in page.locator("[data-slot='1']").inner_text()


def test_hostile_device_strings_render_as_text(ui: WebThread, browser: Watched,
                                               screenshots: Path) -> None:
    page = browser.page
    sign_in(browser, ALICE)
    product = page.locator("tr[data-device='46f4-0001-evil'] .kvu-product")
    assert product.inner_text() == '<script>alert("pwned")</script><img src=x onerror=alert(1)>' \
                                   "\\x1b[31mRED\\u202e"
    serial = page.locator("tr[data-device='46f4-0001-evil'] td[data-label='Serial']")
    assert serial.inner_text() == "EVIL\\x07<b>1</b>"
    assert page.evaluate("() => document.querySelectorAll('main script, main img, main b')"
                         ".length") == 0
    assert EVIL_PRODUCT not in page.content()  # the raw control characters never reach it
    screenshot(page, "devices", into=screenshots)


def test_filters_and_live_updates_without_reloading(ui: WebThread, browser: Watched) -> None:
    page = browser.page
    sign_in(browser, ALICE)
    page.evaluate("() => { window.kvuMarker = 'still here'; }")
    page.select_option("#filter-node", "node2")
    page.wait_for_selector("#device-count:has-text('2 of 5 devices')")
    assert "node=node2" in page.url
    obj, status = device("46f4-0001-new1", node="node2", port="1-6", serial="NEW1",
                         product="Plugged in just now")
    ui.cluster.create(obj, status)
    page.wait_for_selector("tr[data-device='46f4-0001-new1']")
    page.wait_for_selector("#device-count:has-text('3 of 6 devices')")
    assert page.evaluate("() => window.kvuMarker") == "still here"
    page.fill("#filter-text", "just now")
    page.wait_for_selector("#device-count:has-text('1 of 6 devices')")


def test_admins_grant_and_revoke_by_clicking(ui: WebThread, browser: Watched,
                                             screenshots: Path) -> None:
    page = browser.page
    sign_in(browser, ui.cluster.server.admin_token)
    page.click("a.pf-v6-c-nav__link:has-text('Policies')")
    page.fill("#grant-namespace", "team-a")
    page.fill("#grant-selector", "vendor=0403")
    page.fill("#grant-name", "serial-adapters")
    page.click("#grant-submit")
    page.wait_for_selector("#action-alert:has-text('Granted team-a')")
    page.wait_for_selector("tr[data-policy='serial-adapters'] [data-namespace='team-a']")
    page.fill("#grant-namespace", "team-b")
    page.select_option("#grant-policy", "default-sticks")
    page.click("#grant-submit")
    page.wait_for_selector("tr[data-policy='default-sticks'] [data-namespace='team-b']")
    screenshot(page, "policies", into=screenshots)
    page.click("tr[data-policy='default-sticks'] button[aria-label='Revoke team-b']")
    page.wait_for_selector("#action-alert:has-text('no longer includes team-b')")
    page.wait_for_selector("tr[data-policy='default-sticks'] [data-namespace='team-b']",
                           state="detached")


def test_a_user_without_rights_sees_a_read_only_page(ui: WebThread, browser: Watched) -> None:
    page = browser.page
    sign_in(browser, MALLORY)
    page.goto(f"{ui.url}/namespaces/default/vms/vm2")
    attachments = page.locator("#live-attachments")
    assert "You cannot see the attachments in default" in attachments.inner_text()
    assert 'User "mallory" cannot list resource "usbattachments"' in attachments.inner_text()
    assert page.locator("[data-attachment]").count() == 0
    assert page.locator("#read-only").is_visible()
    assert page.locator("#attach-form").count() == 0
    # an attempt all the same, from the page with its CSRF token: the API's reason comes back
    status, text = page.evaluate("""async () => {
        const headers = JSON.parse(document.body.getAttribute('hx-headers'));
        const answer = await fetch('/namespaces/default/attachments', {method: 'POST',
            headers: {...headers, 'HX-Request': 'true'},
            body: new URLSearchParams({vm: 'vm2', device: '46f4-0001-aaa1'})});
        return [answer.status, await answer.text()];
    }""")
    assert status == 403
    assert browser.errors == ["Failed to load resource: the server responded with a status of "
                              "403 (Forbidden)"]
    browser.errors.clear()
    assert 'User &#34;mallory&#34; cannot create resource &#34;usbattachments&#34;' in text
    assert len(_attachments(ui, "vm2")) == 1  # only the one seeded


def test_an_expired_token_goes_back_to_sign_in(ui: WebThread, browser: Watched) -> None:
    token = ui.cluster.server.add_user(UserInfo(name="alice", groups=("system:authenticated",)))
    page = browser.page
    sign_in(browser, token)
    ui.cluster.background.call(lambda: ui.cluster.server.authenticator.tokens.pop(token))
    page.click("a.pf-v6-c-nav__link:has-text('Policies')")
    page.wait_for_url(f"{ui.url}/login?expired=1")
    assert "Your session has ended" in page.locator("#expired").inner_text()
    assert json.dumps(token) not in page.content()
