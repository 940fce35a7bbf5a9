"""Fixtures for the web UI's tests: the seeded API emulator, the UI served against it, and
browsers signed in as one of its users."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.web.support import Cluster, WebThread


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The API emulator with devices, VMs vm1 and vm2, a policy, and alice, vera and mallory."""
    seeded = Cluster(tmp_path_factory.mktemp("web-apiserver"))
    try:
        seeded.seed()
        yield seeded
    finally:
        seeded.stop()


@pytest.fixture(scope="session")
def web(cluster: Cluster) -> Iterator[WebThread]:
    """The UI for HTTP-level tests (plain cookies: httpx keeps Secure cookies off plain HTTP)."""
    served = WebThread(cluster, secure_cookies=False).start()
    yield served
    served.stop()


def sign_in(base_url: str, token: str) -> httpx.Client:
    """An HTTP client signed in to the UI with `token`, through its sign-in form."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    answer = client.post("/login", data={"csrf_token": csrf[1], "token": token},
                         headers={"Origin": base_url})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(page_html: str) -> str:
    """The CSRF token a page hands htmx (in the body's hx-headers)."""
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page_html.replace("&#34;", '"'))
    assert found is not None, "no CSRF token on the page"
    return found[1]


@pytest.fixture
def signed_in(web: WebThread) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(token: str) -> httpx.Client:
        clients.append(sign_in(web.url, token))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
