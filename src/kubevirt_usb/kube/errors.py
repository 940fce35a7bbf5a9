"""What went wrong talking to the Kubernetes API, as one small tree of errors.

Every failure of a request (an error `Status` from the API server, an HTTP error without one, a
connection that could not be made or broke) is mapped once, by `translate`, into:

- `NotFound` (404), `Conflict` (409 Conflict: a stale resourceVersion or a failed precondition)
  and its `AlreadyExists` (409 AlreadyExists), `Gone` (410: a watch or list from a
  resourceVersion that is too old);
- `Unauthorized` (401), `Forbidden` (403), `Invalid` (400, 415, 422: the request itself is wrong);
- `Unavailable`: no answer worth reading (connection refused or reset, timeouts, 5xx, a body
  that is not JSON, credentials such as a token file that cannot be read), with
  `TooManyRequests` (429) and `ServerError` (500) below it. These are the ones worth retrying;
  `retry_after` carries the server's own hint (the Retry-After header or
  `details.retryAfterSeconds`).

`reason` is the Kubernetes reason (`NotFound`, `Conflict`, ...) or, for transport failures, a
short name such as `ConnectError`, so metrics and logs can count errors by it.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx2
import msgspec
from lightkube.core.exceptions import ApiError
from lightkube.core.exceptions import ConfigError as LightkubeConfigError


class KubeError(Exception):
    """A request to the Kubernetes API failed."""

    def __init__(self, message: str, *, code: int = 0, reason: str = "Unknown",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r}, {self.message!r})"


class NotFound(KubeError):
    """The object (or the resource type) does not exist."""


class Conflict(KubeError):
    """A write lost a race: the object changed since it was read, or a precondition failed."""


class AlreadyExists(Conflict):
    """A create found an object of that name already there."""


class Gone(KubeError):
    """The resourceVersion asked for is too old: list again, then watch from the new one."""


class Unauthorized(KubeError):
    """The credentials were not accepted."""


class Forbidden(KubeError):
    """The credentials are fine but RBAC does not allow this request."""


class Invalid(KubeError):
    """The request was malformed or the object failed validation."""


class Unavailable(KubeError):
    """No usable answer: the API server is down, unreachable, overloaded or failing."""


class TooManyRequests(Unavailable):
    """429: the API server asks the client to slow down."""


class ServerError(Unavailable):
    """500: the API server failed while handling the request."""


_BY_CODE: dict[int, type[KubeError]] = {
    400: Invalid, 401: Unauthorized, 403: Forbidden, 404: NotFound, 410: Gone, 415: Invalid,
    422: Invalid, 429: TooManyRequests, 500: ServerError,
}


def error_for_status(code: int, *, reason: str, message: str,
                     retry_after: float | None = None) -> KubeError:
    """The error for an HTTP status code and the Kubernetes reason the server gave."""
    cls: type[KubeError]
    if code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    elif code >= 500 or code == 408:
        cls = Unavailable
    else:
        cls = KubeError
    return cls(message, code=code, reason=reason, retry_after=retry_after)


def _retry_after_header(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


RESOURCE_NOT_SERVED = "ResourceNotServed"
"""`NotFound.reason` when the server serves no such resource type (its CRD is not installed),
not merely no such object. kube-apiserver says so two ways: below a group version it serves, a
Status `the server could not find the requested resource`; below a group it does not serve (a
CRD's group before the CRD is installed), Go's plain-text `404 page not found`."""
_NO_RESOURCE_MESSAGE = "the server could not find the requested resource"


def _from_api_error(exc: ApiError) -> KubeError:
    status: Any = exc.status
    details = getattr(status, "details", None)
    hint = getattr(details, "retryAfterSeconds", None)
    response: httpx2.Response | None = exc.response
    retry_after = float(hint) if hint else _retry_after_header(response)
    code = int(status.code or (response.status_code if response is not None else 0))
    reason = status.reason or "Unknown"
    if code == 404 and status.message == _NO_RESOURCE_MESSAGE:
        reason = RESOURCE_NOT_SERVED
    return error_for_status(code, reason=reason, message=status.message or str(exc),
                            retry_after=retry_after)


CERTIFICATE_NOT_TRUSTED = "CertificateNotTrusted"
"""`Unavailable.reason` when the server's certificate is not one the client trusts."""


def _certificate_not_trusted(exc: BaseException) -> bool:
    """Whether a TLS certificate verification failure is behind `exc` (httpx2 wraps it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate(exc: BaseException) -> KubeError:
    """The `KubeError` for an exception raised by lightkube or httpx2 (or an OSError below them).

    Anything else is a bug, not an API failure: it is returned as a plain `KubeError` only so
    the caller can decide; callers normally catch just the lightkube/httpx2/OSError family.
    """
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiError):
        return _from_api_error(exc)
    if isinstance(exc, httpx2.HTTPStatusError):  # an error without a Status body
        response = exc.response
        reason = response.reason_phrase or "Unknown"
        if response.status_code == 404:  # no handler for the path: `404 page not found`
            reason = RESOURCE_NOT_SERVED
        return error_for_status(response.status_code, reason=reason,
                                message=f"{response.status_code} {response.reason_phrase}: "
                                f"{response.text[:200]}",
                                retry_after=_retry_after_header(response))
    if isinstance(exc, LightkubeConfigError):  # e.g. the token file is gone (while rotating)
        return Unavailable(f"the credentials cannot be read: {exc}", reason="ConfigError")
    if isinstance(exc, httpx2.HTTPError | OSError):
        detail = str(exc) or type(exc).__name__
        reason = CERTIFICATE_NOT_TRUSTED if _certificate_not_trusted(exc) else type(exc).__name__
        return Unavailable(f"cannot reach the API server: {detail}", reason=reason)
    if isinstance(exc, msgspec.DecodeError):
        return Unavailable(f"the API server's answer cannot be decoded: {exc}",
                           reason="DecodeError")
    return KubeError(f"{type(exc).__name__}: {exc}", reason=type(exc).__name__)


API_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ApiError, httpx2.HTTPError, OSError, msgspec.DecodeError, LightkubeConfigError)
"""What lightkube and httpx2 raise for a failed request (or an answer that is not JSON, or
credentials that cannot be read); `translate` maps each to a KubeError."""
