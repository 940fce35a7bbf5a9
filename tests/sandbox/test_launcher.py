"""Where a VMI's launcher stand-in lives on its node, and the host end of its slot bridge."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubevirt_usb.sandbox.launcher import (
    SlotBridge,
    launcher_root,
    pod_cgroup,
    slot_path,
    standin_argv,
)

POD = "1234abcd-0000-4000-8000-00000000beef"
VMI = "99999999-aaaa-4bbb-8ccc-dddddddddddd"


def test_the_pod_cgroup_is_named_as_the_kubelets_systemd_driver_names_it() -> None:
    assert pod_cgroup(POD) == ("/sys/fs/cgroup/kubepods.slice/"
                               "kubepods-pod1234abcd_0000_4000_8000_00000000beef.slice")


def test_slot_sockets_lie_under_the_launchers_root_at_kubevirts_layout() -> None:
    assert slot_path(POD, VMI, 2) == (f"{launcher_root(POD)}/run/kubevirt-private/{VMI}/"
                                      "virt-usbredir-2")


def test_the_stand_in_is_told_each_slots_host_port() -> None:
    argv = standin_argv(python="/venv/bin/python", pod_uid=POD, vmi_uid=VMI,
                        ports={1: 4001, 0: 4000})
    assert argv[:3] == ["/venv/bin/python", "-m", "kubevirt_usb.sandbox.launcher_standin"]
    assert argv[argv.index("--root") + 1] == launcher_root(POD)
    assert argv[argv.index("--cgroup") + 1] == pod_cgroup(POD)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--slot-port"] == ["0=4000",
                                                                              "1=4001"]


def test_the_bridge_splices_a_tcp_stream_to_the_slots_unix_socket(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        received: list[bytes] = []

        async def slot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hello from the slot")
            await writer.drain()
            received.append(await reader.readexactly(5))
            writer.close()

        server = await asyncio.start_unix_server(slot, str(tmp_path / "virt-usbredir-0"))
        bridge = SlotBridge({0: tmp_path / "virt-usbredir-0"})
        await bridge.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", bridge.ports[0])
            hello = await reader.readexactly(19)
            writer.write(b"12345")
            await writer.drain()
            rest = await reader.read()  # the slot closed: so does the bridge
            writer.close()
            return hello + rest, received[0]
        finally:
            await bridge.stop()
            server.close()

    assert asyncio.run(scenario()) == (b"hello from the slot", b"12345")


def test_closing_the_bridge_breaks_open_streams(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        async def slot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_unix_server(slot, str(tmp_path / "s"))
        bridge = SlotBridge({3: tmp_path / "s"})
        await bridge.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", bridge.ports[3])
            writer.write(b"x")
            await writer.drain()
            async with asyncio.timeout(10):
                while not bridge._open:
                    await asyncio.sleep(0.01)
            bridge.close_all()
            async with asyncio.timeout(10):
                return await reader.read()
        finally:
            await bridge.stop()
            server.close()

    assert asyncio.run(scenario()) == b""
