"""Failures of lightkube and httpx2 become one error tree, mapped from real Status bodies."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from lightkube.core.exceptions import ApiError
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from kubevirt_usb.kube.errors import (
    RESOURCE_NOT_SERVED,
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    error_for_status,
    translate,
)

URL = "https://127.0.0.1:6443/apis/usb.kubevirt-usb.io/v1alpha1/usbdevices/x"


def _api_error(code: int, reason: str, *, details: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> ApiError:
    request = httpx2.Request("GET", URL)
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": f"the {reason} message",
                            "reason": reason, "code": code}
    if details:
        body["details"] = details
    response = httpx2.Response(code, json=body, request=request, headers=headers or {})
    return ApiError(request=request, response=response)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (422, "Invalid", Invalid),
        (400, "BadRequest", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", Unavailable),
        (504, "Timeout", Unavailable),
    ],
)
def test_status_bodies_map_to_their_error(code: int, reason: str,
                                          expected: type[KubeError]) -> None:
    error = translate(_api_error(code, reason))
    assert type(error) is expected
    assert (error.code, error.reason, error.message) == (code, reason, f"the {reason} message")


def test_already_exists_is_a_conflict_and_throttling_is_unavailability() -> None:
    assert isinstance(error_for_status(409, reason="AlreadyExists", message=""), Conflict)
    assert isinstance(error_for_status(429, reason="TooManyRequests", message=""), Unavailable)
    assert isinstance(error_for_status(500, reason="InternalError", message=""), Unavailable)
    assert not isinstance(error_for_status(409, reason="Conflict", message=""), AlreadyExists)


def test_retry_hint_comes_from_details_or_the_header() -> None:
    from_details = translate(_api_error(429, "TooManyRequests",
                                        details={"retryAfterSeconds": 3}))
    from_header = translate(_api_error(429, "TooManyRequests", headers={"Retry-After": "7"}))
    without = translate(_api_error(500, "InternalError"))
    assert (from_details.retry_after, from_header.retry_after, without.retry_after) == (
        3.0, 7.0, None)


def test_a_watch_error_event_without_a_response_is_mapped_too() -> None:
    from lightkube.models import meta_v1

    status = meta_v1.Status(code=410, reason="Expired", message="too old resource version: 1")
    error = translate(ApiError(status=status))
    assert isinstance(error, Gone)
    assert error.message == "too old resource version: 1"


def test_an_http_error_without_a_status_body_maps_by_code() -> None:
    request = httpx2.Request("GET", URL)
    response = httpx2.Response(502, text="<html>bad gateway</html>", request=request,
                               headers={"Content-Type": "text/html"})
    error = translate(httpx2.HTTPStatusError("bad gateway", request=request, response=response))
    assert isinstance(error, Unavailable)
    assert error.code == 502
    assert "bad gateway" in error.message


def test_a_resource_type_the_server_does_not_serve_is_told_from_a_missing_object() -> None:
    """kube-apiserver: a Status below a group version it serves, Go's text 404 below one it
    does not (a CRD's group before the CRD is installed); a missing object is neither."""
    request = httpx2.Request("GET", URL)
    plain = httpx2.Response(404, text="404 page not found\n", request=request,
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    unknown_group = translate(httpx2.HTTPStatusError("404", request=request, response=plain))
    status = httpx2.Response(404, request=request, json={
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound",
        "details": {}, "code": 404})
    unknown_resource = translate(ApiError(request=request, response=status))
    missing_object = translate(_api_error(404, "NotFound", details={"name": "x"}))
    assert isinstance(unknown_group, NotFound)
    assert isinstance(unknown_resource, NotFound)
    assert (unknown_group.reason, unknown_resource.reason, missing_object.reason) == (
        RESOURCE_NOT_SERVED, RESOURCE_NOT_SERVED, "NotFound")


def test_transport_failures_are_unavailable_with_the_exception_name_as_reason() -> None:
    refused = translate(httpx2.ConnectError("[Errno 111] Connection refused"))
    timed_out = translate(httpx2.ReadTimeout("timed out"))
    reset = translate(ConnectionResetError(104, "Connection reset by peer"))
    assert [type(e) for e in (refused, timed_out, reset)] == [Unavailable] * 3
    assert [e.reason for e in (refused, timed_out, reset)] == [
        "ConnectError", "ReadTimeout", "ConnectionResetError"]
    assert "Connection refused" in refused.message


def test_a_kube_error_translates_to_itself() -> None:
    error = NotFound("gone", code=404, reason="NotFound")
    assert translate(error) is error


def test_an_answer_that_is_not_json_is_unavailable() -> None:
    import msgspec

    try:
        msgspec.json.decode(b"{not json")
    except msgspec.DecodeError as exc:
        error = translate(exc)
    assert isinstance(error, Unavailable)
    assert error.reason == "DecodeError"


def test_credentials_that_cannot_be_read_are_unavailable() -> None:
    error = translate(LightkubeConfigError("Token file /var/run/token not found"))
    assert isinstance(error, Unavailable)
    assert (error.code, error.reason) == (0, "ConfigError")
    assert error.message == "the credentials cannot be read: Token file /var/run/token not found"
