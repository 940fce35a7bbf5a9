"""The rights the UI's users need. The UI has none of its own: it acts with each user's token, so
what a user sees and may do comes from the shipped user roles (deploy/base/user-roles.yaml, which
join Kubernetes' admin/edit/view roles) and the bindings an admin makes. The sandbox and the
tests bind their users with the helpers here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

USER_ROLES = Path(__file__).resolve().parents[3] / "deploy" / "base" / "user-roles.yaml"
DEVICE_VIEWER = "kubevirt-usb-device-viewer"
_RBAC = "rbac.authorization.k8s.io"
_LABELS = {"app.kubernetes.io/part-of": "kubevirt-usb"}


def shipped_user_roles(path: Path = USER_ROLES) -> list[dict[str, Any]]:
    """The ClusterRoles of deploy/base/user-roles.yaml (a source checkout's)."""
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except OSError as exc:
        raise FileNotFoundError(f"the user roles are not at {path}: run from a source "
                                "checkout of kubevirt-usb") from exc


def _subject(user: str) -> dict[str, str]:
    return {"apiGroup": _RBAC, "kind": "User", "name": user}


def namespace_role(user: str, *, namespace: str, role: str = "edit") -> dict[str, Any]:
    """A RoleBinding giving `user` the aggregated `role` (edit, view, admin) in `namespace`."""
    return {"apiVersion": f"{_RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": namespace,
                         "labels": dict(_LABELS)},
            "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [_subject(user)]}


def device_viewer(user: str) -> dict[str, Any]:
    """A ClusterRoleBinding letting `user` see the device inventory and the policies."""
    return {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{DEVICE_VIEWER}-{user}", "labels": dict(_LABELS)},
            "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": DEVICE_VIEWER},
            "subjects": [_subject(user)]}
