"""The Kubernetes protobuf codec: envelope, field numbers, Go's JSON for zero values."""

from __future__ import annotations

from typing import Any

import pytest

from kubevirt_usb.apiserver import protobuf


def test_an_object_round_trips_through_the_envelope() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespace": "ns", "labels": {"b": "2", "a": "1"},
                       "creationTimestamp": "2026-01-02T03:04:05Z", "generation": 3,
                       "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p",
                                            "uid": "u", "controller": False}],
                       "managedFields": [{"manager": "m", "operation": "Update",
                                          "fieldsType": "FieldsV1",
                                          "fieldsV1": {"f:data": {"f:a": {}}}}]},
          "data": {"a": "x"}, "binaryData": {"bin": "AAEC"}, "immutable": False}
    encoded = protobuf.encode(cm)
    assert encoded.startswith(b"k8s\x00")
    assert protobuf.decode(encoded) == cm


def test_the_envelope_carries_the_type() -> None:
    encoded = protobuf.encode({"apiVersion": "v1", "kind": "Namespace", "metadata": {}})
    # runtime.Unknown: field 1 typeMeta {1: apiVersion, 2: kind}
    assert encoded[4:].startswith(b"\n\x0f\n\x02v1\x12\x09Namespace")


def test_zero_values_are_what_go_omits_unless_a_pointer_or_required() -> None:
    # a message as gogo writes it: every non-pointer scalar, zero or not
    meta = protobuf.encode_message("ObjectMeta", {"name": "x"}) + bytes([0x38, 0])  # gen 0
    spec = bytes([0x10, 0])  # LeaseSpec.leaseDurationSeconds = 0 (a pointer)
    lease = b"\n" + bytes([len(meta)]) + meta + b"\x12" + bytes([len(spec)]) + spec
    assert protobuf.decode_message("Lease", lease) == {
        "metadata": {"name": "x"}, "spec": {"leaseDurationSeconds": 0}}
    # SubjectAccessReviewStatus.allowed has no omitempty: false is written
    assert protobuf.decode_message("SubjectAccessReviewStatus", b"") == {"allowed": False}


def test_negative_numbers_and_times() -> None:
    obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
           "spec": {"leaseDurationSeconds": -1, "renewTime": "2026-01-02T03:04:05.123456Z"}}
    assert protobuf.decode(protobuf.encode(obj)) == obj


def test_lists_encode_their_items() -> None:
    listed = {"apiVersion": "v1", "kind": "ConfigMapList",
              "metadata": {"resourceVersion": "7", "continue": "c", "remainingItemCount": 0},
              "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}
    assert protobuf.decode(protobuf.encode(listed)) == listed


def test_a_status_error() -> None:
    status = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
              "message": "no", "reason": "Invalid", "code": 422,
              "details": {"name": "x", "kind": "configmaps",
                          "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                      "message": "bad"}]}}
    assert protobuf.decode(protobuf.encode(status)) == status


@pytest.mark.parametrize(("raw", "says"), [
    (b'{"kind": "ConfigMap"}', "no k8s prefix"),
    (b"k8s\x00\n\x07\n\x02v1\x12\x01X", "no protobuf decoding for X"),
    (b"k8s\x00\n\xff", "truncated"),
])
def test_bodies_it_cannot_decode(raw: bytes, says: str) -> None:
    with pytest.raises(protobuf.ProtobufError, match=says):
        protobuf.decode(raw)


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {}},  # no table for Pods
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "surprise": 1},
])
def test_what_it_cannot_encode_is_refused_not_lost(obj: dict[str, Any]) -> None:
    with pytest.raises(protobuf.ProtobufError):
        protobuf.encode(obj)


def test_unknown_fields_of_a_body_are_skipped() -> None:
    body = protobuf.encode_message("RoleRef", {"name": "r"}) + b"\x48\x01"  # field 9, varint
    assert protobuf.decode_message("RoleRef", body) == {"name": "r"}
