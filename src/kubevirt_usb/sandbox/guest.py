"""A QEMU guest of the sandbox (node or VM): its process, console log, QMP and command channel.

Commands reach the guest's busybox shell over a virtio-serial port (`kvu.exec`, see guest_init.sh):
the host sends `X <id> <base64 script>` lines and gets back one frame per command,
`@@KVU BEGIN <id>`, the output as base64 lines, `@@KVU END <id> <exit code>`. The guest runs
commands concurrently and a single writer sends whole frames, so any number of callers may use
`exec()` at once and binary output arrives intact. A command that outlives its timeout is killed
with its whole process group (`K <id>`).

Software emulation only (`-accel tcg`): KVM hangs on these machines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import itertools
import secrets
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from kubevirt_usb.sandbox.guest_image import GuestImage
from kubevirt_usb.sandbox.qmp import QMPClient, QMPConnectionError, QMPError

QEMU_BINARY = "qemu-system-x86_64"
BOOT_TIMEOUT = 180.0
_SOCKET_PATH_MAX = 107
_BEGIN = b"@@KVU BEGIN "
_END = b"@@KVU END "


class GuestError(RuntimeError):
    """A guest failed: it did not boot, died, or its command channel broke."""


class GuestBootError(GuestError):
    """A guest did not come up; the message ends with the tail of its console log."""


class GuestCommandError(GuestError):
    """A command in the guest exited non-zero where success was required."""


class GuestTimeoutError(GuestError, TimeoutError):
    """A command in the guest, or a condition, did not finish in time."""


@dataclass(frozen=True)
class ExecResult:
    """What a command in the guest did: its exit status and its output (stdout and stderr)."""

    exit_code: int
    output: str
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    def check(self, what: str = "command") -> ExecResult:
        """This result, or GuestCommandError with the exit code and the output's tail."""
        if self.exit_code != 0:
            tail = "\n".join(self.output.splitlines()[-15:])
            raise GuestCommandError(f"{what} exited {self.exit_code}:\n{tail}")
        return self


@dataclass(frozen=True)
class BackgroundProcess:
    """A long-running process started in a guest: its process (group) id and its log file."""

    pid: int
    log_path: str


@dataclass(frozen=True)
class Frame:
    """One command's answer on the channel."""

    request_id: str
    exit_code: int
    output: bytes


class FrameParser:
    """Turns the channel's lines back into frames; lines outside a frame are ignored."""

    def __init__(self) -> None:
        self._current: str | None = None
        self._chunks: list[bytes] = []

    def feed(self, line: bytes) -> Frame | None:
        """Take one line; the finished frame when this line ends one."""
        line = line.rstrip(b"\r\n")
        if line.startswith(_BEGIN):
            self._current = line[len(_BEGIN) :].decode(errors="replace").strip()
            self._chunks = []
            return None
        if line.startswith(_END):
            fields = line[len(_END) :].decode(errors="replace").split()
            if self._current is None or len(fields) != 2 or fields[0] != self._current:
                self._current = None
                return None
            self._current = None
            payload = base64.b64decode(b"".join(self._chunks))
            return Frame(request_id=fields[0], exit_code=int(fields[1]), output=payload)
        if self._current is not None:
            self._chunks.append(line)
        return None


def encode_request(request_id: str, command: str) -> bytes:
    """The channel line that runs `command` (a busybox sh script) as request `request_id`."""
    return b"X %s %s\n" % (request_id.encode(), base64.b64encode(command.encode()))


def encode_kill(request_id: str) -> bytes:
    """The channel line that kills request `request_id` and everything it started."""
    return b"K %s\n" % request_id.encode()


