"""The sandbox guests' boot image: a Debian kernel and a small busybox initramfs, built on demand.

Everything comes from Debian packages at run time: the kernel package that `linux-image-amd64`
depends on is downloaded with `apt-get download` and unpacked with `dpkg -x` (never installed on
the host); only the kernel modules the guests need, with their dependencies from `modules.dep`,
go into the initramfs next to the host's `busybox-static` and `guest_init.sh` as `/init`.

The result lives in a cache directory (default `~/.cache/kubevirt-usb/guests/<key>/`), where the key
hashes the package versions, the module list and the init script: an image is built once and
rebuilt only when one of them changes. A file lock makes concurrent builds safe.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

DEFAULT_MODULES: tuple[str, ...] = (
    "xhci_pci",  # the qemu-xhci controller
    "usb_storage",  # usb-storage sticks ...
    "sd_mod",  # ... and their /dev/sdX
    "usbserial",
    "ftdi_sio",  # QEMU's usb-serial is an FTDI FT232 (0403:6001)
    "usbhid",
    "hid_generic",  # usb-kbd
    "virtio_net",  # -nic user,model=virtio-net-pci (node guests; VM guests have no network)
    "virtio_pci",
    "virtio_console",  # the command channel (a virtio-serial port)
    "9pnet_virtio",
    "9p",  # the host's root, read-only, at /host
)
META_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_PATH = Path("/bin/busybox")
IMAGE_FORMAT = 1
"""Bumped when the image layout changes in a way the inputs do not show."""

Progress = Callable[[str], None]
Runner = Callable[[Sequence[str], Path | None], str]
"""Runs a command (argv, working directory) and returns its stdout; raises CommandFailed."""

_TOOL_PACKAGES = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "depmod": "kmod",
}
_log = logging.getLogger(__name__)


class ImageBuildError(RuntimeError):
    """The guest image could not be built; the message says why and what fixes it."""


class MissingDebianPackage(ImageBuildError):
    """A Debian package the build needs is not installed (or unknown to apt)."""

    def __init__(self, package: str, detail: str = "") -> None:
        why = f"{detail}; " if detail else ""
        super().__init__(
            f"Debian package {package} is needed: {why}install it with "
            f"`apt-get install -y {package}`"
        )
        self.package = package


class CommandFailed(ImageBuildError):
    """A build command exited non-zero."""


@dataclass(frozen=True)
class ImageInputs:
    """Everything the image is made from; equal inputs give the same image."""

    kernel_package: str
    kernel_version: str
    busybox_version: str
    modules: tuple[str, ...]
    init_script: str
    image_format: int = IMAGE_FORMAT

    def key(self) -> str:
        """The cache key: a short hash of all inputs."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class GuestImage:
    """A built image: boot QEMU with `-kernel kernel -initrd initrd`."""

    directory: Path
    kernel: Path
    initrd: Path
    kernel_release: str
    key: str


def default_cache_dir() -> Path:
    """`~/.cache/kubevirt-usb/guests` (honours XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubevirt-usb" / "guests"


def default_init_script() -> str:
    """The guests' /init shipped with this package (guest_init.sh)."""
    return resources.files(__package__).joinpath("guest_init.sh").read_text(encoding="utf-8")


