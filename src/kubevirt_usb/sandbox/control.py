"""The running sandbox's control channel: a unix socket in its state directory that
`kubevirt-usb sandbox status|exec|plug|unplug|down` talk to, one JSON object per line each way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubevirt_usb.sandbox.cluster import Sandbox, SandboxError

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
STATE_NAME = "sandbox.json"


class NotRunning(SandboxError):
    pass


@dataclass(frozen=True)
class StatePaths:
    directory: Path

    @property
    def socket(self) -> Path:
        return self.directory / SOCKET_NAME

    @property
    def state(self) -> Path:
        return self.directory / STATE_NAME

    @property
    def log(self) -> Path:
        return self.directory / "sandbox.log"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"


def read_state(paths: StatePaths) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return None
    return data


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    """Serves the control socket for one running `Sandbox`."""

    def __init__(self, sandbox: Sandbox, paths: StatePaths, *, on_shutdown: Callable[[], None]
                 ) -> None:
        self.sandbox = sandbox
        self.paths = paths
        self.on_shutdown = on_shutdown
        self._server: asyncio.AbstractServer | None = None
        self._ops: dict[str, Handler] = {
            "status": self._status, "exec": self._exec, "plug": self._plug,
            "unplug": self._unplug, "restart-vm": self._restart_vm, "shutdown": self._shutdown,
        }

    async def start(self) -> None:
        self.paths.socket.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.paths.socket))
        self.paths.socket.chmod(0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        self.paths.socket.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await self._answer(line)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            handler = self._ops.get(str(request.get("op")))
            if handler is None:
                return {"ok": False, "error": f"unknown operation {request.get('op')!r}"}
            return {"ok": True, **await handler(request)}
        except SandboxError as exc:
            return {"ok": False, "error": str(exc)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        except Exception as exc:  # an operation's failure never takes the sandbox down
            log.exception("control operation failed")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    async def _status(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.sandbox.status()}

    async def _exec(self, request: dict[str, Any]) -> dict[str, Any]:
        vm = tuple(request["vm"].split("/", 1)) if request.get("vm") else None
        if vm is not None and len(vm) != 2:
            raise SandboxError(f"--vm {request['vm']!r}: expected NAMESPACE/NAME")
        result = await self.sandbox.exec(node=request.get("node"), vm=vm,
                                         command=str(request["command"]),
                                         timeout=float(request.get("timeout", 60)))
        raw = result.raw or result.output.encode()
        return {"exit_code": result.exit_code, "output": base64.b64encode(raw).decode()}

    async def _plug(self, request: dict[str, Any]) -> dict[str, Any]:
        port = await self.sandbox.plug(str(request["node"]), str(request["device"]),
                                       port=request.get("port"))
        return {"port": port}

    async def _unplug(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.sandbox.unplug(str(request["node"]), str(request["device"]))
        return {}

    async def _restart_vm(self, request: dict[str, Any]) -> dict[str, Any]:
        namespace, _, name = str(request["vm"]).partition("/")
        return {"vmi": await self.sandbox.restart_vm(namespace, name)}

    async def _shutdown(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.on_shutdown()
        return {}


async def call(paths: StatePaths, request: dict[str, Any], *, timeout: float = 120.0
               ) -> dict[str, Any]:
    """Send one request to the running sandbox; NotRunning when nothing answers."""
    try:
        async with asyncio.timeout(5):  # not wait_for: see kubevirt_usb.tasks
            reader, writer = await asyncio.open_unix_connection(str(paths.socket))
    except (OSError, TimeoutError) as exc:
        raise NotRunning(f"no sandbox is running in {paths.directory} (start one with "
                         "`kubevirt-usb sandbox up --detach`)") from exc
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(timeout):
            line = await reader.readline()
    finally:
        writer.close()
    if not line:
        raise SandboxError("the sandbox closed the control connection without answering")
    answer: dict[str, Any] = json.loads(line)
    if not answer.get("ok"):
        raise SandboxError(str(answer.get("error", "the sandbox refused the request")))
    return answer
