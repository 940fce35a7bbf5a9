"""Every object of each overlay is accepted by the API server (kubectl apply --dry-run=server
against the API emulator); installing twice changes nothing; uninstalling removes everything; and
the OpenShift install script fills in the per-cluster settings and keeps its secrets on upgrade."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import Emulator
from tests.deploy.support import (
    DEPLOY,
    KUBECTL,
    NAMESPACE,
    Obj,
    applied_lines,
    find,
    of_kind,
    render,
)
from tests.polling import wait_until

pytestmark = pytest.mark.kubectl


def _resource(obj: Obj) -> str:
    """How kubectl names an object in its output (`deployment.apps/name`)."""
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower()
    return f"{kind}.{group}/{obj['metadata']['name']}" if group else \
        f"{kind}/{obj['metadata']['name']}"


def _versions(emulator: Emulator, objects: list[Obj]) -> dict[str, str]:
    """Each object's resourceVersion, as stored."""
    listed = json.loads(emulator.kubectl.run("get", "-f", "-", "-o", "json",
                                             input=yaml.safe_dump_all(objects)).stdout)
    return {_resource(o): o["metadata"]["resourceVersion"] for o in listed["items"]}


def _install_prerequisites(emulator: Emulator, objects: list[Obj]) -> None:
    """What must exist before a dry run can admit the rest: the namespace and the CRDs (a dry
    run persists nothing, so a real server needs them first too)."""
    emulator.kubectl.apply(of_kind(objects, "Namespace"))
    emulator.kubectl.establish(of_kind(objects, "CustomResourceDefinition"))


@pytest.mark.parametrize("overlay", ["kubernetes", "openshift"])
def test_every_object_applies_with_server_dry_run(emulator: Emulator, overlay: str) -> None:
    objects = render(overlay)
    _install_prerequisites(emulator, objects)
    done = emulator.kubectl.apply(objects, "--dry-run=server")
    outcomes = dict(applied_lines(done.stdout))
    assert sorted(outcomes) == sorted(_resource(o) for o in objects), done.stdout
    for resource, outcome in outcomes.items():
        assert outcome.endswith("(server dry run)"), (resource, outcome)
    assert "Warning" not in done.stderr, done.stderr


def test_dry_run_rejects_a_misspelt_field(emulator: Emulator) -> None:
    """The dry run checks the objects, so the test above can fail: a typo is refused."""
    objects = render("openshift")
    _install_prerequisites(emulator, objects)
    scc = find(objects, "SecurityContextConstraints", "kubevirt-usb-agent")
    scc["allowHostNetwerk"] = False
    done = emulator.kubectl.run("apply", "--dry-run=server", "-f", "-",
                                input=yaml.safe_dump(scc), check=False)
    assert done.returncode != 0
    assert 'unknown field "allowHostNetwerk"' in done.stderr


def test_installing_twice_changes_nothing_and_uninstall_removes_everything(
        fresh_emulator: Emulator) -> None:
    kubectl = fresh_emulator.kubectl
    overlay = str(DEPLOY / "kubernetes")
    objects = render("kubernetes")
    first = kubectl.run("apply", "-k", overlay)
    assert {r for r, _ in applied_lines(first.stdout)} == {_resource(o) for o in objects}

    before = _versions(fresh_emulator, objects)
    again = kubectl.run("apply", "-k", overlay)
    # kubectl always sends a PodDisruptionBudget's selector (its patch strategy is "replace"), so
    # it reports those "configured" even when nothing changes; the server changes nothing.
    reported = [line for line in again.stdout.splitlines()
                if not line.endswith(" unchanged")
                and not line.startswith("poddisruptionbudget.policy/")]
    assert reported == []
    assert _versions(fresh_emulator, objects) == before

    daemonset = json.loads(kubectl.run("get", "daemonset", "kubevirt-usb-agent", "-n",
                                       NAMESPACE, "-o", "json").stdout)
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == "kubevirt-usb-agent"

    # As docs/install.md says: deleting the namespace takes its objects along, so the
    # later deletes of those may find them gone already.
    kubectl.run("delete", "-k", overlay, "--ignore-not-found", "--wait=false")
    for kind in ("clusterrole", "clusterrolebinding", "crd"):
        names = kubectl.run("get", kind, "-o", "name").stdout
        assert "kubevirt-usb" not in names, names

    def namespace_gone() -> bool:
        got = kubectl.run("get", "namespace", NAMESPACE, check=False)
        return got.returncode != 0 and "NotFound" in got.stderr

    wait_until(namespace_gone, what="the kubevirt-usb namespace to be deleted")


