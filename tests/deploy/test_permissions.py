"""The permission matrix: with the RBAC objects of deploy/openshift (a superset of
deploy/kubernetes) installed, the API server's SubjectAccessReview answers, for each
ServiceAccount and for namespace users holding the cluster's admin/edit/view roles, every request
the component needs (allowed) and a list of things it must not do (denied)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.deploy.conftest import Emulator
from tests.deploy.support import NAMESPACE, of_kind, render
from tests.polling import wait_until

pytestmark = pytest.mark.kubectl

USB = "usb.kubevirt-usb.io"
KUBEVIRT = "kubevirt.io"
SUBRESOURCES = "subresources.kubevirt.io"
LEASES = "coordination.k8s.io"
RBAC = "rbac.authorization.k8s.io"
SCC = "security.openshift.io"
TEAM_A, TEAM_B = "team-a", "team-b"


@dataclass(frozen=True)
class Subject:
    user: str
    groups: tuple[str, ...]


def service_account(name: str) -> Subject:
    return Subject(f"system:serviceaccount:{NAMESPACE}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                    "system:authenticated"))


AGENT = service_account("kubevirt-usb-agent")
CONTROLLER = service_account("kubevirt-usb-controller")
WEB = service_account("kubevirt-usb-web")
ADMIN_USER = Subject("adam", ("system:authenticated",))  # admin in team-a
EDIT_USER = Subject("alice", ("system:authenticated",))  # edit in team-a
VIEW_USER = Subject("victor", ("system:authenticated",))  # view in team-a
CLUSTER_ADMIN = Subject("root", ("system:masters", "system:authenticated"))


@dataclass(frozen=True)
class Ask:
    """One request: `verb group resource[/subresource] [namespace] [name]`."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.resource}.{self.group or 'core'}{named}{where}"


def asks(verbs: str, group: str, resource: str, namespace: str = "",
         name: str = "") -> list[Ask]:
    return [Ask(v, group, resource, namespace, name) for v in verbs.split()]


# What every component and user must never do: the cluster-admin kind of rights.
NEVER = [
    Ask("*", "*", "*"), Ask("*", "*", "*", TEAM_A),
    *asks("get list watch", "", "secrets", NAMESPACE),
    *asks("create update patch", RBAC, "clusterrolebindings"),
    *asks("create update patch escalate bind", RBAC, "clusterroles"),
    *asks("create", RBAC, "rolebindings", NAMESPACE), Ask("impersonate", "", "users"),
    Ask("impersonate", "", "serviceaccounts", NAMESPACE),
    Ask("create", "", "serviceaccounts/token", NAMESPACE, "kubevirt-usb-agent"),
    *asks("create", "", "pods", NAMESPACE), Ask("create", "", "pods/exec", NAMESPACE),
    *asks("create update patch delete", USB, "usbpolicies"),
    *asks("update delete", "apiextensions.k8s.io", "customresourcedefinitions"),
    *asks("update patch", "", "nodes"), Ask("delete", "", "namespaces"),
    *asks("create update patch", LEASES, "leases", "kube-node-lease", "node1"),
    Ask("use", SCC, "securitycontextconstraints", NAMESPACE, "privileged"),
]
# ...and, for the components, nothing in the users' namespaces beyond their own resources.
NEVER_IN_USER_NAMESPACES = [
    *asks("get list", "", "secrets", TEAM_A),
    *asks("update delete", KUBEVIRT, "virtualmachines", TEAM_A),
    *asks("get", SUBRESOURCES, "virtualmachineinstances/console", TEAM_A),
]

