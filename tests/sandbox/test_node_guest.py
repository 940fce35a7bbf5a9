"""A sandbox node guest: its USB devices as the kernel sees them, plugging, hubs, host programs."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from kubevirt_usb.sandbox.guest import UsbDevice, wait_until
from kubevirt_usb.sandbox.guest_image import build_guest_image
from kubevirt_usb.sandbox.node_guest import (
    NodeGuest,
    compile_project,
    device_option,
    device_properties,
    keep_argument,
    node_qemu_args,
    paths_to_keep,
    project_paths,
)
from kubevirt_usb.sandbox.scenario import DeviceKind, DeviceSpec, NodeSpec, default_scenario


def test_node_scenario_becomes_qemu_devices_on_fixed_ports() -> None:
    node = NodeSpec(
        name="n1",
        devices=[
            DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial="A,1"),
            DeviceSpec(id="hub1", kind=DeviceKind.HUB, port="4"),
            DeviceSpec(id="kbd1", kind=DeviceKind.USB_KBD, hub="hub1", port="2"),
            DeviceSpec(id="ser1", kind=DeviceKind.USB_SERIAL, plugged=False),
            DeviceSpec(id="audio1", kind=DeviceKind.USB_AUDIO, hub="hub1", port="1"),
        ],
    )
    args = node_qemu_args(node, Path("/run/x"))
    devices = [args[i + 1] for i, a in enumerate(args) if a == "-device"]
    assert "usb-storage,bus=xhci.0,port=1,drive=kvubk0,serial=A,,1,id=stick1" in devices
    assert devices.index("usb-hub,bus=xhci.0,port=4,id=hub1") < devices.index(
        "usb-kbd,bus=xhci.0,port=4.2,id=kbd1"
    )
    assert not any("id=ser1" in d for d in devices)  # not plugged at boot ...
    assert "null,id=kvubk3" in args  # ... but its backend is there for a later plug
    props = device_properties(node, node.device("ser1"), "2")
    assert props["always-plugged"] is True
    assert device_option(props) == (
        "usb-serial,bus=xhci.0,port=2,chardev=kvubk3,always-plugged=on,id=ser1"
    )
    assert "usb-audio,bus=xhci.0,port=4.1,audiodev=kvubk4,id=audio1" in devices
    assert "none,id=kvubk4" in args  # the composite device's audio backend


def test_a_serial_adapter_with_a_loopback_plug_reads_back_what_it_writes(
        tmp_path: Path) -> None:
    node = NodeSpec(name="n1", devices=[
        DeviceSpec(id="ser1", kind=DeviceKind.USB_SERIAL, echo=True)])
    args = node_qemu_args(node, tmp_path)
    # one FIFO opened read-write as both ends of QEMU's pipe chardev: an echo
    assert f"pipe,id=kvubk0,path={tmp_path}/echo-ser1" in args


def node_with_hub() -> NodeSpec:
    """The default node plus a hub on port 5 with a stick behind it on hub port 2."""
    node = default_scenario().node("node1")
    extra = [
        DeviceSpec(id="hub1", kind=DeviceKind.HUB, port="5"),
        DeviceSpec(id="stick3", kind=DeviceKind.USB_STORAGE, serial="BBB1", hub="hub1", port="2"),
    ]
    return node.model_copy(update={"devices": [*node.devices, *extra]})


def test_only_host_paths_the_guests_tmpfs_would_hide_are_kept() -> None:
    candidates = ["/tmp/clone/.venv", "/tmp/clone", "/tmp/clone/src", "/work/main/src",
                  "/run/x", "/tmpfoo/y", "/tmp"]
    assert paths_to_keep(candidates) == ["/run/x", "/tmp"]
    assert paths_to_keep(["/tmp/clone/.venv", "/tmp/clone/src", "/root/.venv"]) == [
        "/tmp/clone/.venv", "/tmp/clone/src"]
    assert paths_to_keep(["/work/main/.venv", "/work/main/src"]) == []
    assert keep_argument([]) == []
    (arg,) = keep_argument(["/tmp/a b", "/run/c"])
    assert base64.b64decode(arg.removeprefix("kvu.keep=")).decode() == "/tmp/a b\n/run/c"


KEPT_FILE = "hello from the host's /tmp"


@pytest.fixture(scope="module")
def host_tmp_dir() -> Iterator[Path]:
    """A directory in the host's /tmp, where a clone of the project may live (as in CI)."""
    where = Path(tempfile.mkdtemp(prefix="kvu-keep ", dir="/tmp"))
    (where / "file").write_text(KEPT_FILE)
    yield where
    shutil.rmtree(where)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(host_tmp_dir: Path) -> AsyncIterator[NodeGuest]:
    image = build_guest_image()
    async with NodeGuest(node_with_hub(), image=image,
                         host_paths=[*project_paths(), str(host_tmp_dir)]) as guest:
        yield guest


