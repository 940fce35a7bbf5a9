"""Debian's Chromium driven by Playwright (its own browser download does not work here): launch
options, signing in through the form, and screenshots of whole pages into a directory the test
is given (the `screenshots` fixture: a directory under pytest's temporary directory, or
$KUBEVIRT_USB_SCREENSHOTS; `make screenshots` points it at docs/screenshots)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile in `profile`."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900})
        try:
            yield context
        finally:
            context.close()


@dataclass
class Watched:
    """A page with everything it asked for, every console error and every dialog recorded."""

    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.base_url)]


def open_page(context: BrowserContext, base_url: str) -> Watched:
    page = context.new_page()
    watched = Watched(page=page, base_url=base_url)
    page.on("request", lambda request: watched.requests.append(request.url))

    def failed(request: Request) -> None:
        if request.failure != "net::ERR_ABORTED":  # a live page's stream, closed by leaving it
            watched.failures.append(f"{request.url}: {request.failure}")

    page.on("requestfailed", failed)
    page.on("response", lambda response: watched.failures.append(
        f"{response.url}: {response.status}") if response.status == 404 else None)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def dialog(shown: Dialog) -> None:
        watched.dialogs.append(shown.message)
        shown.dismiss()

    page.on("console", console)
    page.on("dialog", dialog)
    return watched


def sign_in(watched: Watched, token: str) -> None:
    page = watched.page
    page.goto(f"{watched.base_url}/devices")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url(f"{watched.base_url}/devices")


def screenshot(page: Page, name: str, *, into: Path) -> Path:
    """The whole page as `into/name.png` (PatternFly scrolls inside the main container, so
    grow the window)."""
    height = page.evaluate(
        "() => Math.max(...['.pf-v6-c-page__main', '.pf-v6-c-page__main-container', 'body']"
        ".map(s => document.querySelector(s)?.scrollHeight ?? 0))")
    page.set_viewport_size({"width": 1400, "height": max(900, int(height) + 120)})
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 900})
    return path


def screenshot_scrolled(page: Page, name: str, *, into: Path) -> Path:
    """`into/name.png`: the whole content of a page that scrolls inner elements rather than the
    window (the OpenShift console scrolls #content-scrollable, KubeVirt's VM page a div inside
    it): grow the window by what the scrolling elements hide until none hides anything."""
    hidden = ("() => Math.max(0, ...[...document.querySelectorAll('*')]"
              ".filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))"
              ".map(e => e.scrollHeight - e.clientHeight))")
    height = 900
    for _ in range(4):  # each growth can reflow the page; a few rounds settle it
        more = int(page.evaluate(hidden))
        if more <= 1:
            break
        height += more
        page.set_viewport_size({"width": 1400, "height": height})
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 900})
    return path