class ExecChannel:
    """The host end of a guest's command channel (a unix socket of a virtio-serial port)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._prefix = secrets.token_hex(3)
        self._counter = itertools.count(1)
        self._closed_reason: str | None = None
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: Path, *, within: float) -> ExecChannel:
        """Connect to the chardev socket, retrying for `within` seconds while QEMU creates it."""
        deadline = time.monotonic() + within
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(path))
                return cls(reader, writer)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    raise GuestError(f"no command channel socket at {path}") from None
                await asyncio.sleep(0.05)

    async def run(self, command: str, *, deadline: float) -> ExecResult:
        """Run `command` in the guest and wait for its frame until `deadline` (loop time)."""
        if self._closed_reason is not None:
            raise GuestError(f"command channel closed: {self._closed_reason}")
        request_id = f"{self._prefix}{next(self._counter)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(encode_request(request_id, command))
            await self._writer.drain()
            async with asyncio.timeout_at(deadline):
                frame = await future
        except TimeoutError:
            with contextlib.suppress(ConnectionError):
                self._writer.write(encode_kill(request_id))
            raise GuestTimeoutError(f"guest command timed out (killed): {command[:200]}") from None
        except ConnectionError as exc:
            raise GuestError(f"command channel broke: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
        return ExecResult(
            exit_code=frame.exit_code,
            output=frame.output.decode("utf-8", errors="replace"),
            raw=frame.output,
        )

    async def _read_loop(self) -> None:
        parser = FrameParser()
        reason = "the guest closed it"
        try:
            while line := await self._reader.readline():
                frame = parser.feed(line)
                if frame is None:
                    continue
                future = self._pending.get(frame.request_id)
                if future is not None and not future.done():
                    future.set_result(frame)
        except (ConnectionError, ValueError) as exc:
            reason = str(exc)
        finally:
            self._closed_reason = reason
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(GuestError(f"command channel closed: {reason}"))

    async def close(self) -> None:
        """Close the socket (the guest keeps running)."""
        self._closed_reason = self._closed_reason or "closed by the host"
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass(frozen=True)
class GuestPaths:
    """Where one guest's files live inside its run directory."""

    run_dir: Path

    @property
    def console_log(self) -> Path:
        """The guest's serial console (kernel and /init messages)."""
        return self.run_dir / "console.log"

    @property
    def qemu_log(self) -> Path:
        """QEMU's own stdout and stderr."""
        return self.run_dir / "qemu.log"

    @property
    def qmp_socket(self) -> Path:
        """QEMU's QMP socket."""
        return self.run_dir / "qmp.sock"

    @property
    def exec_socket(self) -> Path:
        """The command channel's socket."""
        return self.run_dir / "exec.sock"


def base_qemu_argv(
    *,
    image: GuestImage,
    paths: GuestPaths,
    memory_mib: int,
    kernel_args: Sequence[str],
    qemu_binary: str = QEMU_BINARY,
) -> list[str]:
    """QEMU's command line for a sandbox guest, before its devices (software emulation, q35)."""
    # no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can miss its
    # ticks and panic ("IO-APIC + timer doesn't work!") before the guest boots
    append = " ".join(["console=ttyS0", "panic=-1", "loglevel=5", "no_timer_check",
                       *kernel_args])
    return [
        qemu_binary,
        "-accel", "tcg",
        "-machine", "q35",
        "-m", str(memory_mib),
        "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", append,
        "-serial", f"file:{paths.console_log}",
        "-qmp", f"unix:{paths.qmp_socket},server=on,wait=off",
        "-device", "virtio-serial-pci,id=vser",
        "-chardev", f"socket,id=kvuexec,path={paths.exec_socket},server=on,wait=off",
        "-device", "virtserialport,chardev=kvuexec,name=kvu.exec",
    ]  # fmt: skip


def qemu_value(value: str) -> str:
    """A value for QEMU's `key=value,...` option syntax (commas doubled)."""
    return value.replace(",", ",,")


def socket_path_fits(path: Path) -> bool:
    """True when `path` is short enough for a unix socket (107 bytes)."""
    return len(str(path).encode()) <= _SOCKET_PATH_MAX


def check_socket_path(path: Path) -> None:
    """Unix socket paths are limited to 107 bytes: fail early with a clear message."""
    if not socket_path_fits(path):
        raise GuestError(f"socket path too long for a unix socket ({len(str(path))} > 107): {path}")


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.25, what: str
) -> None:
    """Poll `check` until it returns True; GuestTimeoutError naming `what` after `within` s."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() >= deadline:
            raise GuestTimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class UsbDevice:
    """A USB device as a guest's kernel sees it in /sys/bus/usb/devices (root hubs excluded)."""

    name: str  # sysfs name, e.g. "2-1" or "1-4.2"
    vendor_id: str
    product_id: str
    serial: str | None
    product: str | None
    manufacturer: str | None
    busnum: int
    devnum: int
    devpath: str
    speed: str

    @property
    def vid_pid(self) -> str:
        """`vendor:product` in lower-case hex, as lsusb prints it."""
        return f"{self.vendor_id}:{self.product_id}"


