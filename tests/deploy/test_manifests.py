"""What the rendered manifests promise, read from `kubectl kustomize` output: they are valid
Kubernetes objects (the API's own JSON schemas, strict), the command lines are ones the program
accepts, and the security story holds (least privilege, no nodeName, only the agent privileged,
only the host paths it needs)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from kubevirt_usb.cli import cli
from tests.deploy.support import (
    DEPLOY,
    NAMESPACE,
    OVERLAYS,
    REPO,
    Obj,
    containers,
    documents,
    find,
    kustomize,
    of_kind,
    pod_spec,
    render,
    workloads,
)

# OpenShift 4.15 ships Kubernetes 1.28, 4.17 ships 1.30 (like this kubectl).
KUBERNETES_VERSIONS = ("1.28.0", "1.30.0")
PLATFORM_KINDS = {"Route", "ConsoleLink", "ConsolePlugin", "SecurityContextConstraints",
                  "OAuthClient", "ServiceMonitor"}
COMPONENTS = {"kubevirt-usb-agent": "agent", "kubevirt-usb-controller": "controller",
              "kubevirt-usb-web": "web"}
OPENSHIFT_COMPONENTS = {"kubevirt-usb-console-plugin": "plugin-serve"}
AGENT_HOST_PATHS = {"/dev/bus/usb": False, "/sys/bus/usb": True, "/sys/devices": True,
                    "/run/kubevirt-usb": False, "/proc": True}  # path: mounted read-only


def components(objects: list[Obj]) -> dict[str, str]:
    """The workloads an overlay runs (name: subcommand); OpenShift's also serves the console
    plugin."""
    openshift = bool(of_kind(objects, "Route"))
    return COMPONENTS | (OPENSHIFT_COMPONENTS if openshift else {})


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return render(str(request.param))


def schema_problems(obj: Obj, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}"]
    return []


# ---- valid objects --------------------------------------------------------------------------


def test_every_overlay_renders_every_component(objects: list[Obj]) -> None:
    assert {w["metadata"]["name"] for w in workloads(objects)} == set(components(objects))
    assert len(of_kind(objects, "CustomResourceDefinition")) == 3
    assert {o["metadata"].get("namespace", NAMESPACE) for o in objects} == {NAMESPACE}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_objects_match_the_kubernetes_schemas(objects: list[Obj],
                                                       version: str) -> None:
    built_in = [o for o in objects if o["kind"] not in PLATFORM_KINDS]
    assert [p for o in built_in for p in schema_problems(o, version)] == []


def test_schema_check_rejects_a_misspelt_field() -> None:
    """The check above can fail: a typo in a container is caught."""
    daemonset = find(render("kubernetes"), "DaemonSet", "kubevirt-usb-agent")
    pod_spec(daemonset)["containers"][0]["readOnlyRootFilesytem"] = True
    problems = schema_problems(daemonset, KUBERNETES_VERSIONS[-1])
    assert problems
    assert "readOnlyRootFilesytem" in problems[0]


def test_monitoring_overlay_for_prometheus_operator_renders() -> None:
    (monitor,) = documents(kustomize(DEPLOY / "kubernetes" / "monitoring"))
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["namespace"] == NAMESPACE


# ---- the command lines --------------------------------------------------------------------


def expand(arg: str, env: dict[str, str]) -> str:
    """A container argument as the kubelet expands it: $(VAR) from the container's env."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def command_lines(objects: list[Obj]) -> Iterator[tuple[str, list[str], list[str]]]:
    """(workload, args as the kubelet expands them, the container's mount paths)."""
    for workload in workloads(objects):
        for container in containers(workload):
            if container["image"].startswith("quay.io/kubevirt-usb/"):
                env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
                mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
                yield (workload["metadata"]["name"], [expand(a, env) for a in container["args"]],
                       mounts)


def here(arg: str, mounts: list[str], root: Path) -> str:
    """An argument naming a file in a mounted volume, pointed at a stand-in under `root` (the
    CLI checks that such files exist)."""
    option, equals, value = arg.partition("=")
    if not equals or not any(value.startswith(m + "/") for m in mounts):
        return arg
    stand_in = root / value.lstrip("/")
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.touch()
    return f"{option}={stand_in}"


