"""The real kubectl binary against the cluster: apply a CRD then a CR, get with printer columns,
patch, delete, get -w, api-resources, auth can-i, and the CRD-and-CR-in-one-file error."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest
import yaml

from tests.contract.conftest import Cluster
from tests.contract.support import ContractCRD, crd_manifest, new_test_crd

pytestmark = pytest.mark.kubectl

if shutil.which("kubectl") is None:  # pragma: no cover - the dev image has it
    pytest.fail("kubectl is not installed (/usr/bin/kubectl is part of the dev image)",
                pytrace=False)


@pytest.fixture
def fresh_crd(cluster: Cluster) -> Iterator[ContractCRD]:
    """A CRD this test applies itself (and removes afterwards)."""
    crd = new_test_crd(kind="Sprocket", plural="sprockets", namespaced=True)
    yield crd
    cluster.kubectl("delete", "crd", crd.name, "--ignore-not-found", "--wait=false")


def _documents(*objects: dict[str, object]) -> str:
    return yaml.safe_dump_all(objects)


def test_apply_crd_then_custom_resource_and_get_columns(cluster: Cluster, namespace: str,
                                                        fresh_crd: ContractCRD) -> None:
    applied = cluster.kubectl("apply", "-f", "-", input=_documents(crd_manifest(fresh_crd)))
    assert f"customresourcedefinition.apiextensions.k8s.io/{fresh_crd.name} created" in \
        applied.stdout
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{fresh_crd.name}",
                    "--timeout=60s")
    cr = fresh_crd.obj("first", namespace=namespace, spec={"color": "green", "size": 3})
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_documents(cr))
    assert f"sprocket.{fresh_crd.group}/first created" in created.stdout
    again = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_documents(cr))
    assert f"sprocket.{fresh_crd.group}/first unchanged" in again.stdout

    table = cluster.kubectl("get", fresh_crd.short_name, "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "COLOR", "SIZE", "PHASE", "AGE"]
    assert table[1].split()[:3] == ["first", "green", "3"]

    by_plural = cluster.kubectl("get", f"{fresh_crd.plural}.{fresh_crd.group}", "first",
                                "-n", namespace, "-o", "json")
    assert json.loads(by_plural.stdout)["spec"] == {"color": "green", "size": 3}


def test_crd_and_custom_resource_in_one_file(cluster: Cluster, namespace: str,
                                             fresh_crd: ContractCRD) -> None:
    """As on a real server: the CRD is created, the CR fails discovery in the same run."""
    both = _documents(crd_manifest(fresh_crd), fresh_crd.obj("early", namespace=namespace))
    done = cluster.kubectl("apply", "-f", "-", input=both, check=False)
    assert done.returncode != 0
    assert f"customresourcedefinition.apiextensions.k8s.io/{fresh_crd.name} created" in \
        done.stdout
    assert f'no matches for kind "Sprocket" in version "{fresh_crd.api_version}"' in done.stderr
    assert "ensure CRDs are installed first" in done.stderr
    assert "proto:" not in done.stderr
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{fresh_crd.name}",
                    "--timeout=60s")
    retried = cluster.kubectl("apply", "-f", "-", input=both)
    assert f"sprocket.{fresh_crd.group}/early created" in retried.stdout


def test_patch_and_delete(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=_documents(widget_crd.obj("p", namespace=namespace)))
    resource = f"{widget_crd.plural}.{widget_crd.group}/p"
    merged = cluster.kubectl("patch", resource, "-n", namespace, "--type=merge",
                             "-p", '{"spec":{"size":9}}')
    assert f"widget.{widget_crd.group}/p patched" in merged.stdout
    json_patched = cluster.kubectl("patch", resource, "-n", namespace, "--type=json", "-p",
                                   '[{"op":"replace","path":"/spec/color","value":"blue"}]')
    assert "patched" in json_patched.stdout
    status = cluster.kubectl("patch", resource, "-n", namespace, "--subresource=status",
                             "--type=merge", "-p", '{"status":{"phase":"Done"}}')
    assert "patched" in status.stdout
    got = json.loads(cluster.kubectl("get", resource, "-n", namespace, "-o", "json").stdout)
    assert got["spec"] == {"color": "blue", "size": 9}
    assert got["status"] == {"phase": "Done"}
    invalid = cluster.kubectl("patch", resource, "-n", namespace, "--type=merge",
                              "-p", '{"spec":{"color":"pink"}}', check=False)
    assert invalid.returncode != 0
    assert 'Unsupported value: "pink"' in invalid.stderr
    deleted = cluster.kubectl("delete", resource, "-n", namespace)
    assert f'widget.{widget_crd.group} "p" deleted' in deleted.stdout
    missing = cluster.kubectl("get", resource, "-n", namespace, check=False)
    assert missing.returncode != 0
    assert f'widgets.{widget_crd.group} "p" not found' in missing.stderr


def test_core_objects_with_kubectl(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "cm", "-n", namespace, "--from-literal=a=1")
    cluster.kubectl("label", "configmap", "cm", "-n", namespace, "tier=web")
    listed = cluster.kubectl("get", "cm", "-n", namespace, "-l", "tier=web", "-o", "name")
    assert listed.stdout.split() == ["configmap/cm"]
    cluster.kubectl("patch", "configmap", "cm", "-n", namespace, "-p", '{"data":{"b":"2"}}')
    got = json.loads(cluster.kubectl("get", "cm", "cm", "-n", namespace, "-o", "json").stdout)
    assert got["data"] == {"a": "1", "b": "2"}
    applied = cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-",
                              input=_documents({"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "ssa"},
                                                "data": {"k": "v"}}))
    assert "configmap/ssa serverside-applied" in applied.stdout
    assert cluster.kubectl("delete", "cm", "cm", "ssa", "-n", namespace).returncode == 0


def test_create_subcommands_write_protobuf(cluster: Cluster, namespace: str) -> None:
    """kubectl 1.33+ (the dispatcher's choice for a 1.36 server) sends the built-in kinds of its
    `create` subcommands as protobuf and asks for protobuf answers."""
    made = cluster.kubectl("-v=8", "create", "configmap", "pb", "-n", namespace,
                           "--from-literal=a=1", "--from-literal=on=off")
    assert "configmap/pb created" in made.stdout
    assert "Content-Type: application/vnd.kubernetes.protobuf" in made.stderr
    cluster.kubectl("create", "secret", "generic", "pb", "-n", namespace, "--from-literal=k=v")
    cluster.kubectl("create", "serviceaccount", "pb", "-n", namespace)
    cluster.kubectl("create", "role", "pb", "-n", namespace, "--verb=get",
                    "--resource=configmaps", "--resource-name=pb")
    cluster.kubectl("create", "rolebinding", "pb", "-n", namespace, "--role=pb",
                    f"--serviceaccount={namespace}:pb")
    token = cluster.kubectl("create", "token", "pb", "-n", namespace).stdout.strip()
    whoami = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", token=token).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:pb"
    allowed = cluster.kubectl("auth", "can-i", "get", "configmaps/pb", "-n", namespace,
                              token=token, check=False)
    assert (allowed.stdout.strip(), allowed.returncode) == ("yes", 0)

    def read(kind: str) -> dict[str, object]:
        got: dict[str, object] = json.loads(cluster.kubectl(
            "get", kind, "pb", "-n", namespace, "-o", "json").stdout)
        return got

    assert read("configmap")["data"] == {"a": "1", "on": "off"}
    assert read("secret")["data"] == {"k": "dg=="}
    assert read("role")["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                      "resourceNames": ["pb"], "verbs": ["get"]}]
    assert read("rolebinding")["subjects"] == [{"kind": "ServiceAccount", "name": "pb",
                                                "namespace": namespace}]
    again = cluster.kubectl("create", "configmap", "pb", "-n", namespace, check=False)
    assert again.returncode != 0
    assert 'configmaps "pb" already exists' in again.stderr


def _lines(process: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.put(line.rstrip("\n"))


def _expect_line(lines: queue.Queue[str], text: str, seen: list[str]) -> None:
    while not any(text in line for line in seen):
        try:
            seen.append(lines.get(timeout=30))
        except queue.Empty:
            raise AssertionError(f"kubectl get -w never printed {text!r}; got {seen}") from None


def test_get_watch(cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=_documents(widget_crd.obj("watched", namespace=namespace)))
    process = subprocess.Popen(
        ["kubectl", "get", widget_crd.short_name, "-n", namespace, "-w",
         "--output-watch-events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _expect_line(lines, "watched", seen)
        assert seen[0].split() == ["EVENT", "NAME", "COLOR", "SIZE", "PHASE", "AGE"]
        cluster.kubectl("patch", f"{widget_crd.plural}.{widget_crd.group}/watched", "-n",
                        namespace, "--type=merge", "-p", '{"spec":{"size":5}}')
        _expect_line(lines, "MODIFIED", seen)
        modified = next(line for line in seen if line.startswith("MODIFIED"))
        assert modified.split()[1:4] == ["watched", "red", "5"]
        cluster.kubectl("delete", f"{widget_crd.plural}.{widget_crd.group}/watched", "-n",
                        namespace)
        _expect_line(lines, "DELETED", seen)
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
        if process.stdout is not None:
            process.stdout.close()


def test_api_resources_and_explain_free_discovery(cluster: Cluster,
                                                  widget_crd: ContractCRD) -> None:
    listed = cluster.kubectl("api-resources", f"--api-group={widget_crd.group}")
    rows = listed.stdout.splitlines()
    assert rows[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert rows[1].split() == [widget_crd.plural, widget_crd.short_name, widget_crd.api_version,
                               "true", "Widget"]


def test_auth_can_i_with_a_service_account(cluster: Cluster, namespace: str) -> None:
    token = cluster.service_account_token(namespace=namespace, name="kubectl-user")
    cluster.kubectl("create", "role", "cm-reader", "-n", namespace, "--verb=get,list",
                    "--resource=configmaps")
    cluster.kubectl("create", "rolebinding", "cm-reader", "-n", namespace, "--role=cm-reader",
                    f"--serviceaccount={namespace}:kubectl-user")
    yes = cluster.kubectl("auth", "can-i", "list", "configmaps", "-n", namespace, token=token,
                          check=False)
    no = cluster.kubectl("auth", "can-i", "delete", "configmaps", "-n", namespace, token=token,
                         check=False)
    assert (yes.stdout.strip(), yes.returncode) == ("yes", 0)
    assert (no.stdout.strip(), no.returncode) == ("no", 1)
    forbidden = cluster.kubectl("get", "secrets", "-n", namespace, token=token, check=False)
    assert forbidden.returncode != 0
    assert (f'User "system:serviceaccount:{namespace}:kubectl-user" cannot list resource '
            f'"secrets" in API group "" in the namespace "{namespace}"') in forbidden.stderr


def test_delete_of_a_crd_with_kubectl(cluster: Cluster) -> None:
    crd = new_test_crd(kind="Ephemeral", plural="ephemerals", namespaced=False)
    cluster.kubectl("apply", "-f", "-", input=_documents(crd_manifest(crd)))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.name}", "--timeout=60s")
    cluster.kubectl("apply", "-f", "-", input=_documents(crd.obj("e1")))
    deleted = cluster.kubectl("delete", "crd", crd.name, "--timeout=60s")
    assert f'customresourcedefinition.apiextensions.k8s.io "{crd.name}" deleted' in \
        deleted.stdout
