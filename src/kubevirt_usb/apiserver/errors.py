"""The API emulator's error tree: every failure a handler can raise, mapped once to a `Status` body.

Reasons and codes are the ones a real kube-apiserver returns (k8s.io/apimachinery/pkg/api/errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Cause:
    """One entry of `Status.details.causes`: what was wrong with which field."""

    type: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldManagerConflict
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.type, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass(kw_only=True)
class APIError(Exception):
    """An error that becomes a Kubernetes `Status` response."""

    code: int
    reason: str
    message: str
    group: str = ""
    kind: str = ""
    name: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None
    empty_details: bool = False  # `"details": {}` as errors built without a resource carry
    list_continue: str = ""  # metadata.continue of an expired list's Status
    plain_text: bool = False  # answered as Go's http.Error does (text/plain), not as a Status

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.list_continue} if self.list_continue else {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:  # StatusReasonUnknown is "" and omitted
            del body["reason"]
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        if details or self.empty_details:
            body["details"] = details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(*, resource: str, group: str, name: str) -> APIError:
    return APIError(
        code=404,
        reason="NotFound",
        message=f'{_qualified(resource, group)} "{name}" not found',
        group=group,
        kind=resource,
        name=name,
    )


def already_exists(*, resource: str, group: str, name: str) -> APIError:
    return APIError(
        code=409,
        reason="AlreadyExists",
        message=f'{_qualified(resource, group)} "{name}" already exists',
        group=group,
        kind=resource,
        name=name,
    )


def conflict(*, resource: str, group: str, name: str, detail: str) -> APIError:
    return APIError(
        code=409,
        reason="Conflict",
        message=f"Operation cannot be fulfilled on {_qualified(resource, group)} "
        f'"{name}": {detail}',
        group=group,
        kind=resource,
        name=name,
    )


def stale_resource_version(*, resource: str, group: str, name: str) -> APIError:
    return conflict(
        resource=resource,
        group=group,
        name=name,
        detail="the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def _aggregate(messages: list[str]) -> str:
    """How apimachinery prints an error list: one message bare, several in brackets."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def invalid(*, kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    """422: `<Kind>.<group> "<name>" is invalid: <field>: <message>` (several in brackets)."""
    summary = _aggregate([f"{c.field}: {c.message}" if c.field else c.message for c in causes])
    qualified = f"{kind}.{group}" if group else kind
    return APIError(
        code=422,
        reason="Invalid",
        message=f'{qualified} "{name}" is invalid: {summary}',
        group=group,
        kind=kind,
        name=name,
        causes=causes,
    )


def bad_request(message: str) -> APIError:
    return APIError(code=400, reason="BadRequest", message=message)


def undecodable(*, kind: str, version: str, problem: str) -> APIError:
    """400 for a body whose field has the wrong JSON type (`problem`: encoding/json's error)."""
    return bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {problem}')


BODY_MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def unsupported_media_type(accepted: Sequence[str] = BODY_MEDIA_TYPES) -> APIError:
    """415, listing what the endpoint accepts (bodies: JSON, YAML, protobuf; patches: types)."""
    return APIError(
        code=415,
        reason="UnsupportedMediaType",
        message="the body of the request was in an unknown format - accepted media types "
        f"include: {', '.join(accepted)}",
    )


def route_unsupported_media_type() -> APIError:
    """415 as go-restful answers a Content-Type no route of the path consumes (a PATCH to a
    built-in resource): its own short message, `details: {}`."""
    return APIError(code=415, reason="UnsupportedMediaType", message="415: Unsupported Media Type",
                    empty_details=True)


def method_not_allowed() -> APIError:
    """405 as kube-apiserver's router answers a method a path does not serve."""
    return APIError(
        code=405,
        reason="MethodNotAllowed",
        message="the server does not allow this method on the requested resource",
        empty_details=True,
    )


def path_not_found() -> APIError:
    """404 for a path below a built-in group (`/api`, `/apis/apps`...) that names nothing there:
    an unknown version or resource (go-restful's answer: a Status with `details: {}`)."""
    return APIError(code=404, reason="NotFound",
                    message="the server could not find the requested resource",
                    empty_details=True)


PAGE_NOT_FOUND = "404 page not found\n"


def page_not_found() -> APIError:
    """404 for a path no handler serves: an unknown group or version, a custom resource the
    group does not have, anything outside the API. kube-apiserver's last handler answers it with
    Go's `http.NotFound`: `404 page not found` as text/plain, not a Status."""
    return APIError(code=404, reason="NotFound", message=PAGE_NOT_FOUND.strip(), plain_text=True)


def gone(message: str) -> APIError:
    return APIError(code=410, reason="Expired", message=message)


def unauthorized() -> APIError:
    return APIError(code=401, reason="Unauthorized", message="Unauthorized")


def forbidden(*, user: str, verb: str, resource: str, group: str, subresource: str,
              namespace: str, name: str) -> APIError:
    """403 with the exact sentence a real server writes, e.g.
    `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the
    namespace "ns"`.
    """
    res = f"{resource}/{subresource}" if subresource else resource
    who = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return APIError(
        code=403,
        reason="Forbidden",
        message=f'{who} is forbidden: User "{user}" cannot {verb} resource "{res}" '
        f'in API group "{group}"{where}',
        group=group,
        kind=resource,
        name=name,
    )


def admission_forbidden(*, resource: str, group: str, name: str, message: str,
                        causes: list[Cause] | None = None) -> APIError:
    """403 from an admission plugin: `<resource> "<name>" is forbidden: <message>`."""
    qualified = _qualified(resource, group)
    who = f'{qualified} "{name}"' if name else qualified
    return APIError(code=403, reason="Forbidden", message=f"{who} is forbidden: {message}",
                    group=group, kind=resource, name=name, causes=list(causes or []))


def timeout(message: str, *, retry_after_seconds: int) -> APIError:
    return APIError(code=504, reason="Timeout", message=f"Timeout: {message}",
                    retry_after_seconds=retry_after_seconds)


def internal(message: str) -> APIError:
    return APIError(code=500, reason="InternalError", message=f"Internal error occurred: {message}")