_USB_ATTRS = "idVendor idProduct serial product manufacturer busnum devnum devpath speed"
USB_LISTING_SCRIPT = f"""
for d in /sys/bus/usb/devices/*; do
  n=${{d##*/}}
  case "$n" in usb*|*:*) continue;; esac
  [ -f "$d/idVendor" ] || continue
  for a in {_USB_ATTRS}; do
    [ -f "$d/$a" ] && printf 'U\\t%s\\t%s\\t%s\\n' "$n" "$a" "$(cat "$d/$a" 2>/dev/null)"
  done
done
"""
"""A guest shell script printing `U<TAB>name<TAB>attribute<TAB>value` per USB device attribute."""


def parse_usb_listing(text: str) -> list[UsbDevice]:
    """The USB devices in the output of USB_LISTING_SCRIPT, sorted by sysfs name."""
    attrs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0] == "U":
            attrs.setdefault(parts[1], {})[parts[2]] = parts[3].strip()
    devices = []
    for name, a in sorted(attrs.items()):
        if "idVendor" not in a or "idProduct" not in a:
            continue
        devices.append(
            UsbDevice(
                name=name,
                vendor_id=a["idVendor"],
                product_id=a["idProduct"],
                serial=a.get("serial"),
                product=a.get("product"),
                manufacturer=a.get("manufacturer"),
                busnum=int(a.get("busnum", "0") or 0),
                devnum=int(a.get("devnum", "0") or 0),
                devpath=a.get("devpath", ""),
                speed=a.get("speed", ""),
            )
        )
    return devices