AGENT_MAY = [
    *asks("get list watch create patch delete", USB, "usbdevices"),
    Ask("patch", USB, "usbdevices/status"),
    *asks("get list watch", USB, "usbattachments"),  # cluster-wide
    *asks("get list watch", USB, "usbattachments", TEAM_A),
    Ask("patch", USB, "usbattachments/status", TEAM_A),
    *asks("get list watch", KUBEVIRT, "virtualmachineinstances"),
    Ask("get", KUBEVIRT, "virtualmachines", TEAM_A),
    *asks("get", KUBEVIRT, "virtualmachineinstances", TEAM_B, "vm1"),
    Ask("get", SUBRESOURCES, "virtualmachineinstances/usbredir", TEAM_A, "vm1"),
    Ask("get", SUBRESOURCES, "virtualmachineinstances/usbredir", TEAM_B, "vm2"),
    *asks("get create patch", LEASES, "leases", NAMESPACE, "kubevirt-usb-agent-node1"),
    Ask("use", SCC, "securitycontextconstraints", NAMESPACE, "kubevirt-usb-agent"),
    *asks("get list", "", "pods", TEAM_A),  # the node-local path: the VMI's virt-launcher pod
]
AGENT_NEVER = [
    *NEVER, *NEVER_IN_USER_NAMESPACES,
    *asks("create update patch delete", USB, "usbattachments", TEAM_A),
    *asks("get list", USB, "usbpolicies"),
    *asks("update", USB, "usbattachments/status", TEAM_A),
    Ask("list", KUBEVIRT, "virtualmachines", TEAM_A),
    *asks("delete", KUBEVIRT, "virtualmachineinstances", TEAM_A),
    *asks("create patch", LEASES, "leases", TEAM_A, "kubevirt-usb-agent-node1"),
    *asks("list watch delete", LEASES, "leases", NAMESPACE),
    *asks("create", "", "events", TEAM_A),
    Ask("get", "", "namespaces", "", TEAM_A),
    *asks("watch create update patch delete", "", "pods", TEAM_A),
    *(ask for sub in ("pods/log", "pods/exec", "pods/attach", "pods/portforward")
      for ask in asks("get create", "", sub, TEAM_A)),
]

CONTROLLER_MAY = [
    *asks("get list watch", USB, "usbattachments"),
    *asks("get list watch patch update", USB, "usbattachments", TEAM_A),
    *asks("patch update", USB, "usbattachments/status", TEAM_B),
    *asks("get list watch patch update", USB, "usbdevices"),
    Ask("patch", USB, "usbdevices/status", "", "dev1"),
    *asks("get list watch", USB, "usbpolicies"),
    *asks("get list watch", KUBEVIRT, "virtualmachines"),
    *asks("get list watch", KUBEVIRT, "virtualmachineinstances", TEAM_A),
    *asks("get list watch", "", "namespaces"),
    *asks("create patch", "", "events", TEAM_A),
    *asks("get list watch create", LEASES, "leases", NAMESPACE),
    *asks("update patch", LEASES, "leases", NAMESPACE, "kubevirt-usb-controller"),
]
CONTROLLER_NEVER = [
    *NEVER, *NEVER_IN_USER_NAMESPACES,
    *asks("create delete", USB, "usbattachments", TEAM_A),
    *asks("create delete", USB, "usbdevices"),
    Ask("get", SUBRESOURCES, "virtualmachineinstances/usbredir", TEAM_A, "vm1"),
    *asks("update patch", LEASES, "leases", NAMESPACE, "kubevirt-usb-agent-node1"),
    *asks("get list", LEASES, "leases", TEAM_A),
    *asks("create", KUBEVIRT, "virtualmachines", TEAM_A),
    Ask("use", SCC, "securitycontextconstraints", NAMESPACE, "kubevirt-usb-agent"),
]

# The web UI acts with its users' tokens: its own account may do nothing at all.
WEB_NEVER = [
    *NEVER, *NEVER_IN_USER_NAMESPACES,
    *asks("get list watch", USB, "usbdevices"),
    *asks("get list watch create delete", USB, "usbattachments", TEAM_A),
    *asks("get list", KUBEVIRT, "virtualmachines", TEAM_A),
    *asks("get list", KUBEVIRT, "virtualmachineinstances", TEAM_A),
    Ask("get", SUBRESOURCES, "virtualmachineinstances/usbredir", TEAM_A, "vm1"),
    *asks("get list create", LEASES, "leases", NAMESPACE),
    Ask("create", "", "events", NAMESPACE),
    *asks("get list", "", "namespaces"),
    Ask("use", SCC, "securitycontextconstraints", NAMESPACE, "kubevirt-usb-agent"),
]

