"""Errors as the Status bodies a real kube-apiserver writes."""

from __future__ import annotations

from kubevirt_usb.apiserver import errors


def test_not_found_names_the_qualified_resource() -> None:
    status = errors.not_found(resource="widgets", group="example.com", name="w").status()
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'widgets.example.com "w" not found', "reason": "NotFound",
                      "code": 404, "details": {"name": "w", "group": "example.com",
                                               "kind": "widgets"}}


def test_invalid_lists_one_or_several_causes() -> None:
    one = errors.invalid(kind="Widget", group="example.com", name="w", causes=[
        errors.Cause(type="FieldValueRequired", field="spec.a", message="Required value")])
    assert one.message == 'Widget.example.com "w" is invalid: spec.a: Required value'
    two = errors.invalid(kind="ConfigMap", group="", name="c", causes=[
        errors.Cause(type="FieldValueRequired", field="a", message="Required value"),
        errors.Cause(type="FieldValueInvalid", field="b", message="Invalid value: 1")])
    assert two.message == 'ConfigMap "c" is invalid: [a: Required value, b: Invalid value: 1]'
    assert two.status()["details"]["causes"][1] == {"reason": "FieldValueInvalid",
                                                    "message": "Invalid value: 1", "field": "b"}


def test_conflicts() -> None:
    stale = errors.stale_resource_version(resource="configmaps", group="", name="c")
    assert stale.code == 409
    assert stale.message.endswith("the object has been modified; please apply your changes to "
                                  "the latest version and try again")
    exists = errors.already_exists(resource="configmaps", group="", name="c")
    assert exists.status()["reason"] == "AlreadyExists"


def test_generic_errors_carry_empty_details() -> None:
    assert errors.method_not_allowed().status()["details"] == {}
    assert errors.path_not_found().status()["details"] == {}
    assert errors.route_unsupported_media_type().status()["details"] == {}


def test_a_page_not_found_is_plain_text_and_an_unknown_reason_is_omitted() -> None:
    assert errors.page_not_found().plain_text
    assert errors.page_not_found().message == "404 page not found"
    assert "reason" not in errors.APIError(code=500, reason="", message="m").status()


def test_media_types_and_forbidden_sentences() -> None:
    assert errors.unsupported_media_type().message.endswith(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf")
    forbidden = errors.forbidden(user="u", verb="get", resource="pods", group="",
                                 subresource="log", namespace="ns", name="p")
    assert forbidden.message == ('pods "p" is forbidden: User "u" cannot get resource "pods/log" '
                                 'in API group "" in the namespace "ns"')
    admission = errors.admission_forbidden(resource="configmaps", group="", name="c",
                                           message="no")
    assert admission.message == 'configmaps "c" is forbidden: no'


def test_gone_with_a_continue_token_and_retry_after() -> None:
    gone = errors.gone("too old")
    gone.list_continue = "token"
    assert gone.status()["metadata"] == {"continue": "token"}
    timeout = errors.timeout("slow", retry_after_seconds=1)
    assert timeout.status()["details"] == {"retryAfterSeconds": 1}
    assert str(errors.internal("boom")) == "Internal error occurred: boom"
    assert errors.unauthorized().code == 401
