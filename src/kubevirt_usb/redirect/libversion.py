"""Which usbredir library this node streams with: the file the dynamic loader picks for
`libusbredirhost.so.1`, and the version of the distro package that installed it.

libusbredirhost has no call that returns its version, and the file name carries only the libtool
interface number (0.13.0 ships `libusbredirhost.so.1.0.3`), so the agent asks the package
database that owns the file (`dpkg-query` on Debian/Ubuntu, `rpm` on Fedora/RHEL/UBI). The agent
publishes the answer on its heartbeat Lease for `kubectl usb doctor`; it matters because Debian
bookworm's 0.13.0 `usbredirect` picks the wrong one of two identical devices (the agent's engine
opens the device itself and is not affected, but an admin comparing nodes wants to know).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubevirt_usb.redirect.usbredirhost import LIBRARY

Runner = Callable[[Sequence[str]], str | None]
"""Runs a command and returns its stdout, or None when it is missing or fails."""

COMMAND_TIMEOUT = 10.0
DPKG_INFO = Path("/var/lib/dpkg/info")


@dataclass(frozen=True)
class LibraryVersion:
    """The loaded library file and its package's version (None: no package database knows it)."""

    path: Path
    package_version: str | None

    def describe(self) -> str:
        """E.g. "0.13.0-2 (libusbredirhost.so.1.0.3)", or just the file name."""
        if self.package_version:
            return f"{self.package_version} ({self.path.name})"
        return self.path.name


def run_command(argv: Sequence[str]) -> str | None:
    """The real `Runner`: stdout of a successful command, else None."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def mapped_path(maps: str, soname: str) -> Path | None:
    """The file behind `soname` in a `/proc/<pid>/maps` text (the real file, symlinks resolved
    by the loader), or None when no such library is mapped."""
    stem = soname.split(".so")[0] + ".so"
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and Path(fields[5]).name.startswith(stem):
            return Path(fields[5])
    return None


def dpkg_owner(output: str) -> str | None:
    """The package in `dpkg-query -S FILE` output ("libusbredirhost1:amd64: /usr/lib/...")."""
    for line in output.splitlines():
        package, sep, _path = line.partition(": ")
        if sep and package and not package.startswith("diversion"):
            return package.strip()
    return None


def dpkg_listed_owner(path: str, *, info_dir: Path) -> str | None:
    """The package whose dpkg file list names `path`, looking only at the lists of packages
    named like the library (`dpkg-query -S` reads every list: seconds on a slow node)."""
    word = Path(path).name.removeprefix("lib").split(".so")[0].rstrip("0123456789")
    try:
        lists = sorted(info_dir.glob(f"*{word}*.list"))
    except OSError:
        return None
    for listed in lists:
        try:
            names = listed.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if path in names:
            return listed.name.removesuffix(".list")
    return None


def package_version(path: Path, *, run: Runner, dpkg_info: Path = DPKG_INFO) -> str | None:
    """The version of the package owning `path`, from dpkg or rpm; None if neither knows it."""
    for candidate in dict.fromkeys([str(path), str(path.resolve())]):
        owner = (dpkg_listed_owner(candidate, info_dir=dpkg_info)
                 or dpkg_owner(run(["dpkg-query", "-S", candidate]) or ""))
        if owner is not None:
            version = (run(["dpkg-query", "-W", "-f=${Version}", owner]) or "").strip()
            if version:
                return version
        rpm = (run(["rpm", "-qf", "--qf", "%{VERSION}-%{RELEASE}", candidate]) or "").strip()
        if rpm and "not owned" not in rpm:
            return rpm
    return None


def load_and_locate(library: str = LIBRARY, *, maps_file: Path = Path("/proc/self/maps")
                    ) -> Path | None:
    """Load the library as the engine does and say which file the loader mapped."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return None
    return mapped_path(maps_file.read_text(), library)


def usbredir_version(*, locate: Callable[[], Path | None] = load_and_locate,
                     run: Runner = run_command, dpkg_info: Path = DPKG_INFO
                     ) -> LibraryVersion | None:
    """This node's libusbredirhost, or None when it cannot be loaded (streaming cannot work)."""
    path = locate()
    if path is None:
        return None
    return LibraryVersion(path=path,
                          package_version=package_version(path, run=run, dpkg_info=dpkg_info))