def by_serial(devices: list[UsbDevice], serial: str) -> UsbDevice | None:
    return next((d for d in devices if d.serial == serial), None)


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_sticks_and_serial_adapter_show_in_sysfs(node: NodeGuest) -> None:
    devices = await node.usb_devices()
    sticks = [by_serial(devices, s) for s in ("AAA1", "AAA2")]
    for stick in sticks:
        assert stick is not None
        assert stick.vid_pid == "46f4:0001"
        assert stick.product == "QEMU USB HARDDRIVE"
    adapter = by_serial(devices, "FT0001")
    assert adapter is not None
    assert adapter.vid_pid == "0403:6001"
    assert adapter.product == "QEMU USB SERIAL"
    tty = await node.exec(f"ls /sys/bus/usb/devices/{adapter.name}:1.0/", timeout=30)
    assert "ttyUSB0" in tty.output


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_unplugged_stick_disappears_and_returns_to_the_same_port(node: NodeGuest) -> None:
    before = by_serial(await node.usb_devices(), "AAA2")
    assert before is not None
    await node.unplug("stick2")

    async def gone() -> bool:
        return by_serial(await node.usb_devices(), "AAA2") is None

    await wait_until(gone, within=60, what="AAA2 to leave")
    assert by_serial(await node.usb_devices(), "AAA1") is not None

    await node.plug("stick2")

    async def back() -> bool:
        return by_serial(await node.usb_devices(), "AAA2") is not None

    await wait_until(back, within=60, what="AAA2 to return")
    after = by_serial(await node.usb_devices(), "AAA2")
    assert after is not None
    assert (after.name, after.devpath) == (before.name, before.devpath)
    assert after.devnum != before.devnum  # a new enumeration, like a real replug


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_device_behind_a_hub_has_a_hub_port_path(node: NodeGuest) -> None:
    stick = by_serial(await node.usb_devices(), "BBB1")
    assert stick is not None
    assert stick.devpath == node.port_of("stick3") == "5.2"
    assert stick.name == f"{stick.busnum}-5.2"


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_host_programs_run_in_the_guest_over_9p(node: NodeGuest) -> None:
    script = (
        "import pathlib, kubevirt_usb; "
        "print(kubevirt_usb.__name__, sorted(p.read_text().strip() for p in "
        "pathlib.Path('/sys/bus/usb/devices').glob('*/serial') if 'AAA' in p.read_text()))"
    )
    result = await node.exec(node.python_command(["-c", script]), timeout=120)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "kubevirt_usb ['AAA1', 'AAA2']"
    usbredirect = await node.exec(node.host_command(["usbredirect", "--help"]), timeout=60)
    assert "--device" in usbredirect.output


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_a_host_directory_under_tmp_stays_visible_and_tmp_stays_writable(
        node: NodeGuest, host_tmp_dir: Path) -> None:
    kept = await node.exec(node.host_command(["cat", f"{host_tmp_dir}/file"]), timeout=60)
    assert kept.output == KEPT_FILE, kept.output
    written = await node.exec(node.host_command(
        ["sh", "-c", "echo scratch > /tmp/scratch && cat /tmp/scratch"]), timeout=60)
    assert written.output.strip() == "scratch", written.output  # the guest's own tmpfs


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_moved_device_shows_on_its_new_port(node: NodeGuest) -> None:
    await node.move("serial1", port=6)

    async def moved() -> bool:
        adapter = by_serial(await node.usb_devices(), "FT0001")
        return adapter is not None and adapter.devpath == "6"

    await wait_until(moved, within=60, what="the serial adapter on port 6")
    assert node.port_of("serial1") == "6"


def test_the_project_is_byte_compiled_for_the_guests_read_only_view(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "engine.py"
    module.parent.mkdir()
    module.write_text("VALUE = 1\n")
    compile_project(tmp_path / "pkg")
    assert [p.name.split(".")[0] for p in (tmp_path / "pkg" / "__pycache__").iterdir()] == [
        "engine"]