USER_NEVER = [
    *NEVER,
    # Binding devices (spec.claimRef) and deciding what is shared are the cluster admin's and
    # the controller's, in the user's own namespace too.
    *asks("update patch create delete", USB, "usbdevices"),
    *asks("create update patch delete", USB, "usbpolicies", TEAM_A),
    *asks("update patch", USB, "usbattachments/status", TEAM_A),
    # Another namespace's attachments and VMs.
    *asks("get list create update patch delete", USB, "usbattachments", TEAM_B),
    # The cluster-wide inventory comes with a cluster-wide grant only.
    *asks("list", USB, "usbdevices"),
    *asks("list", USB, "usbattachments"),
]
EDITOR_MAY = [
    *asks("get list watch create update patch delete deletecollection", USB, "usbattachments",
          TEAM_A),
    *asks("get", USB, "usbattachments/status", TEAM_A),
]
VIEWER_MAY = [
    *asks("get list watch", USB, "usbattachments", TEAM_A),
    Ask("get", USB, "usbattachments/status", TEAM_A),
]
VIEWER_NEVER = [
    *USER_NEVER,
    *asks("create update patch delete deletecollection", USB, "usbattachments", TEAM_A),
]

CLUSTER_ADMIN_MAY = [
    *asks("create update patch delete", USB, "usbpolicies"),
    *asks("update patch", USB, "usbdevices"),
]


class Reviewer:
    """Asks the API server's SubjectAccessReview."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def allowed(self, subject: Subject, ask: Ask) -> bool:
        group, resource = ask.group, ask.resource
        main, _, sub = resource.partition("/")
        review = {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": subject.user, "groups": list(subject.groups),
                     "resourceAttributes": {"verb": ask.verb, "group": group, "resource": main,
                                            "subresource": sub, "namespace": ask.namespace,
                                            "name": ask.name}}}
        answer = self.http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                json=review)
        answer.raise_for_status()
        return bool(answer.json()["status"]["allowed"])

    def wrong(self, subject: Subject, *, may: list[Ask], never: list[Ask]) -> list[str]:
        """The answers that differ from the matrix, as readable lines."""
        problems = [f"denied: {a}" for a in may if not self.allowed(subject, a)]
        problems += [f"allowed: {a}" for a in never if self.allowed(subject, a)]
        return problems


def _binding(user: str, role: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": namespace},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}]}


@pytest.fixture(scope="module")
def reviewer(emulator: Emulator) -> Iterator[Reviewer]:
    objects = render("openshift")
    rbac = of_kind(objects, "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                   "Role", "RoleBinding")
    emulator.kubectl.apply(rbac)
    emulator.kubectl.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                            for n in (TEAM_A, TEAM_B)])
    emulator.kubectl.apply([_binding("adam", "admin", TEAM_A), _binding("alice", "edit", TEAM_A),
                            _binding("victor", "view", TEAM_A)])
    server = emulator.server
    trust = ssl.create_default_context(cafile=str(server.certificate.ca_path))
    with httpx.Client(base_url=server.url, verify=trust,
                      headers={"Authorization": f"Bearer {server.admin_token}"},
                      timeout=30.0) as http:
        reviewer = Reviewer(http)
        # The cluster's admin/edit/view roles take in ours by aggregation, a moment later.
        wait_until(lambda: reviewer.allowed(VIEW_USER, VIEWER_MAY[0]) and reviewer.allowed(
            ADMIN_USER, EDITOR_MAY[3]), what="kubevirt-usb roles aggregated into admin/view")
        yield reviewer


def test_agent(reviewer: Reviewer) -> None:
    assert reviewer.wrong(AGENT, may=AGENT_MAY, never=AGENT_NEVER) == []


def test_controller(reviewer: Reviewer) -> None:
    assert reviewer.wrong(CONTROLLER, may=CONTROLLER_MAY, never=CONTROLLER_NEVER) == []


def test_web_ui_account_holds_no_rights(reviewer: Reviewer) -> None:
    assert reviewer.wrong(WEB, may=[], never=WEB_NEVER) == []


def test_namespace_admin_and_editor_manage_attachments_in_their_namespace_only(
        reviewer: Reviewer) -> None:
    assert reviewer.wrong(ADMIN_USER, may=EDITOR_MAY, never=USER_NEVER) == []
    assert reviewer.wrong(EDIT_USER, may=EDITOR_MAY, never=USER_NEVER) == []


def test_namespace_viewer_reads_attachments_only(reviewer: Reviewer) -> None:
    assert reviewer.wrong(VIEW_USER, may=VIEWER_MAY, never=VIEWER_NEVER) == []


def test_only_cluster_admins_write_policies_and_bindings(reviewer: Reviewer) -> None:
    """The matrix can tell the difference: the same requests are allowed to a cluster admin."""
    assert reviewer.wrong(CLUSTER_ADMIN, may=CLUSTER_ADMIN_MAY, never=[]) == []
