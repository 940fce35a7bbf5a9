"""Object name rules per kind."""

from __future__ import annotations

import pytest

from kubevirt_usb.apiserver.errors import APIError
from kubevirt_usb.apiserver.names import (
    label_errors,
    metadata_causes,
    name_errors,
    path_segment_errors,
    subdomain_errors,
)


@pytest.mark.parametrize("name", ["a", "a-b", "a.b.c", "0abc", "x" * 253])
def test_valid_subdomains(name: str) -> None:
    assert subdomain_errors(name) == []


@pytest.mark.parametrize("name", ["A", "a_b", "-a", "a-", "a..b", ".a"])
def test_invalid_subdomains(name: str) -> None:
    assert subdomain_errors(name)[-1].startswith("a lowercase RFC 1123 subdomain must consist of")


def test_too_long_subdomain() -> None:
    assert subdomain_errors("x" * 254)[0] == "must be no more than 253 characters"


def test_labels() -> None:
    assert label_errors("my-name") == []
    assert label_errors("has.dot") == ["must not contain dots"]  # a subdomain, not a label
    assert label_errors("Upper")[0].startswith("a lowercase RFC 1123 label must consist of")
    assert label_errors("-dot.")[0].startswith("a lowercase RFC 1123 label must consist of")
    assert label_errors("x" * 64)[0] == "must be no more than 63 characters"


def test_path_segments() -> None:
    assert path_segment_errors("Any_Thing:ok") == []
    assert path_segment_errors("..") == ['may not be ".."']
    assert path_segment_errors("a/b%c") == ["may not contain '/'", "may not contain '%'"]


def test_rules_by_kind() -> None:
    assert name_errors(kind="Namespace", name="a.b")
    assert name_errors(kind="ConfigMap", name="a.b") == []
    assert name_errors(kind="ClusterRole", name="system:Aggregate_To") == []
    assert name_errors(kind="Widget", name="Upper")


def test_metadata_of_a_valid_object_has_no_causes() -> None:
    assert metadata_causes({"name": "x", "labels": {"app.kubernetes.io/name": "a-b_c.d"},
                            "annotations": {"Example.com/Any": "any value at all"},
                            "finalizers": ["example.com/hold"],
                            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                 "name": "o", "uid": "1"}]}) == []


def test_label_and_annotation_problems() -> None:
    causes = metadata_causes({"labels": {"bad key": "ok", "ok": "bad value!"},
                              "annotations": {"/x": "v"}})
    assert [(c.field, c.message.split(":")[1].strip()) for c in causes] == [
        ("metadata.labels", '"bad key"'), ("metadata.labels", '"bad value!"'),
        ("metadata.annotations", '"/x"')]
    assert causes[0].message == (
        "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
        "'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def test_owner_reference_and_finalizer_problems() -> None:
    causes = metadata_causes({"ownerReferences": [{"apiVersion": "", "kind": "K", "name": "n"}],
                              "finalizers": ["orphan", "foregroundDeletion"]})
    assert [(c.field, c.message) for c in causes] == [
        ("metadata.ownerReferences.apiVersion", 'Invalid value: "": version must not be empty'),
        ("metadata.ownerReferences.uid", 'Invalid value: "": must not be empty'),
        ("metadata.finalizers", 'Invalid value: []string{"orphan", "foregroundDeletion"}: '
         "finalizer orphan and foregroundDeletion cannot be both set")]


def test_labels_of_the_wrong_type_are_a_decoding_error() -> None:
    with pytest.raises(APIError) as bad:
        metadata_causes({"labels": {"a": 1}})
    assert bad.value.code == 400
