"""Object name rules (k8s.io/apimachinery/pkg/util/validation), as pure checks."""

from __future__ import annotations

import re

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_LABEL_RE = re.compile(f"^{_DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN}$")
_PATH_SEGMENT_BAD = ("/", "%")


def subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            f"'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN}')"
        )
    return errors


def label_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
            f"'123-abc', regex used for validation is '{_DNS1123_LABEL}')"
        )
    return errors


def path_segment_errors(value: str) -> list[str]:
    """What every object name must satisfy (custom resources check nothing more)."""
    if value in (".", ".."):
        return [f'may not be {value!r}'.replace("'", '"')]
    return [f"may not contain '{bad}'" for bad in _PATH_SEGMENT_BAD if bad in value]


def name_errors(*, kind: str, name: str) -> list[str]:
    """The rule each kind applies to metadata.name."""
    if kind == "Namespace":
        return label_errors(name)
    if kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        return path_segment_errors(name)
    return subdomain_errors(name)
