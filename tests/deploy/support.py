"""Helpers the deploy tests share: rendering the kustomize overlays, looking objects up, and
driving the real kubectl against the API emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("kubernetes", "openshift")
NAMESPACE = "kubevirt-usb"
PLATFORM_CRDS = Path(__file__).with_name("platform-crds.yaml")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

Obj = dict[str, Any]
T = TypeVar("T")


def kustomize(directory: Path) -> str:
    """`kubectl kustomize DIRECTORY` (the YAML stream), failing the test if it does not render."""
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


def documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(overlay: str) -> list[Obj]:
    """The objects one overlay (deploy/<overlay>) installs."""
    return documents(kustomize(DEPLOY / overlay))


def platform_crds() -> list[Obj]:
    """The test fixture CRDs for OpenShift's and prometheus-operator's kinds."""
    return documents(PLATFORM_CRDS.read_text())


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (str(obj["kind"]), str(meta.get("namespace", "")), str(meta["name"]))


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    return [o for o in objects if o["kind"] in kinds]


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def workloads(objects: list[Obj]) -> list[Obj]:
    return of_kind(objects, "Deployment", "DaemonSet")


def containers(workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]



@dataclass
class Kubectl:
    """The real kubectl binary, pointed at one cluster by a kubeconfig."""

    kubeconfig: Path

    def run(self, *args: str, input: str | None = None, check: bool = True,
            env: Mapping[str, str] | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})}
        done = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              env=environment, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def apply(self, objects: list[Obj], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", *extra, input=yaml.safe_dump_all(objects))

    def establish(self, crds: list[Obj]) -> None:
        """Create CRDs and wait until they are served."""
        self.apply(crds)
        names = [f"crd/{c['metadata']['name']}" for c in crds]
        self.run("wait", "--for=condition=Established", "--timeout=60s", *names)


def applied_lines(output: str) -> Iterator[tuple[str, str]]:
    """`kubectl apply` output as (resource/name, what happened) pairs."""
    for line in output.splitlines():
        resource, _, outcome = line.partition(" ")
        if resource and outcome:
            yield resource, outcome
