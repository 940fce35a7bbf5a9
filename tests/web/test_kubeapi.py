"""The API as one user sees it, against the API emulator: each request with that user's token."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web.kubeapi import (
    EVENTS,
    USB_ATTACHMENTS,
    USB_DEVICES,
    USB_POLICIES,
    VMS,
    APIFailure,
    Unauthenticated,
    UserAPI,
    failure_from,
)
from tests.web.support import ALICE, MALLORY, Cluster


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[UserAPI]:
    verify = ssl.create_default_context(cafile=str(cluster.server.certificate.ca_path))
    pool = UserAPI(server=cluster.url, verify=verify)
    yield pool
    await pool.close()


def test_resource_paths() -> None:
    assert USB_DEVICES.path(name="d1") == f"/apis/{API_VERSION}/usbdevices/d1"
    assert USB_DEVICES.path(namespace="ignored") == f"/apis/{API_VERSION}/usbdevices"
    assert USB_ATTACHMENTS.path(namespace="default") == \
        f"/apis/{API_VERSION}/namespaces/default/usbattachments"
    assert USB_ATTACHMENTS.path() == f"/apis/{API_VERSION}/usbattachments"
    assert EVENTS.path(namespace="ns", name="e") == "/api/v1/namespaces/ns/events/e"
    assert VMS.api_version == "kubevirt.io/v1"


def test_failures_keep_the_apis_own_words() -> None:
    forbidden = httpx.Response(403, json={"kind": "Status", "message": "no <way>",
                                          "reason": "Forbidden"})
    failure = failure_from(forbidden, forbidden.content)
    assert (failure.code, failure.reason, failure.message) == (403, "Forbidden", "no <way>")
    assert isinstance(failure_from(httpx.Response(401), b""), Unauthenticated)
    plain = httpx.Response(502, text="bad gateway")
    assert failure_from(plain, plain.content).message == "bad gateway"


async def test_a_user_reads_what_rbac_allows(api: UserAPI) -> None:
    alice, mallory = api.as_user(ALICE), api.as_user(MALLORY)
    assert await alice.whoami() == "alice"
    devices = await alice.list(USB_DEVICES)
    assert "46f4-0001-aaa1" in {d["metadata"]["name"] for d in devices.items}
    assert devices.resource_version
    attachments = await alice.list(USB_ATTACHMENTS, namespace="default")
    assert "vm2-held" in [a["metadata"]["name"] for a in attachments.items]
    with pytest.raises(APIFailure) as refused:
        await mallory.list(USB_ATTACHMENTS, namespace="default")
    assert refused.value.code == 403
    assert 'User "mallory" cannot list resource "usbattachments"' in refused.value.message
    assert await alice.can("create", USB_ATTACHMENTS, namespace="default")
    assert not await mallory.can("create", USB_ATTACHMENTS, namespace="default")
    assert not await alice.can("create", USB_POLICIES)


async def test_write_watch_and_delete(api: UserAPI) -> None:
    alice = api.as_user(ALICE)
    listed = await alice.list(USB_ATTACHMENTS, namespace="default",
                              field_selector="metadata.name=kubeapi-test")
    assert listed.items == []
    created = await alice.create(USB_ATTACHMENTS, {
        "apiVersion": API_VERSION, "kind": "USBAttachment",
        "metadata": {"name": "kubeapi-test"}, "spec": {"vm": "vm1", "device": {"serial": "X"}}},
        namespace="default")
    assert (await alice.get(USB_ATTACHMENTS, "kubeapi-test", namespace="default"))[
        "metadata"]["uid"] == created["metadata"]["uid"]
    patched = await alice.merge_patch(USB_ATTACHMENTS, "kubeapi-test",
                                      {"metadata": {"labels": {"x": "y"}}}, namespace="default")
    assert patched["metadata"]["labels"] == {"x": "y"}
    await alice.delete(USB_ATTACHMENTS, "kubeapi-test", namespace="default")
    seen = []
    async for event in alice.watch(USB_ATTACHMENTS, namespace="default",
                                   resource_version=listed.resource_version,
                                   field_selector="metadata.name=kubeapi-test",
                                   timeout_seconds=5):
        seen.append(event.type)
        if event.type == "DELETED":
            break
    assert seen[0] == "ADDED"
    assert seen[-1] == "DELETED"
    with pytest.raises(APIFailure) as gone:
        await alice.get(USB_ATTACHMENTS, "kubeapi-test", namespace="default")
    assert gone.value.code == 404


async def test_a_token_the_api_does_not_know(api: UserAPI) -> None:
    with pytest.raises(Unauthenticated):
        await api.as_user("not-a-token").list(USB_DEVICES)
    with pytest.raises(Unauthenticated):
        async for _event in api.as_user("not-a-token").watch(USB_DEVICES, resource_version="1"):
            pass


@pytest.mark.parametrize("token", ["", "tokén", "two words", "a\nb", "a" * 8193])
def test_what_cannot_travel_in_a_header_is_no_token(api: UserAPI, token: str) -> None:
    with pytest.raises(Unauthenticated, match="not an API token") as refused:
        api.as_user(token)
    assert refused.value.code == 401


async def test_an_unreachable_api_is_a_failure_without_the_token() -> None:
    pool = UserAPI(server="https://127.0.0.1:9", verify=False, timeout=2)
    with pytest.raises(APIFailure) as failed:
        await pool.as_user("secret-token").list(USB_DEVICES)
    await pool.close()
    assert failed.value.code == 0
    assert "secret-token" not in str(failed.value)


async def test_a_patch_of_a_stale_version_is_refused(api: UserAPI, cluster: Cluster) -> None:
    admin = api.as_user(cluster.server.admin_token)
    policy = await admin.create(USB_POLICIES, {
        "apiVersion": API_VERSION, "kind": "USBPolicy", "metadata": {"name": "stale-test"},
        "spec": {"namespaces": ["a"]}})
    read = policy["metadata"]["resourceVersion"]
    await admin.merge_patch(USB_POLICIES, "stale-test", {"spec": {"namespaces": ["a", "b"]}})
    with pytest.raises(APIFailure) as stale:
        await admin.merge_patch(USB_POLICIES, "stale-test",
                                {"metadata": {"resourceVersion": read},
                                 "spec": {"namespaces": ["a", "c"]}})
    assert stale.value.code == 409
    await admin.delete(USB_POLICIES, "stale-test")
