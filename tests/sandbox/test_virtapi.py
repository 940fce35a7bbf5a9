"""The virt-api emulator: what a usbredir client sees, over real sockets where it matters."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.typing import Subprotocol

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.sandbox import virtapi
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator
from tests.sandbox.usbredir_harness import (
    NAMESPACE,
    FakeContext,
    FakeSlot,
    eventually,
    fake_slots,
    make_app,
    make_vmi,
    pattern,
    serve,
    settled,
    short_dir,
)

ALICE = "alice-token"
TOKENS = {ALICE: UserInfo(name="alice"), "bob-token": UserInfo(name="bob")}
VERSION_INFO = {"gitVersion": "v1.6.0", "gitCommit": "abc", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                "platform": "linux/amd64"}


@dataclass
class Env:
    api: VirtAPIEmulator
    context: FakeContext
    slots: dict[int, FakeSlot]
    port: int
    resolved: list[tuple[str, str, str]]

    def url(self, name: str = "testvmi") -> str:
        return (f"ws://127.0.0.1:{self.port}/apis/subresources.kubevirt.io/v1/namespaces/"
                f"{NAMESPACE}/virtualmachineinstances/{name}/usbredir")

    def gauge(self, name: str = "testvmi") -> float | None:
        return self.api.registry.get_sample_value(
            "kubevirt_usbredir_active_connections", {"namespace": NAMESPACE, "vmi": name}
        )

    def active(self) -> tuple[int, ...]:
        return self.api.active_slots(namespace=NAMESPACE, name="testvmi")


@contextlib.asynccontextmanager
async def running(*, slots: Mapping[int, str] | None = None,
                  echo: bool = True) -> AsyncIterator[Env]:
    """The emulator on uvicorn, with VMI `testvmi` (uid-1) whose slots live in `<root>/uid-1`."""
    with short_dir() as root:
        (root / "uid-1").mkdir()
        resolved: list[tuple[str, str, str]] = []

        def slot_dir(namespace: str, name: str, uid: str) -> Path:
            resolved.append((namespace, name, uid))
            return root / uid

        context = FakeContext(allowed_users={"alice"})
        context.add(make_vmi())
        api = VirtAPIEmulator(slot_dir=slot_dir)
        app = make_app(api, context, tokens=TOKENS, seen=[])
        async with fake_slots(root / "uid-1", slots=slots, echo=echo) as fakes, serve(app) as port:
            yield Env(api=api, context=context, slots=fakes, port=port, resolved=resolved)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with running() as value:
        yield value


async def open_stream(env: Env, *, name: str = "testvmi", token: str = ALICE,
                      max_queue: int = 16) -> ClientConnection:
    return await connect(
        env.url(name), subprotocols=[Subprotocol("plain.kubevirt.io")],
        additional_headers={"Authorization": f"Bearer {token}"}, compression=None,
        max_queue=max_queue,
    )


async def refusal(env: Env, *, name: str = "testvmi",
                  token: str = ALICE) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as info:
        await open_stream(env, name=name, token=token)
    response = info.value.response
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.body or b"")


# ----------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("vmi", "code", "message"),
    [
        (make_vmi(architecture="s390x", client_passthrough=False, phase="Pending"), 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "No USB support on s390x"),
        (make_vmi(client_passthrough=False, phase="Pending"), 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "Not configured with USB Redirection"),
        (make_vmi(phase="Scheduled"), 400, "VMI is not running"),
    ],
)
def test_vmi_checks_come_in_upstream_order(vmi: dict[str, Any], code: int, message: str) -> None:
    error = virtapi.validate_vmi(vmi, name="testvmi")
    assert error is not None
    assert (error.code, error.message) == (code, message)


def test_a_running_vmi_with_client_passthrough_passes() -> None:
    assert virtapi.validate_vmi(make_vmi(), name="testvmi") is None


def test_status_bodies_match_virt_api() -> None:
    assert virtapi.status_body(virtapi.vmi_not_found("testvmi")) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'virtualmachineinstance.kubevirt.io "testvmi" not found',
        "reason": "NotFound", "code": 404,
        "details": {"name": "testvmi", "group": "kubevirt.io", "kind": "virtualmachineinstance"},
    }
    assert virtapi.status_body(virtapi.no_free_slot()) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Internal error occurred: Can't connect to websocket (503): "
                   "websocket: bad handshake",
        "reason": "InternalError", "code": 500,
        "details": {"causes": [
            {"message": "Can't connect to websocket (503): websocket: bad handshake"}]},
    }


def test_forbidden_says_what_rbac_lacks() -> None:
    error = virtapi.forbidden(user=UserInfo(name="bob"), namespace="ns1", name="vm1")
    assert error.code == 403
    assert error.message == (
        'virtualmachineinstances.subresources.kubevirt.io "vm1" is forbidden: User "bob" cannot '
        'get resource "virtualmachineinstances/usbredir" in API group "subresources.kubevirt.io" '
        'in the namespace "ns1"'
    )


def test_free_slots_lowest_first() -> None:
    assert virtapi.free_slots(frozenset()) == [0, 1, 2, 3]
    assert virtapi.free_slots(frozenset({0, 2})) == [1, 3]
    assert virtapi.free_slots(frozenset({0, 1, 2, 3})) == []


def test_discovery_lists_the_usbredir_subresource() -> None:
    api = VirtAPIEmulator(slot_dir=lambda ns, name, uid: Path("/nonexistent"))
    assert (api.group, api.version) == ("subresources.kubevirt.io", "v1")
    assert {"name": "virtualmachineinstances/usbredir", "singularName": "", "namespaced": True,
            "kind": "VirtualMachineInstance", "verbs": ["get"]} in api.api_resources()


# ----------------------------------------------------------------------------- plain HTTP


async def plain_get(path: str, context: FakeContext) -> httpx.Response:
    api = VirtAPIEmulator(slot_dir=lambda ns, name, uid: Path("/nonexistent"),
                          version_info=VERSION_INFO)
    app = make_app(api, context, tokens=TOKENS, seen=[])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://virt-api") as client:
        return await client.get(path, headers={"Authorization": "Bearer alice-token"})


async def test_version_answers_like_virt_api() -> None:
    response = await plain_get("/apis/subresources.kubevirt.io/v1/version", FakeContext())
    assert response.status_code == 200
    assert response.json() == VERSION_INFO


async def test_plain_get_without_upgrade_is_refused_like_the_upgrader_does() -> None:
    context = FakeContext(allowed_users={"alice"})
    context.add(make_vmi())
    base = "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/"
    response = await plain_get(base + "testvmi/usbredir", context)
    assert (response.status_code, response.text) == (400, "Bad Request\n")
    missing = await plain_get(base + "other/usbredir", context)
    assert missing.status_code == 404
    assert missing.json()["message"] == 'virtualmachineinstance.kubevirt.io "other" not found'


# ----------------------------------------------------------------------------- refusals


async def test_missing_vmi_is_404_before_the_upgrade(env: Env) -> None:
    code, status = await refusal(env, name="nothere")
    assert (code, status["reason"]) == (404, "NotFound")
    assert status["message"] == 'virtualmachineinstance.kubevirt.io "nothere" not found'


@pytest.mark.parametrize(
    ("vmi", "code", "message"),
    [
        (make_vmi(architecture="s390x"), 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "No USB support on s390x"),
        (make_vmi(client_passthrough=False), 409,
         'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "testvmi": '
         "Not configured with USB Redirection"),
        (make_vmi(phase="Scheduling"), 400, "VMI is not running"),
    ],
)
async def test_unfit_vmi_is_refused_with_its_status(env: Env, vmi: dict[str, Any], code: int,
                                                    message: str) -> None:
    env.context.add(vmi)
    got_code, status = await refusal(env)
    assert (got_code, status["code"], status["message"]) == (code, code, message)
    assert env.active() == ()
    assert env.gauge() == 0


async def test_user_without_rbac_gets_403(env: Env) -> None:
    code, status = await refusal(env, token="bob-token")
    assert (code, status["reason"]) == (403, "Forbidden")
    assert 'User "bob" cannot get resource "virtualmachineinstances/usbredir"' in status["message"]
    assert env.gauge() is None  # refused before virt-api's handler ran


# ----------------------------------------------------------------------------- streams


async def test_stream_carries_binary_frames_and_drops_text(env: Env) -> None:
    ws = await open_stream(env)
    assert ws.subprotocol == "plain.kubevirt.io"
    await ws.send("text is not usbredir")
    await ws.send(b"\x00\x01hello")
    assert await ws.recv() == b"\x00\x01hello"
    assert bytes(env.slots[0].peers[0].received) == b"\x00\x01hello"
    assert env.resolved[-1] == (NAMESPACE, "testvmi", "uid-1")
    await ws.close()


async def test_lowest_free_slot_and_a_closed_stream_frees_its_slot(env: Env) -> None:
    first = await open_stream(env)
    second = await open_stream(env)
    assert env.active() == (0, 1)
    assert [len(env.slots[n].peers) for n in range(4)] == [1, 1, 0, 0]
    await first.close()
    await eventually(lambda: env.active() == (1,))
    third = await open_stream(env)
    assert env.active() == (0, 1)
    assert [len(env.slots[n].peers) for n in range(4)] == [2, 1, 0, 0]
    for ws in (second, third):
        await ws.close()
    await eventually(lambda: env.active() == ())


async def test_fifth_stream_gets_500_while_four_are_open_and_the_gauge_follows(env: Env) -> None:
    streams = [await open_stream(env) for _ in range(4)]
    assert env.active() == (0, 1, 2, 3)
    assert env.gauge() == 4
    code, status = await refusal(env)
    assert (code, status["reason"]) == (500, "InternalError")
    assert status["message"] == (
        "Internal error occurred: Can't connect to websocket (503): websocket: bad handshake"
    )
    await eventually(lambda: env.gauge() == 4)
    for ws in streams:
        await ws.close()
    await eventually(lambda: env.gauge() == 0 and env.active() == ())


async def test_slots_whose_socket_refuses_or_is_missing_are_skipped() -> None:
    async with running(slots={0: "refuse", 1: "missing", 2: "listen", 3: "listen"}) as env:
        first = await open_stream(env)
        second = await open_stream(env)
        assert env.active() == (2, 3)
        code, _ = await refusal(env)
        assert code == 500
        for ws in (first, second):
            await ws.close()


async def test_vm_side_closing_ends_the_stream_and_frees_the_slot(env: Env) -> None:
    ws = await open_stream(env)
    await eventually(lambda: len(env.slots[0].peers) == 1)
    env.slots[0].peers[0].writer.close()
    with pytest.raises(ConnectionClosedOK):
        await ws.recv()
    await eventually(lambda: env.active() == () and env.gauge() == 0)


async def test_client_closing_ends_the_vm_side(env: Env) -> None:
    ws = await open_stream(env)
    await ws.send(b"bye")
    assert await ws.recv() == b"bye"
    await ws.close()
    await asyncio.wait_for(env.slots[0].peers[0].ended.wait(), 20)
    await eventually(lambda: env.active() == ())


async def test_vm_output_waits_for_a_client_that_does_not_read() -> None:
    total = 48 << 20
    async with running(echo=False) as env:
        ws = await open_stream(env, max_queue=1)
        await eventually(lambda: len(env.slots[0].peers) == 1)
        vm = env.slots[0].peers[0].writer
        written = [0]

        async def vm_writes() -> None:
            while written[0] < total:
                vm.write(pattern(written[0], 1 << 16))
                await vm.drain()
                written[0] += 1 << 16

        writer = asyncio.create_task(vm_writes())
        stalled_at = await settled(lambda: written[0])
        assert stalled_at < total // 2
        assert not writer.done()
        received = 0
        while received < total:
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            assert frame == pattern(received, len(frame))
            received += len(frame)
        await writer
        await ws.close()


async def test_a_server_without_denial_responses_still_refuses_the_handshake() -> None:
    """Without ASGI `websocket.http.response` the only refusal left is closing the handshake."""
    api = VirtAPIEmulator(slot_dir=lambda ns, name, uid: Path("/nonexistent"))
    app = make_app(api, FakeContext(allowed_users={"alice"}), tokens=TOKENS, seen=[])
    path = "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/x/usbredir"
    scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"authorization", f"Bearer {ALICE}".encode())], "subprotocols": [],
             "extensions": {}, "state": {}, "root_path": "", "scheme": "ws",
             "server": ("127.0.0.1", 1), "client": ("127.0.0.1", 2),
             "asgi": {"version": "3.0"}, "http_version": "1.1"}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]
