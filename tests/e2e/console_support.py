"""The real OpenShift console for the console e2e: its `bridge` backend serving the console's own
frontend off-cluster (user auth disabled, one bearer token per bridge) against the sandbox's API
server, with this project's plugin (and KubeVirt's, where one was built) served as static files.

The console cannot be installed by the project: name a build with

    KUBEVIRT_USB_TEST_CONSOLE=/path/to/console/bin/bridge

(an openshift/console checkout built with `build-backend.sh` and its frontend built; the frontend
is taken from `frontend/public/dist` beside `bin/`, or from KUBEVIRT_USB_TEST_CONSOLE_PUBLIC_DIR).
KubeVirt's own console plugin, which renders the VirtualMachine page in OpenShift Virtualization,
is loaded too when KUBEVIRT_USB_TEST_KUBEVIRT_PLUGIN names its built `dist` directory.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.polling import wait_until

CONSOLE_ENV = "KUBEVIRT_USB_TEST_CONSOLE"
PUBLIC_DIR_ENV = "KUBEVIRT_USB_TEST_CONSOLE_PUBLIC_DIR"
KUBEVIRT_PLUGIN_ENV = "KUBEVIRT_USB_TEST_KUBEVIRT_PLUGIN"
REASON = (f"no OpenShift console named: set {CONSOLE_ENV}=/path/to/console/bin/bridge (a built "
          "openshift/console checkout) to run the real-console e2e")
PLUGIN_DIST = Path(__file__).resolve().parents[2] / "console-plugin" / "dist"
PLUGIN_NAME = "kubevirt-usb"
KUBEVIRT_PLUGIN_NAME = "kubevirt-plugin"


@dataclass(frozen=True)
class ConsoleBuild:
    bridge: Path
    public_dir: Path
    kubevirt_plugin: Path | None


def console_build(env: Mapping[str, str]) -> ConsoleBuild | str | None:
    """The console build the environment names; None when it names none; a one-line problem
    when what it names is not there."""
    named = env.get(CONSOLE_ENV, "")
    if not named:
        return None
    bridge = Path(named)
    if not (bridge.is_file() and os.access(bridge, os.X_OK)):
        return f"{CONSOLE_ENV}={named}: no executable bridge binary there"
    public = Path(env.get(PUBLIC_DIR_ENV) or bridge.parent.parent / "frontend" / "public" / "dist")
    if not (public / "index.html").is_file():
        return (f"the console's frontend is not built at {public} (no index.html): build it or "
                f"set {PUBLIC_DIR_ENV}")
    kubevirt = env.get(KUBEVIRT_PLUGIN_ENV, "")
    if kubevirt and not (Path(kubevirt) / "plugin-manifest.json").is_file():
        return f"{KUBEVIRT_PLUGIN_ENV}={kubevirt}: no plugin-manifest.json there"
    return ConsoleBuild(bridge=bridge, public_dir=public,
                        kubevirt_plugin=Path(kubevirt) if kubevirt else None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_files(directory: Path) -> Iterator[str]:
    """`directory` served over HTTP on loopback (a plugin's built dist, as its nginx would)."""
    if not (directory / "plugin-manifest.json").is_file():
        raise AssertionError(f"no built plugin at {directory} (plugin-manifest.json missing): "
                             "build it first (make -C console-plugin or npm run build there)")
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="plugin-files")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass(frozen=True)
class RunningConsole:
    url: str
    log: Path


@contextlib.contextmanager
def bridge(build: ConsoleBuild, *, api_url: str, ca_file: Path, token: str,
           plugins: Mapping[str, str], log: Path) -> Iterator[RunningConsole]:
    """The console's bridge for one user (its bearer token), off-cluster against `api_url`,
    trusting `ca_file` (off-cluster mode has no CA flag; Go reads SSL_CERT_FILE)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(build.bridge), f"-listen={url}", f"-base-address={url}",
            f"-public-dir={build.public_dir}", "-user-auth=disabled", "-k8s-mode=off-cluster",
            f"-k8s-mode-off-cluster-endpoint={api_url}", f"-k8s-auth-bearer-token={token}",
            "-user-settings-location=localstorage"]
    if plugins:
        args.append("-plugins=" + ",".join(f"{n}={u}" for n, u in plugins.items()))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSL_CERT_FILE": str(ca_file),
           "HOME": os.environ.get("HOME", "/tmp")}
    with log.open("wb") as out:
        # the bridge reads pkg/graphql/schema.graphql relative to its working directory
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=build.bridge.parent.parent)
    try:
        wait_until(lambda: _healthy(url) or process.poll() is not None,
                   what=f"the console's bridge on {url}", timeout=60)
        if process.poll() is not None:
            raise AssertionError(f"the bridge exited ({process.returncode}): "
                                 f"{log.read_text(errors='replace')[-2000:]}")
        yield RunningConsole(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def bytes_shown(text: str) -> int:
    """The byte count a cell shows ("0 B", "16.0 MiB"), back in bytes (to the shown precision)."""
    number, _, unit = text.strip().partition(" ")
    scale = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
    return int(float(number) * scale)