def test_one_image_for_every_entry_point(objects: list[Obj]) -> None:
    images = {c["image"] for w in workloads(objects) for c in containers(w)
              if c["name"] != "oauth-proxy"}
    assert images == {"quay.io/kubevirt-usb/kubevirt-usb:0.1.0"}
    assert {name: args[0] for name, args, _ in command_lines(objects)} == components(objects)


def test_command_lines_are_ones_the_program_accepts(objects: list[Obj], tmp_path: Path) -> None:
    """Each manifest's args parse with the real `kubevirt-usb` CLI (nothing runs)."""
    group = click.Context(cli, info_name="kubevirt-usb")
    problems = []
    for workload, args, mounts in command_lines(objects):
        command = cli.get_command(group, args[0])
        if command is None:
            problems.append(f"{workload}: `kubevirt-usb {args[0]}` does not exist")
            continue
        try:
            command.make_context(args[0], [here(a, mounts, tmp_path) for a in args[1:]],
                                 parent=group)
        except click.UsageError as exc:
            problems.append(f"{workload}: `kubevirt-usb {' '.join(args)}`: "
                            f"{exc.format_message()}")
    assert problems == []


# ---- least privilege ------------------------------------------------------------------------


def rules(objects: list[Obj]) -> Iterator[tuple[str, dict[str, Any]]]:
    for role in of_kind(objects, "ClusterRole", "Role"):
        for rule in role.get("rules") or []:
            yield role["metadata"]["name"], rule


def test_no_binding_to_cluster_admin_or_any_built_in_role(objects: list[Obj]) -> None:
    ours = {r["metadata"]["name"] for r in of_kind(objects, "ClusterRole", "Role")}
    for binding in of_kind(objects, "ClusterRoleBinding", "RoleBinding"):
        assert binding["roleRef"]["name"] in ours, binding["metadata"]["name"]


def test_no_wildcards_secrets_or_escalation_rights(objects: list[Obj]) -> None:
    for name, rule in rules(objects):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), (name, rule)
        assert not {"secrets", "serviceaccounts/token", "nodes"} & set(
            rule.get("resources", [])), (name, rule)
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), (name, rule)
        if "pods" in rule.get("resources", []):
            # the agent's node-local path reads a VMI's virt-launcher pod: read-only, nothing else
            assert (name, rule["resources"], set(rule["verbs"])) == (
                "kubevirt-usb-agent", ["pods"], {"get", "list"}), (name, rule)


def test_each_component_has_its_own_service_account(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        assert pod_spec(workload)["serviceAccountName"] == workload["metadata"]["name"]


def test_web_ui_holds_no_rights_and_no_token(objects: list[Obj]) -> None:
    subjects = [s["name"] for b in of_kind(objects, "ClusterRoleBinding", "RoleBinding")
                for s in b["subjects"]]
    assert "kubevirt-usb-web" not in subjects
    account = find(objects, "ServiceAccount", "kubevirt-usb-web")
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec(find(objects, "Deployment", "kubevirt-usb-web"))
    assert spec["automountServiceAccountToken"] is False
    tokens = {v["name"] for v in spec["volumes"] if "projected" in v}
    (web,) = [c for c in spec["containers"] if c["name"] == "web"]
    assert not tokens & {m["name"] for m in web["volumeMounts"]}
    # Only OpenShift's oauth-proxy holds the (unbound) account's token, to read a public
    # ConfigMap; the web UI itself acts with its users' tokens alone.
    holders = {c["name"] for c in spec["containers"]
               if tokens & {m["name"] for m in c["volumeMounts"]}}
    assert holders <= {"oauth-proxy"}


def test_aggregated_user_roles_join_admin_edit_and_view(objects: list[Obj]) -> None:
    label = "rbac.authorization.k8s.io/aggregate-to-"
    joined = {r["metadata"]["name"]: [k[len(label):] for k in r["metadata"]["labels"]
                                      if k.startswith(label)]
              for r in of_kind(objects, "ClusterRole")}
    assert joined["kubevirt-usb-admin"] == ["admin"]
    assert joined["kubevirt-usb-edit"] == ["edit"]
    assert joined["kubevirt-usb-view"] == ["view"]


# ---- the pods -------------------------------------------------------------------------------


def test_nothing_is_pinned_with_node_name(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        assert "nodeName" not in pod_spec(workload)


def test_agent_runs_on_selected_nodes_with_tolerations(objects: list[Obj]) -> None:
    spec = pod_spec(find(objects, "DaemonSet", "kubevirt-usb-agent"))
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "usb.kubevirt-usb.io/agent",
                                         "operator": "NotIn", "values": ["false"]}]
    assert spec["tolerations"]


