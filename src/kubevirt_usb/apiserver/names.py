"""Object name and metadata rules (k8s.io/apimachinery/pkg/util/validation and
pkg/api/validation), as pure checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubevirt_usb.apiserver.errors import Cause, bad_request
from kubevirt_usb.apiserver.selectors import (
    go_quote,
    go_string_slice,
    label_key_errors,
    label_value_errors,
)

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
    if not _LABEL_RE.match(value) and _SUBDOMAIN_RE.match(value):
        errors.append("must not contain dots")  # a subdomain, not a label
    elif not _LABEL_RE.match(value):
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


_ANNOTATIONS_LIMIT = 256 * 1024


def _invalid(field: str, value: str, message: str) -> Cause:
    return Cause(type="FieldValueInvalid", field=field,
                 message=f"Invalid value: {go_quote(value)}: {message}")


def _string_map(meta: Mapping[str, Any], key: str) -> dict[str, str]:
    value = meta.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise bad_request(f"json: cannot unmarshal {key} into Go struct field "
                          f"ObjectMeta.metadata.{key} of type map[string]string")
    return value


def metadata_causes(meta: Mapping[str, Any]) -> list[Cause]:
    """What ObjectMeta validation finds beyond the name: labels, annotations, owner references
    and finalizers (k8s.io/apimachinery/pkg/api/validation ValidateObjectMeta)."""
    causes: list[Cause] = []
    for key, value in sorted(_string_map(meta, "labels").items()):
        causes += [_invalid("metadata.labels", key, m) for m in label_key_errors(key)]
        causes += [_invalid("metadata.labels", value, m) for m in label_value_errors(value)]
    annotations = _string_map(meta, "annotations")
    for key in sorted(annotations):
        causes += [_invalid("metadata.annotations", key, m)
                   for m in label_key_errors(key.lower())]
    if sum(len(k) + len(v) for k, v in annotations.items()) > _ANNOTATIONS_LIMIT:
        causes.append(Cause(type="FieldValueTooLong", field="metadata.annotations",
                            message=f"Too long: must have at most {_ANNOTATIONS_LIMIT} bytes"))
    causes += _owner_reference_causes(meta.get("ownerReferences") or [])
    finalizers = meta.get("finalizers") or []
    for finalizer in finalizers:
        causes += [_invalid("metadata.finalizers", str(finalizer), m)
                   for m in label_key_errors(str(finalizer))]
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(Cause(type="FieldValueInvalid", field="metadata.finalizers",
                            message=f"Invalid value: {go_string_slice(finalizers)}: finalizer "
                            "orphan and foregroundDeletion cannot be both set"))
    return causes


def _owner_reference_causes(references: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    path = "metadata.ownerReferences"
    controllers = 0
    for ref in references:
        if not isinstance(ref, dict):
            raise bad_request("json: cannot unmarshal ownerReferences into Go struct field "
                              "ObjectMeta.metadata.ownerReferences of type v1.OwnerReference")
        api_version = str(ref.get("apiVersion") or "")
        if not api_version.rpartition("/")[2]:
            causes.append(_invalid(f"{path}.apiVersion", api_version,
                                   "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                causes.append(_invalid(f"{path}.{key}", "", "must not be empty"))
        controllers += 1 if ref.get("controller") else 0
    if controllers > 1:
        names = ", ".join(str(r.get("name", "")) for r in references if r.get("controller"))
        causes.append(_invalid(path, "", f"Only one reference can have Controller set to true. "
                               f"Found \"true\" in references for {names}"))
    return causes