def run_command(argv: Sequence[str], cwd: Path | None = None) -> str:
    """Run a host command for the build; a missing tool names the Debian package that has it."""
    env = dict(os.environ, LC_ALL="C", PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        package = _TOOL_PACKAGES.get(argv[0], argv[0])
        raise MissingDebianPackage(package, f"`{argv[0]}` not found") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise CommandFailed(f"`{' '.join(argv)}` failed ({done.returncode}): " + " | ".join(detail))
    return done.stdout


# ---- pure helpers ---------------------------------------------------------------------------


def parse_kernel_package(depends_output: str) -> str | None:
    """The `linux-image-*` package named by `apt-cache depends linux-image-amd64`, if any."""
    for line in depends_output.splitlines():
        kind, _, name = line.strip().lstrip("|").partition(":")
        name = name.strip()
        if kind == "Depends" and name.startswith("linux-image-") and not name.startswith("<"):
            return name
    return None


def parse_candidate(policy_output: str) -> str | None:
    """The candidate version in `apt-cache policy PKG` output (None when there is none)."""
    for line in policy_output.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate":
            value = value.strip()
            return None if value in {"", "(none)"} else value
    return None


def module_name(path: str) -> str:
    """`kernel/drivers/usb/host/xhci-pci.ko` -> `xhci_pci` (the name modprobe and lsmod use)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def module_closure(modules_dep: str, wanted: Sequence[str]) -> list[str]:
    """The module files (paths relative to lib/modules/RELEASE) for `wanted` and all they need.

    Raises ImageBuildError naming every module the kernel does not have as a module.
    """
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in modules_dep.splitlines():
        path, sep, rest = line.partition(":")
        if sep:
            deps[module_name(path)] = (path, rest.split())
    missing = [m for m in wanted if module_name(m) not in deps]
    if missing:
        raise ImageBuildError(f"the kernel has no module(s) {', '.join(missing)}")
    files: list[str] = []
    for name in wanted:
        path, needs = deps[module_name(name)]
        for item in [*needs, path]:
            if item not in files:
                files.append(item)
    return sorted(files)


def newc_archive(root: Path) -> bytes:
    """A cpio archive in the kernel's initramfs format ("newc") of the tree under `root`."""
    out = bytearray()
    entries = sorted(p for p in root.rglob("*"))
    for inode, path in enumerate(entries, start=1):
        st = path.lstat()
        name = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(st.st_mode):
            data = path.read_bytes()
        else:
            data = b""
        out += _newc_entry(name, st.st_mode, data, inode=inode)
    out += _newc_entry("TRAILER!!!", 0, b"", inode=0)
    return bytes(out)


def _newc_entry(name: str, mode: int, data: bytes, *, inode: int) -> bytes:
    encoded = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(mode) else 1
    fields = (inode, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    head = header + encoded
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


# ---- the build ------------------------------------------------------------------------------


def resolve_inputs(
    *, runner: Runner, modules: Sequence[str], init_script: str
) -> ImageInputs:
    """Ask apt and dpkg which kernel package and busybox version the image would use."""
    depends = runner(["apt-cache", "depends", META_PACKAGE], None)
    kernel_package = parse_kernel_package(depends)
    if kernel_package is None:
        raise ImageBuildError(
            f"apt knows no package {META_PACKAGE} (or what it depends on): run `apt-get update`"
        )
    version = parse_candidate(runner(["apt-cache", "policy", kernel_package], None))
    if version is None:
        raise ImageBuildError(f"apt has no installable version of {kernel_package}: "
                              "run `apt-get update`")
    return ImageInputs(
        kernel_package=kernel_package,
        kernel_version=version,
        busybox_version=_installed_version(BUSYBOX_PACKAGE, runner),
        modules=tuple(modules),
        init_script=init_script,
    )


def _installed_version(package: str, runner: Runner) -> str:
    try:
        out = runner(["dpkg-query", "-W", "-f", "${Status}\t${Version}", package], None)
    except CommandFailed:
        raise MissingDebianPackage(package, "not installed") from None
    status, _, version = out.partition("\t")
    if not status.endswith(" installed"):
        raise MissingDebianPackage(package, "not installed")
    return version


def build_guest_image(
    *,
    cache_dir: Path | None = None,
    modules: Sequence[str] = DEFAULT_MODULES,
    init_script: str | None = None,
    progress: Progress | None = None,
    runner: Runner = run_command,
) -> GuestImage:
    """The guest image for these inputs: from the cache, or built now (downloads the kernel once).

    Blocks while another process builds into the same cache. ImageBuildError says what went wrong
    and which `apt-get install` fixes a missing package.
    """
    report = progress or _log.info
    cache = (cache_dir or default_cache_dir()).expanduser()
    script = init_script if init_script is not None else default_init_script()
    _require_tool("depmod", runner)
    inputs = resolve_inputs(runner=runner, modules=modules, init_script=script)
    key = inputs.key()
    cached = _load(cache / key)
    if cached is not None:
        report(f"guest image: using cached {cached.directory}")
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        cached = _load(cache / key)
        if cached is not None:
            report(f"guest image: using {cached.directory} (built by another process)")
            return cached
        for stale in cache.glob(".build-*"):  # left by a build that was killed; none runs now
            shutil.rmtree(stale, ignore_errors=True)
        report(f"guest image: building {key} ({inputs.kernel_package} {inputs.kernel_version})")
        return _build(inputs, cache, report=report, runner=runner)


def _require_tool(tool: str, runner: Runner) -> None:
    with suppress(CommandFailed):  # a tool that runs at all exists; a missing one raises
        runner([tool, "--version"], None)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(directory: Path) -> GuestImage | None:
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    return GuestImage(
        directory=directory,
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        kernel_release=str(data["kernel_release"]),
        key=directory.name,
    )


def _build(inputs: ImageInputs, cache: Path, *, report: Progress, runner: Runner) -> GuestImage:
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        deb = _download_kernel(inputs, cache / "debs", report=report, runner=runner)
        report(f"guest image: unpacking {deb.name}")
        kernel_root = work / "kernel"
        runner(["dpkg", "-x", str(deb), str(kernel_root)], None)
        release = _kernel_release(kernel_root)
        runner(["depmod", "-b", str(kernel_root), release], None)
        modules_dir = kernel_root / "lib" / "modules" / release
        files = module_closure((modules_dir / "modules.dep").read_text(), inputs.modules)
        report(f"guest image: {len(files)} kernel modules for {', '.join(inputs.modules)}")
        tree = work / "initramfs"
        _fill_tree(tree, inputs, modules_dir, files, release)
        runner(["depmod", "-b", str(tree), release], None)
        report("guest image: packing the initramfs")
        out = work / "out"
        out.mkdir()
        shutil.copyfile(kernel_root / "boot" / f"vmlinuz-{release}", out / "vmlinuz")
        (out / "initrd.img").write_bytes(gzip.compress(newc_archive(tree), compresslevel=6))
        manifest = {"kernel_release": release, **asdict(inputs)}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        final = cache / inputs.key()
        out.rename(final)
        report(f"guest image: ready in {final}")
        image = _load(final)
        assert image is not None
        return image
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download_kernel(inputs: ImageInputs, debs: Path, *, report: Progress, runner: Runner) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    for deb in debs.glob(f"{inputs.kernel_package}_*.deb"):
        version = runner(["dpkg-deb", "-f", str(deb), "Version"], None).strip()
        if version == inputs.kernel_version:
            return deb
    report(f"guest image: downloading {inputs.kernel_package} {inputs.kernel_version} "
           "(about 70 MB, once)")
    runner(["apt-get", "download", "-q", f"{inputs.kernel_package}={inputs.kernel_version}"], debs)
    fresh: Path | None = None
    for deb in debs.glob("linux-image-*.deb"):
        version = runner(["dpkg-deb", "-f", str(deb), "Version"], None).strip()
        if deb.name.startswith(f"{inputs.kernel_package}_") and version == inputs.kernel_version:
            fresh = deb
        else:
            deb.unlink()  # an older kernel: keep only the one in use
    if fresh is None:
        raise ImageBuildError(f"apt-get download {inputs.kernel_package} produced no .deb")
    return fresh


def _kernel_release(kernel_root: Path) -> str:
    releases = sorted(p.name for p in (kernel_root / "lib" / "modules").iterdir() if p.is_dir())
    if len(releases) != 1:
        raise ImageBuildError(f"expected one kernel in the package, found {releases}")
    return releases[0]


def _fill_tree(
    tree: Path, inputs: ImageInputs, modules_dir: Path, files: list[str], release: str
) -> None:
    for name in ("bin", "dev", "etc", "proc", "sys", "tmp", "run", "host"):
        (tree / name).mkdir(parents=True, exist_ok=True)
    if not BUSYBOX_PATH.is_file():
        raise MissingDebianPackage(BUSYBOX_PACKAGE, f"{BUSYBOX_PATH} is missing")
    shutil.copyfile(BUSYBOX_PATH, tree / "bin" / "busybox")
    (tree / "bin" / "busybox").chmod(0o755)
    (tree / "init").write_text(inputs.init_script)
    (tree / "init").chmod(0o755)
    (tree / "etc" / "kvu-modules").write_text("\n".join(inputs.modules) + "\n")
    target = tree / "lib" / "modules" / release
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(modules_dir / rel, target / rel)
    for meta in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (modules_dir / meta).is_file():
            shutil.copyfile(modules_dir / meta, target / meta)
