"""A sandbox VM guest: its usbredir slots, what it sees, and the stock usbredirect chain into it.

The chain: `usbredirect` (Debian's, run from the host's disk inside the node guest) connects to
10.0.2.2:PORT, which is the host's loopback; a tiny relay in this file copies that TCP stream to
the VM's `virt-usbredir-0` socket. (The product's path goes through the virt-api emulator instead.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kubevirt_usb.sandbox.guest import wait_until
from kubevirt_usb.sandbox.guest_image import GuestImage, build_guest_image
from kubevirt_usb.sandbox.node_guest import NodeGuest
from kubevirt_usb.sandbox.scenario import default_scenario
from kubevirt_usb.sandbox.vm_guest import (
    VMGuest,
    parse_benchmark,
    parse_block_listing,
    redir_args,
)


def test_slots_are_unix_sockets_named_like_kubevirt() -> None:
    args = redir_args(Path("/r/kubevirt-private/uid-1"), 4)
    chardevs = [args[i + 1] for i, a in enumerate(args) if a == "-chardev"]
    assert chardevs == [
        f"socket,id=usbredir{n},path=/r/kubevirt-private/uid-1/virt-usbredir-{n},"
        "server=on,wait=off"
        for n in range(4)
    ]
    assert sum(a.startswith("usb-redir,") for a in args) == 4
    assert not any(a.startswith("usb-redir,") for a in redir_args(Path("/r"), 0))


def test_a_vm_without_client_passthrough_has_no_slots() -> None:
    image = GuestImage(Path("/i"), Path("/i/k"), Path("/i/r"), "6.1", "key")
    vm2 = VMGuest(default_scenario().vm("default", "vm2"), image=image)
    assert vm2.slots == 0
    with pytest.raises(ValueError, match="no usbredir slot 0"):
        vm2.usbredir_socket(0)


def test_probe_and_benchmark_output_parsing() -> None:
    text = (
        "B\tsda\tsize\t131072\nB\tsda\tvendor\tQEMU\nB\tsda\tmodel\tQEMU HARDDISK\n"
        "B\tsda\tusb\t2-1\nB\tsda\tserial\tAAA2\nB\tsdb\tsize\t8\n"
    )
    sda, sdb = parse_block_listing(text)
    assert (sda.size_bytes, sda.model, sda.usb_device, sda.usb_serial) == (
        64 * 1024 * 1024, "QEMU HARDDISK", "2-1", "AAA2",
    )  # fmt: skip
    assert sdb.usb_serial is None
    report = "16+0 records in\n16+0 records out\nUPTIME 10.25 10.75\n"
    assert parse_benchmark(report, mib=16) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="did not complete"):
        parse_benchmark("3+0 records in\nUPTIME 1.00 1.10\n", mib=16)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def relay_to_unix(socket: Path) -> asyncio.Server:
    """A TCP listener on 127.0.0.1 that splices each connection to the unix socket `socket`."""

    async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        slot_reader, slot_writer = await asyncio.open_unix_connection(str(socket))
        await asyncio.gather(_copy(reader, slot_writer), _copy(slot_reader, writer))

    return await asyncio.start_server(splice, "127.0.0.1", 0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guests(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[NodeGuest, VMGuest]]:
    image = build_guest_image()
    scenario = default_scenario()
    work = tmp_path_factory.mktemp("guests")  # deep enough to need short socket paths
    node = NodeGuest(scenario.node("node1"), image=image, work_dir=work)
    vm = VMGuest(scenario.vm("default", "vm1"), image=image, work_dir=work)
    try:
        await asyncio.gather(node.start(), vm.start())
        yield node, vm
    finally:
        await asyncio.gather(node.stop(), vm.stop())


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_stick_redirected_with_stock_usbredirect_shows_in_the_vm(
    guests: tuple[NodeGuest, VMGuest],
) -> None:
    node, vm = guests
    assert all(vm.usbredir_socket(n).is_socket() for n in range(4))
    assert (await vm.probe()).usb_devices == []
    # Debian bookworm's usbredirect 0.13.0 turns even BUS-DEV into vid:pid and opens the first
    # matching device, so with the identical sticks AAA1 and AAA2 plugged it cannot be told which
    # one to take. Pull AAA1 first: then 46f4:0001 names exactly one stick, AAA2.
    await node.unplug("stick1")
    relay = await relay_to_unix(vm.usbredir_socket(0))
    port = relay.sockets[0].getsockname()[1]
    argv = ["usbredirect", "--device", "46f4:0001", "--to", f"10.0.2.2:{port}"]
    redirect = await node.start_background(
        node.host_command(argv), log_path="/tmp/usbredirect.log"
    )
    try:

        async def in_vm() -> bool:
            return (await vm.probe()).disk_by_serial("AAA2") is not None

        await wait_until(in_vm, within=90, what="AAA2 in the VM")
        probe = await vm.probe()
        stick = probe.usb_by_serial("AAA2")
        assert stick is not None
        assert stick.vid_pid == "46f4:0001"
        disk = probe.disk_by_serial("AAA2")
        assert disk is not None
        assert (disk.vendor, disk.model, disk.size_bytes) == ("QEMU", "QEMU HARDDISK", 64 << 20)
        assert await vm.read_benchmark(16, serial="AAA2") > 0
    finally:
        await node.signal(redirect)
        relay.close()
        with contextlib.suppress(Exception):
            await node.plug("stick1")


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_restarted_vm_comes_back_empty_with_fresh_sockets(
    guests: tuple[NodeGuest, VMGuest],
) -> None:
    _, vm = guests
    await vm.restart()
    assert (await vm.probe()).usb_devices == []
    reader, writer = await asyncio.open_unix_connection(str(vm.usbredir_socket(3)))
    try:
        async with asyncio.timeout(30):
            hello = await reader.readexactly(12 + 64)  # usbredir header + hello's version string
    finally:
        writer.close()
    assert hello[:4] == b"\0\0\0\0"  # packet type 0: hello
    assert hello[12:].startswith(b"qemu usb-redir guest")


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_stopped_guests_leave_nothing_behind(guests: tuple[NodeGuest, VMGuest]) -> None:
    node, vm = guests
    left = [node.run_dir, vm.run_dir, vm.usbredir_dir]
    assert vm.usbredir_dir.name == vm.vmi_uid
    await asyncio.gather(node.stop(), vm.stop())
    assert not node.running
    assert not vm.running
    assert [path for path in left if path.exists()] == []
