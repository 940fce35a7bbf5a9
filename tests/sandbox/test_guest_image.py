"""The guest boot image: what it is made of, clear errors, a cache that rebuilds only on change."""

from __future__ import annotations

import gzip
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from kubevirt_usb.sandbox.guest_image import (
    ImageBuildError,
    ImageInputs,
    MissingDebianPackage,
    Runner,
    build_guest_image,
    default_init_script,
    module_closure,
    newc_archive,
    parse_candidate,
    parse_kernel_package,
)

USB = "kernel/drivers/usb"
MODULES_DEP = f"""\
{USB}/host/xhci-pci.ko: {USB}/host/xhci-hcd.ko {USB}/core/usbcore.ko
{USB}/host/xhci-hcd.ko: {USB}/core/usbcore.ko
{USB}/core/usbcore.ko:
kernel/drivers/hid/hid-generic.ko: kernel/drivers/hid/hid.ko
kernel/drivers/hid/hid.ko:
"""


def test_module_closure_brings_dependencies_and_accepts_either_spelling() -> None:
    assert module_closure(MODULES_DEP, ["xhci_pci", "hid-generic"]) == [
        "kernel/drivers/hid/hid-generic.ko",
        "kernel/drivers/hid/hid.ko",
        "kernel/drivers/usb/core/usbcore.ko",
        "kernel/drivers/usb/host/xhci-hcd.ko",
        "kernel/drivers/usb/host/xhci-pci.ko",
    ]


def test_module_closure_names_modules_the_kernel_lacks() -> None:
    with pytest.raises(ImageBuildError, match=r"no module.*usb_storage"):
        module_closure(MODULES_DEP, ["xhci_pci", "usb_storage"])


def test_apt_output_parsing() -> None:
    depends = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
    assert parse_kernel_package(depends) == "linux-image-6.1.0-56-amd64"
    assert parse_kernel_package("linux-image-amd64\n") is None
    policy = "linux-image-6.1.0-56-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-2\n"
    assert parse_candidate(policy) == "6.1.192-2"
    assert parse_candidate("x:\n  Installed: (none)\n  Candidate: (none)\n") is None


def test_cache_key_changes_with_every_input() -> None:
    base = ImageInputs("linux-image-x", "1", "1:1.35", ("xhci_pci",), "#!/bin/sh\n")
    variants = [
        replace(base, kernel_version="2"),
        replace(base, busybox_version="1:1.36"),
        replace(base, modules=("xhci_pci", "e1000")),
        replace(base, init_script="#!/bin/sh\necho hi\n"),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == 1 + len(variants)
    assert replace(base).key() == base.key()


def test_newc_archive_unpacks_with_cpio(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "busybox").write_bytes(b"\x7fELF" + bytes(range(256)))
    (tree / "bin" / "busybox").chmod(0o755)
    (tree / "bin" / "sh").symlink_to("busybox")
    (tree / "init").write_text("#!/bin/sh\n")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["cpio", "-idm", "--quiet"], input=newc_archive(tree), cwd=out, check=True
    )
    assert (out / "bin" / "busybox").read_bytes() == (tree / "bin" / "busybox").read_bytes()
    assert (out / "bin" / "busybox").stat().st_mode & 0o777 == 0o755
    assert (out / "bin" / "sh").readlink() == Path("busybox")
    assert (out / "init").read_text() == "#!/bin/sh\n"


def fake_apt(*, busybox_installed: bool, apt_lists: bool = True) -> Runner:
    """A command runner standing in for apt and dpkg (no build gets that far)."""

    def run(argv: Sequence[str], cwd: Path | None) -> str:
        if argv[0] == "depmod":
            return "kmod version 30\n"
        if argv[:2] == ["apt-cache", "depends"]:
            tail = "  Depends: linux-image-6.1.0-56-amd64\n" if apt_lists else ""
            return "linux-image-amd64\n" + tail
        if argv[:2] == ["apt-cache", "policy"]:
            return f"{argv[2]}:\n  Installed: (none)\n  Candidate: 6.1.192-2\n"
        if argv[0] == "dpkg-query":
            status = "install ok installed" if busybox_installed else "unknown ok not-installed"
            return f"{status}\t"
        raise AssertionError(f"unexpected command {argv}")

    return run


def test_missing_busybox_says_which_apt_get_install_fixes_it(tmp_path: Path) -> None:
    with pytest.raises(MissingDebianPackage) as info:
        build_guest_image(
            cache_dir=tmp_path,
            runner=fake_apt(busybox_installed=False),
            progress=lambda _line: None,
        )
    assert "apt-get install -y busybox-static" in str(info.value)


def test_no_apt_lists_says_to_run_apt_get_update(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="apt-get update"):
        build_guest_image(
            cache_dir=tmp_path,
            runner=fake_apt(busybox_installed=True, apt_lists=False),
            progress=lambda _line: None,
        )


@pytest.mark.qemu
def test_image_is_built_once_and_rebuilt_when_an_input_changes(tmp_path: Path) -> None:
    lines: list[str] = []
    lock = threading.Lock()

    def progress(line: str) -> None:
        with lock:
            lines.append(line)

    # Two builders at once: one builds, the other waits for it and uses its result.
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(build_guest_image(cache_dir=tmp_path, progress=progress))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert results[0] == results[1]
    image = results[0]
    assert sum("building" in line for line in lines) == 1
    assert any("downloading" in line for line in lines)
    listing = subprocess.run(
        ["cpio", "-t", "--quiet"],
        input=gzip.decompress(image.initrd.read_bytes()),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "init" in listing.split()
    assert f"lib/modules/{image.kernel_release}/kernel/drivers/usb/host/xhci-pci.ko" in listing
    assert f"lib/modules/{image.kernel_release}/modules.dep" in listing
    built_at = image.initrd.stat().st_mtime_ns

    lines.clear()
    again = build_guest_image(cache_dir=tmp_path, progress=progress)
    assert again == image
    assert again.initrd.stat().st_mtime_ns == built_at
    assert not any("building" in line for line in lines)

    lines.clear()
    changed = build_guest_image(
        cache_dir=tmp_path, init_script=default_init_script() + "\n# changed\n", progress=progress
    )
    assert changed.directory != image.directory
    assert changed.initrd.is_file()
    assert any("building" in line for line in lines)
    assert not any("downloading" in line for line in lines)  # the kernel package is kept