def _run_install(emulator: Emulator, tmp_path: Path, domain: str) -> str:
    """deploy/openshift/install.sh with kubectl standing in for oc."""
    done = subprocess.run(
        ["sh", str(DEPLOY / "openshift" / "install.sh")], capture_output=True, text=True,
        timeout=300, check=False,
        env={**os.environ, "OC": KUBECTL, "KUBECONFIG": str(emulator.kubectl.kubeconfig),
             "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, f"install.sh failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.rstrip().endswith(f"https://kubevirt-usb.{domain}"), done.stdout
    return done.stdout


def test_openshift_install_script_fills_in_the_cluster_and_keeps_its_secrets(
        fresh_emulator: Emulator, tmp_path: Path) -> None:
    emulator = fresh_emulator
    kubectl = emulator.kubectl
    domain = "apps.ocp1.lab.example"
    kubectl.apply([{"apiVersion": "config.openshift.io/v1", "kind": "Ingress",
                    "metadata": {"name": "cluster"}, "spec": {"domain": domain}}])

    _run_install(emulator, tmp_path, domain)

    def get(kind: str, name: str, namespace: str = "") -> Obj:
        scope = ["-n", namespace] if namespace else []
        found: Obj = json.loads(kubectl.run("get", kind, name, *scope, "-o", "json").stdout)
        return found

    route = get("routes.route.openshift.io", "kubevirt-usb-web", NAMESPACE)
    assert route["spec"]["host"] == f"kubevirt-usb.{domain}"
    link = get("consolelinks.console.openshift.io", "kubevirt-usb")
    assert link["spec"]["href"] == f"https://kubevirt-usb.{domain}"
    client = get("oauthclients.oauth.openshift.io", "kubevirt-usb-web")
    assert client["redirectURIs"] == [f"https://kubevirt-usb.{domain}"]
    secret = get("secret", "kubevirt-usb-web-oauth", NAMESPACE)
    client_secret = base64.b64decode(secret["data"]["client-secret"]).decode()
    cookie_secret = base64.b64decode(secret["data"]["cookie-secret"])
    assert client["secret"] == client_secret
    assert len(client_secret) >= 32
    assert len(base64.b64decode(cookie_secret)) == 24  # an AES key, as oauth-proxy needs

    output = _run_install(emulator, tmp_path, domain)  # an upgrade: same secrets, no changes
    assert get("secret", "kubevirt-usb-web-oauth", NAMESPACE)["data"] == secret["data"]
    assert get("oauthclients.oauth.openshift.io", "kubevirt-usb-web")["secret"] == client_secret
    assert "deployment.apps/kubevirt-usb-web unchanged" in output
    assert list(tmp_path.iterdir()) == []  # its work directory (with the secret) is removed


def test_deleting_the_install_namespace_with_attachments_leaves_nothing_stuck(
        fresh_emulator: Emulator) -> None:
    """As docs/install.md says: the install namespace holds nothing with a finalizer, so it goes
    away cleanly; the users' attachments (and their finalizers) stay for the next install."""
    kubectl = fresh_emulator.kubectl
    kubectl.run("apply", "-k", str(DEPLOY / "kubernetes"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s",
                "crd/usbattachments.usb.kubevirt-usb.io")
    kubectl.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}])
    kubectl.apply([{
        "apiVersion": "usb.kubevirt-usb.io/v1alpha1", "kind": "USBAttachment",
        "metadata": {"name": "stick", "namespace": "lab",
                     "finalizers": ["usb.kubevirt-usb.io/unbind"]},
        "spec": {"vm": "vm1", "device": {"serial": "AAA1"}}}])

    kubectl.run("delete", "namespace", NAMESPACE, "--wait=false")

    def namespace_gone() -> bool:
        return kubectl.run("get", "namespace", NAMESPACE, check=False).returncode != 0

    wait_until(namespace_gone, what="the kubevirt-usb namespace to be deleted")
    attachment = json.loads(kubectl.run("get", "usbattachments.usb.kubevirt-usb.io", "stick",
                                        "-n", "lab", "-o", "json").stdout)
    assert "deletionTimestamp" not in attachment["metadata"]
    assert attachment["metadata"]["finalizers"] == ["usb.kubevirt-usb.io/unbind"]

    again = kubectl.run("apply", "-k", str(DEPLOY / "kubernetes"))  # re-install picks it up
    assert "namespace/kubevirt-usb created" in again.stdout