def test_every_container_has_probes_requests_and_limits(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert {"livenessProbe", "readinessProbe"} <= set(container), where
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}, where
            assert set(resources["limits"]) == {"cpu", "memory"}, where


def test_only_the_agent_is_privileged_and_the_rest_is_restricted(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        spec = pod_spec(workload)
        assert not any(spec.get(h) for h in ("hostNetwork", "hostPID", "hostIPC"))
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert not any(p.get("hostPort") for p in container.get("ports", []))
            if workload["kind"] == "DaemonSet":
                assert security["privileged"] is True
                continue
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert security.get("privileged") is not True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
    assert all("hostPath" not in v for w in workloads(objects) if w["kind"] == "Deployment"
               for v in pod_spec(w).get("volumes", []))


def test_agent_mounts_only_the_usb_devices_sysfs_and_its_lock_directory(
        objects: list[Obj]) -> None:
    spec = pod_spec(find(objects, "DaemonSet", "kubevirt-usb-agent"))
    host = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert set(host.values()) == set(AGENT_HOST_PATHS)
    (agent,) = spec["containers"]
    mounts = {host[m["name"]]: bool(m.get("readOnly")) for m in agent["volumeMounts"]
              if m["name"] in host}
    assert mounts == AGENT_HOST_PATHS
    assert "--sysfs-root=/host/sys" in agent["args"]


def test_controller_runs_two_replicas_and_keeps_one_through_disruptions(
        objects: list[Obj]) -> None:
    assert find(objects, "Deployment", "kubevirt-usb-controller")["spec"]["replicas"] == 2
    budget = find(objects, "PodDisruptionBudget", "kubevirt-usb-controller")
    assert budget["spec"]["maxUnavailable"] == 1


def test_network_policies_name_ports_that_exist(objects: list[Obj]) -> None:
    ports: dict[str, set[str]] = {}
    for workload in workloads(objects):
        component = workload["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/component"]
        ports[component] = {p["name"] for c in containers(workload)
                            for p in c.get("ports", [])}
    assert ports["web"] >= {"web"}
    assert ports["agent"] >= {"metrics"}
    assert ports["controller"] >= {"metrics"}
    policies = of_kind(objects, "NetworkPolicy")
    deny = find(objects, "NetworkPolicy", "kubevirt-usb-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                assert any(port["port"] in names for names in ports.values()), policy


def test_namespace_admits_the_agent_and_audits_against_restricted(objects: list[Obj]) -> None:
    labels = find(objects, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


# ---- OpenShift ------------------------------------------------------------------------------


def test_openshift_scc_grants_only_what_the_agent_needs() -> None:
    objects = render("openshift")
    scc = find(objects, "SecurityContextConstraints", "kubevirt-usb-agent")
    assert scc["allowPrivilegedContainer"] is True
    assert scc["allowHostDirVolumePlugin"] is True
    assert not any(scc[k] for k in ("allowHostNetwork", "allowHostPorts", "allowHostPID",
                                     "allowHostIPC"))
    assert scc["allowedCapabilities"] == scc["defaultAddCapabilities"] == []
    assert scc["readOnlyRootFilesystem"] is True
    assert set(scc["volumes"]) == {"emptyDir", "hostPath", "projected"}
    assert scc["users"] == scc["groups"] == []
    # Only the agent's account may use it, and only in the install namespace.
    users = [b for b in of_kind(objects, "RoleBinding", "ClusterRoleBinding")
             if b["roleRef"]["name"] == "kubevirt-usb-agent-scc"]
    assert [(b["kind"], b["metadata"]["namespace"], b["subjects"]) for b in users] == [
        ("RoleBinding", NAMESPACE, [{"kind": "ServiceAccount", "name": "kubevirt-usb-agent",
                                     "namespace": NAMESPACE}])]
    daemonset = find(objects, "DaemonSet", "kubevirt-usb-agent")
    annotations = daemonset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["openshift.io/required-scc"] == "kubevirt-usb-agent"


def test_openshift_web_ui_is_behind_oauth_proxy_with_the_users_token() -> None:
    objects = render("openshift")
    spec = pod_spec(find(objects, "Deployment", "kubevirt-usb-web"))
    web, proxy = spec["containers"]
    assert {"name": "WEB_AUTH", "value": "proxy"} in web["env"]
    assert "--pass-access-token=true" in proxy["args"]
    assert "--scope=user:full" in proxy["args"]
    assert "--upstream=http://127.0.0.1:8080" in proxy["args"]
    route = find(objects, "Route", "kubevirt-usb-web")
    assert route["spec"]["tls"]["termination"] == "reencrypt"
    assert route["spec"]["port"]["targetPort"] == "web"
    assert [p["name"] for p in proxy["ports"]] == ["web"]
    assert "web" not in [p["name"] for p in web["ports"]]  # reached through the proxy only
    host = route["spec"]["host"]
    assert find(objects, "OAuthClient", "kubevirt-usb-web")["redirectURIs"] == [f"https://{host}"]
    assert find(objects, "ConsoleLink", "kubevirt-usb")["spec"]["href"] == f"https://{host}"


def test_kubernetes_web_ui_signs_users_in_itself_behind_an_ingress() -> None:
    objects = render("kubernetes")
    (web,) = pod_spec(find(objects, "Deployment", "kubevirt-usb-web"))["containers"]
    assert {"name": "WEB_AUTH", "value": "login"} in web["env"]
    ingress = find(objects, "Ingress", "kubevirt-usb-web")
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


def test_openshift_console_plugin_is_served_by_the_image_with_the_service_ca() -> None:
    objects = render("openshift")
    package = json.loads((REPO / "console-plugin" / "package.json").read_text())
    plugin = find(objects, "ConsolePlugin", package["consolePlugin"]["name"])
    backend = plugin["spec"]["backend"]
    assert backend["type"] == "Service"
    assert "proxy" not in plugin["spec"]  # the plugin talks to the API through the console only
    service = find(objects, "Service", backend["service"]["name"])
    assert backend["service"]["namespace"] == service["metadata"]["namespace"] == NAMESPACE
    (port,) = service["spec"]["ports"]
    assert backend["service"]["port"] == port["port"] == 9443
    secret = service["metadata"]["annotations"][
        "service.beta.openshift.io/serving-cert-secret-name"]
    deployment = find(objects, "Deployment", "kubevirt-usb-console-plugin")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert port["targetPort"] in [p["name"] for p in container["ports"]]
    assert {v["name"]: v["secret"]["secretName"] for v in spec["volumes"]} == {
        "serving-cert": secret}
    (mount,) = container["volumeMounts"]
    assert container["args"] == ["plugin-serve", "--listen=0.0.0.0:9443",
                                 f"--tls-cert={mount['mountPath']}/tls.crt",
                                 f"--tls-key={mount['mountPath']}/tls.key"]
    assert spec["automountServiceAccountToken"] is False  # static files: no token, no rights
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (rule,) = find(objects, "NetworkPolicy", "kubevirt-usb-console-plugin")["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "openshift-console"}}}]
    assert rule["ports"] == [{"port": "plugin", "protocol": "TCP"}]
    # the link to the standalone UI stays, for consoles without the plugin
    assert find(objects, "ConsoleLink", "kubevirt-usb")["spec"]["location"] == "ApplicationMenu"
