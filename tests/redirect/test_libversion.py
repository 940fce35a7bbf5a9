"""Which usbredir library a node streams with: the real library and package database of this
machine, and the dpkg/rpm answers parsed from their real output formats."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from kubevirt_usb.redirect.libversion import (
    LibraryVersion,
    dpkg_owner,
    load_and_locate,
    mapped_path,
    package_version,
    usbredir_version,
)

LIB = "/usr/lib/x86_64-linux-gnu"
MAPS = f"""\
7f3a1c000000-7f3a1c002000 r--p 00000000 fd:01 1311 {LIB}/libusb-1.0.so.0.3.0
7f3a1c100000-7f3a1c102000 r--p 00000000 fd:01 1420 {LIB}/libusbredirhost.so.1.0.3
7f3a1c200000-7f3a1c202000 r--p 00000000 fd:01 1421 {LIB}/libusbredirparser.so.1.2.1
7ffd5c000000-7ffd5c021000 rw-p 00000000 00:00 0    [stack]
"""


def test_this_machine_reports_debians_package_of_the_loaded_library() -> None:
    found = usbredir_version()
    assert found is not None
    assert found.path.name.startswith("libusbredirhost.so.1")
    expected = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libusbredirhost1"],
                              capture_output=True, text=True, check=True).stdout
    assert found.package_version == expected
    assert found.describe() == f"{expected} ({found.path.name})"


def test_a_library_that_cannot_be_loaded_has_no_version() -> None:
    assert load_and_locate("libusbredirhost-not-there.so.9") is None
    assert usbredir_version(locate=lambda: None) is None


def test_the_mapped_file_is_found_by_its_soname() -> None:
    assert mapped_path(MAPS, "libusbredirhost.so.1") == Path(
        "/usr/lib/x86_64-linux-gnu/libusbredirhost.so.1.0.3")
    assert mapped_path(MAPS, "libusbredirparser.so.1") == Path(
        "/usr/lib/x86_64-linux-gnu/libusbredirparser.so.1.2.1")
    assert mapped_path(MAPS, "libfoo.so.1") is None


def test_dpkg_owner_reads_the_package_and_skips_diversions() -> None:
    assert dpkg_owner("libusbredirhost1:amd64: /usr/lib/x86_64-linux-gnu/libusbredirhost.so.1.0.3\n"
                      ) == "libusbredirhost1:amd64"
    assert dpkg_owner("diversion by foo from: /usr/lib/x\nbar: /usr/lib/x\n") == "bar"
    assert dpkg_owner("") is None


class Answers:
    """A package database that knows what it is given and nothing else."""

    def __init__(self, answers: dict[tuple[str, ...], str]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> str | None:
        self.asked.append(tuple(argv))
        return self.answers.get(tuple(argv))


def test_the_dpkg_list_of_a_library_package_answers_without_dpkg_query_s(tmp_path: Path) -> None:
    lib = "/usr/lib/x86_64-linux-gnu/libusbredirhost.so.1.0.3"
    (tmp_path / "libusbredirhost1:amd64.list").write_text(f"/.\n/usr\n{lib}\n")
    (tmp_path / "libusbredirparser1:amd64.list").write_text("/usr/lib/other.so\n")
    dpkg = Answers({("dpkg-query", "-W", "-f=${Version}", "libusbredirhost1:amd64"):
                    "0.13.0-2"})
    assert package_version(Path(lib), run=dpkg, dpkg_info=tmp_path) == "0.13.0-2"
    assert dpkg.asked == [("dpkg-query", "-W", "-f=${Version}", "libusbredirhost1:amd64")]


def test_dpkg_query_s_finds_an_owner_named_unlike_the_library(tmp_path: Path) -> None:
    lib = "/usr/lib/x86_64-linux-gnu/libusbredirhost.so.1.0.3"
    dpkg = Answers({("dpkg-query", "-S", lib): f"usbredir-all:amd64: {lib}\n",
                    ("dpkg-query", "-W", "-f=${Version}", "usbredir-all:amd64"): "0.14.0-1"})
    assert package_version(Path(lib), run=dpkg, dpkg_info=tmp_path) == "0.14.0-1"


def test_rpm_answers_when_there_is_no_dpkg(tmp_path: Path) -> None:
    lib = Path("/usr/lib64/libusbredirhost.so.1.0.3")
    rpm = Answers({("rpm", "-qf", "--qf", "%{VERSION}-%{RELEASE}", str(lib)): "0.14.0-3.el9"})
    assert package_version(lib, run=rpm, dpkg_info=tmp_path) == "0.14.0-3.el9"
    found = usbredir_version(locate=lambda: lib, run=rpm, dpkg_info=tmp_path)
    assert found == LibraryVersion(path=lib, package_version="0.14.0-3.el9")


def test_a_file_no_package_owns_is_named_by_its_file(tmp_path: Path) -> None:
    lib = Path("/opt/usbredir/lib/libusbredirhost.so.1.0.3")
    nobody = Answers({("rpm", "-qf", "--qf", "%{VERSION}-%{RELEASE}", str(lib)):
                      f"file {lib} is not owned by any package"})
    found = usbredir_version(locate=lambda: lib, run=nobody, dpkg_info=tmp_path)
    assert found is not None
    assert found.package_version is None
    assert found.describe() == "libusbredirhost.so.1.0.3"
