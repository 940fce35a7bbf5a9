"""A sandbox guest's command channel and lifecycle, on a plain guest without devices."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kubevirt_usb.sandbox.guest import (
    Frame,
    FrameParser,
    Guest,
    GuestBootError,
    GuestPaths,
    GuestTimeoutError,
    base_qemu_argv,
    encode_request,
    parse_usb_listing,
    wait_until,
)
from kubevirt_usb.sandbox.guest_image import GuestImage, build_guest_image


def test_the_kernel_skips_the_timer_check_that_panics_a_loaded_host(tmp_path: Path) -> None:
    image = GuestImage(directory=tmp_path, kernel=tmp_path / "vmlinuz",
                       initrd=tmp_path / "initrd", kernel_release="6.1", key="k")
    argv = base_qemu_argv(image=image, paths=GuestPaths(run_dir=tmp_path), memory_mib=256,
                          kernel_args=["kvu.role=node"])
    append = argv[argv.index("-append") + 1].split()
    assert append[:4] == ["console=ttyS0", "panic=-1", "loglevel=5", "no_timer_check"]
    assert append[-1] == "kvu.role=node"


def test_frames_survive_noise_and_carry_binary_output() -> None:
    payload = bytes(range(256)) * 3
    encoded = base64.encodebytes(payload)  # wrapped lines, like busybox base64
    parser = FrameParser()
    lines = [b"@@KVU READY\n", b"stray text\n", b"@@KVU BEGIN a1\n"]
    lines += [line + b"\n" for line in encoded.splitlines()]
    lines += [b"@@KVU END a1 7\n"]
    frames = [frame for line in lines if (frame := parser.feed(line)) is not None]
    assert frames == [Frame(request_id="a1", exit_code=7, output=payload)]


def test_a_frame_end_for_another_request_is_not_taken() -> None:
    parser = FrameParser()
    assert parser.feed(b"@@KVU BEGIN a1\n") is None
    assert parser.feed(b"@@KVU END b2 0\n") is None
    assert parser.feed(b"@@KVU END a1 0\n") is None  # the frame was dropped


def test_requests_are_one_line_whatever_the_command() -> None:
    line = encode_request("x1", "printf 'a\\nb'\necho \"$HOME\" | tr a-z A-Z\n")
    assert line.count(b"\n") == 1
    assert line.startswith(b"X x1 ")


def test_usb_listing_parses_devices_and_skips_incomplete_ones() -> None:
    text = (
        "U\t2-1\tidVendor\t46f4\nU\t2-1\tidProduct\t0001\nU\t2-1\tserial\tAAA1\n"
        "U\t2-1\tbusnum\t2\nU\t2-1\tdevnum\t3\nU\t2-1\tdevpath\t1\nU\t2-1\tspeed\t5000\n"
        "U\t1-9\tidVendor\t1234\n"
    )
    (device,) = parse_usb_listing(text)
    assert (device.name, device.vid_pid, device.serial) == ("2-1", "46f4:0001", "AAA1")
    assert (device.busnum, device.devnum, device.devpath) == (2, 3, "1")


@pytest.fixture(scope="module")
def image() -> GuestImage:
    return build_guest_image()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guest(image: GuestImage) -> AsyncIterator[Guest]:
    async with Guest(name="plain", image=image, memory_mib=256) as plain:
        yield plain


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_exec_returns_output_and_exit_status(guest: Guest) -> None:
    ok = await guest.exec("echo hello; echo oops >&2", timeout=30)
    assert ok.exit_code == 0
    assert ok.output == "hello\noops\n"
    failed = await guest.exec("ls /no/such/dir; exit 3", timeout=30)
    assert failed.exit_code == 3
    assert "/no/such/dir" in failed.output
    assert (await guest.exec("false", timeout=30)).exit_code == 1


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_binary_output_arrives_intact(guest: Guest) -> None:
    result = await guest.exec(
        "head -c 65536 /dev/urandom > /tmp/blob; sha256sum /tmp/blob; cat /tmp/blob", timeout=60
    )
    line, _, blob = result.raw.partition(b"\n")
    assert len(blob) == 65536
    assert line.decode().split()[0] == hashlib.sha256(blob).hexdigest()


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_concurrent_callers_each_get_their_own_answer(guest: Guest) -> None:
    results = await asyncio.gather(
        *(guest.exec(f"sleep 0.$((5 - {i})); echo {i}; exit {i}", timeout=60) for i in range(5))
    )
    assert [(r.exit_code, r.output) for r in results] == [(i, f"{i}\n") for i in range(5)]


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_a_command_past_its_timeout_is_killed_with_its_children(guest: Guest) -> None:
    with pytest.raises(GuestTimeoutError):
        await guest.exec("sleep 300 & echo $! > /tmp/child; sleep 300", timeout=2)

    async def child_gone() -> bool:
        check = await guest.exec("kill -0 $(cat /tmp/child) 2>/dev/null", timeout=30)
        return check.exit_code != 0

    await wait_until(child_gone, within=30, what="the timed-out command's child to die")
    assert (await guest.exec("echo still fine", timeout=30)).output == "still fine\n"


@pytest.mark.qemu
@pytest.mark.asyncio(loop_scope="module")
async def test_background_process_runs_until_signalled(guest: Guest) -> None:
    process = await guest.start_background(
        "echo started; while true; do sleep 1; done", log_path="/tmp/bg.log"
    )

    async def started() -> bool:
        return (await guest.exec("cat /tmp/bg.log", timeout=30)).output == "started\n"

    await wait_until(started, within=30, what="the background process")
    await guest.signal(process)

    async def gone() -> bool:
        return (await guest.exec(f"kill -0 {process.pid}", timeout=30)).exit_code != 0

    await wait_until(gone, within=30, what="the background process to end")


@pytest.mark.qemu
async def test_a_guest_that_cannot_boot_reports_its_console(
    image: GuestImage, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-initrd.img"
    broken.write_bytes(b"this is not an initramfs\n" * 100)
    bad_image = GuestImage(
        directory=tmp_path, kernel=image.kernel, initrd=broken,
        kernel_release=image.kernel_release, key="broken",
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    guest = Guest(name="broken", image=bad_image, memory_mib=256, work_dir=work)
    with pytest.raises(GuestBootError) as info:
        await guest.start()
    assert "console" in str(info.value)
    assert "Kernel panic" in str(info.value)
    assert not guest.running
    assert list(work.iterdir()) == []  # no run directory, socket or log left behind