def _die_with_parent() -> None:
    """In the QEMU child before exec: get SIGKILL when the Python process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Guest:
    """One running QEMU guest. Subclasses say which devices and kernel switches it has.

    `start()` boots it and returns once the command channel answers (never a fixed sleep);
    `stop()` ends QEMU and removes the run directory; `restart()` reboots it in the same run
    directory. A guest that does not come up is cleaned up like `stop()` and raises
    GuestBootError with the tail of its console log.
    """

    def __init__(
        self,
        *,
        name: str,
        image: GuestImage,
        memory_mib: int,
        work_dir: Path | None = None,
        qemu_binary: str = QEMU_BINARY,
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> None:
        self.name = name
        self.image = image
        self.memory_mib = memory_mib
        self._work_dir = work_dir
        self._qemu_binary = qemu_binary
        self._boot_timeout = boot_timeout
        self._run_dir: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._qmp: QMPClient | None = None
        self._channel: ExecChannel | None = None
        self.boot_seconds: float | None = None

    # ---- what subclasses provide -------------------------------------------------------------

    def _prepare(self, run_dir: Path) -> tuple[list[str], list[str]]:
        """Create per-run files; return (extra QEMU arguments, extra kernel arguments)."""
        return [], []

    async def _until_ready(self) -> None:
        """Wait (within the boot timeout) until the guest is fully usable; the channel works."""

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """This guest's directory of sockets, logs and disk images (exists while it runs)."""
        if self._run_dir is None:
            raise GuestError(f"guest {self.name} has not been started")
        return self._run_dir

    @property
    def paths(self) -> GuestPaths:
        """The guest's log and socket paths."""
        return GuestPaths(self.run_dir)

    @property
    def qmp(self) -> QMPClient:
        """The guest's QMP session."""
        if self._qmp is None:
            raise GuestError(f"guest {self.name} is not running")
        return self._qmp

    @property
    def running(self) -> bool:
        """True while QEMU runs."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Boot the guest; returns when its command channel answers."""
        if self.running:
            return
        if self._run_dir is None:
            prefix = f"kvu-{self.name[:20]}-"
            self._run_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=self._work_dir))
        started = time.monotonic()
        try:
            await self._launch()
        except BaseException as exc:
            if isinstance(exc, GuestBootError | asyncio.CancelledError):
                await self.stop()  # nothing left behind: QEMU, sockets, run directory
                raise
            error = self._boot_error(str(exc))
            await self.stop()
            raise error from exc
        self.boot_seconds = time.monotonic() - started

    async def _launch(self) -> None:
        paths = self.paths
        for stale in (paths.qmp_socket, paths.exec_socket):
            stale.unlink(missing_ok=True)
            check_socket_path(stale)
        extra_args, kernel_args = self._prepare(self.run_dir)
        argv = base_qemu_argv(
            image=self.image,
            paths=paths,
            memory_mib=self.memory_mib,
            kernel_args=kernel_args,
            qemu_binary=self._qemu_binary,
        ) + extra_args
        with paths.qemu_log.open("ab") as log:
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=_die_with_parent,
                )
            except FileNotFoundError:
                raise GuestError(
                    f"{self._qemu_binary} not found: install it with "
                    "`apt-get install -y qemu-system-x86`"
                ) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._boot_timeout
        exited = asyncio.ensure_future(self._process.wait())
        ready = asyncio.ensure_future(self._connect(deadline))
        try:
            done, _ = await asyncio.wait(
                {exited, ready}, timeout=self._boot_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if ready in done:
                ready.result()
                return
            if exited in done:
                raise self._boot_error(f"QEMU exited with status {exited.result()} during boot")
            raise self._boot_error(f"not ready after {self._boot_timeout:.0f}s")
        finally:
            for task in (exited, ready):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _connect(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        self._qmp = await QMPClient.connect(self.paths.qmp_socket, within=30.0)
        self._channel = await ExecChannel.connect(
            self.paths.exec_socket, within=max(deadline - loop.time(), 1.0)
        )
        (await self._channel.run("true", deadline=deadline)).check("the guest's first command")
        async with asyncio.timeout_at(deadline):
            await self._until_ready()

    def _boot_error(self, reason: str) -> GuestBootError:
        console = tail(self.paths.console_log) if self._run_dir else ""
        qemu = tail(self.paths.qemu_log, 10) if self._run_dir else ""
        parts = [f"guest {self.name} did not boot: {reason}"]
        if qemu:
            parts.append(f"--- QEMU output ---\n{qemu}")
        parts.append(f"--- console (last lines) ---\n{console or '(empty)'}")
        return GuestBootError("\n".join(parts))

    async def stop(self) -> None:
        """Stop QEMU and remove the run directory (sockets, logs, disk images)."""
        await self._halt()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    async def restart(self) -> None:
        """Power the guest off and boot it again in the same run directory (fresh sockets)."""
        await self._halt()
        await self.start()

    async def _halt(self) -> None:
        process, self._process = self._process, None
        qmp, self._qmp = self._qmp, None
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        if qmp is not None and process is not None and process.returncode is None:
            with contextlib.suppress(QMPError, QMPConnectionError, TimeoutError, OSError):
                async with asyncio.timeout(5):
                    await qmp.execute("quit")
        if qmp is not None:
            await qmp.close()
        if process is not None:
            await _reap(process)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- commands ---------------------------------------------------------------------------

    async def exec(self, cmd: str, *, timeout: float) -> ExecResult:
        """Run `cmd` with the guest's busybox sh; its exit status and output.

        GuestTimeoutError (the command and its children are killed) after `timeout` seconds.
        """
        if self._channel is None or not self.running:
            raise GuestError(f"guest {self.name} is not running")
        deadline = asyncio.get_running_loop().time() + timeout
        return await self._channel.run(cmd, deadline=deadline)

    async def start_background(self, cmd: str, *, log_path: str) -> BackgroundProcess:
        """Start `cmd` detached in its own session, output to `log_path` (a path in the guest)."""
        script = (
            f"setsid sh -c {shlex.quote(cmd)} </dev/null >{shlex.quote(log_path)} 2>&1 &\n"
            "echo $!"
        )
        result = (await self.exec(script, timeout=30)).check("starting a background command")
        return BackgroundProcess(pid=int(result.output.split()[-1]), log_path=log_path)

    async def signal(self, process: BackgroundProcess, *, signal_name: str = "TERM") -> None:
        """Send a signal to a background process and everything it started."""
        await self.exec(f"kill -{signal_name} -{process.pid} 2>/dev/null", timeout=30)

    async def usb_devices(self) -> list[UsbDevice]:
        """The USB devices the guest's kernel sees now (root hubs excluded)."""
        result = (await self.exec(USB_LISTING_SCRIPT, timeout=60)).check("listing USB devices")
        return parse_usb_listing(result.output)

    def console_tail(self, lines: int = 40) -> str:
        """The last lines of the guest's console log."""
        return tail(self.paths.console_log, lines)


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Wait for QEMU to exit: it was asked to quit; then SIGTERM; then SIGKILL."""
    for action in (None, process.terminate, process.kill):
        if process.returncode is not None:
            return
        if action is not None:
            with contextlib.suppress(ProcessLookupError):
                action()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await process.wait()
