"""The Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`) for the built-in
kinds kubectl writes that way: request bodies decoded to the JSON objects the emulator keeps,
answers encoded back as kube-apiserver encodes them.

An encoded object is the magic `k8s\\x00` and a `runtime.Unknown` (typeMeta, raw, contentEncoding,
contentType) whose `raw` is the kind's message. The messages are proto2 with the field numbers of
k8s.io/api and k8s.io/apimachinery's generated.proto (v0.36), written below as a table: one line a
message, `number json-name type` per field, `[]` for repeated, `?` for a Go pointer (a zero value
that is sent is kept; other zero values are what Go omits from JSON), `map<T>` for a map from
string. No protobuf package is used: the generated Python protos of Kubernetes on PyPI are
unmaintained, and the emulator needs only these few messages. Pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_SCHEMA = """
Unknown: 1 typeMeta TypeMeta; 2 raw bytes; 3 contentEncoding string; 4 contentType string
TypeMeta: 1 apiVersion string; 2 kind string
ObjectMeta: 1 name string; 2 generateName string; 3 namespace string; 4 selfLink string; \
5 uid string; 6 resourceVersion string; 7 generation int; 8 creationTimestamp Time; \
9 deletionTimestamp Time; 10 deletionGracePeriodSeconds int?; 11 labels map<string>; \
12 annotations map<string>; 13 ownerReferences []OwnerReference; 14 finalizers []string; \
17 managedFields []ManagedFieldsEntry
OwnerReference: 5 apiVersion string; 1 kind string; 3 name string; 4 uid string; \
6 controller bool?; 7 blockOwnerDeletion bool?
ManagedFieldsEntry: 1 manager string; 2 operation string; 3 apiVersion string; 4 time Time; \
6 fieldsType string; 7 fieldsV1 FieldsV1; 8 subresource string
ListMeta: 1 selfLink string; 2 resourceVersion string; 3 continue string; \
4 remainingItemCount int?
Status: 1 metadata ListMeta; 2 status string; 3 message string; 4 reason string; \
5 details StatusDetails?; 6 code int
StatusDetails: 1 name string; 2 group string; 3 kind string; 6 uid string; \
4 causes []StatusCause; 5 retryAfterSeconds int
StatusCause: 1 reason string; 2 message string; 3 field string
LabelSelector: 1 matchLabels map<string>; 2 matchExpressions []LabelSelectorRequirement
LabelSelectorRequirement: 1 key string; 2 operator string; 3 values []string
FieldSelectorRequirement: 1 key string; 2 operator string; 3 values []string
ConfigMap: 1 metadata ObjectMeta; 4 immutable bool?; 2 data map<string>; \
3 binaryData map<bytes>
Secret: 1 metadata ObjectMeta; 5 immutable bool?; 2 data map<bytes>; \
4 stringData map<string>; 3 type string
ServiceAccount: 1 metadata ObjectMeta; 2 secrets []ObjectReference; \
3 imagePullSecrets []LocalObjectReference; 4 automountServiceAccountToken bool?
ObjectReference: 1 kind string; 2 namespace string; 3 name string; 4 uid string; \
5 apiVersion string; 6 resourceVersion string; 7 fieldPath string
LocalObjectReference: 1 name string
Namespace: 1 metadata ObjectMeta; 2 spec NamespaceSpec; 3 status NamespaceStatus
NamespaceSpec: 1 finalizers []string
NamespaceStatus: 1 phase string; 2 conditions []NamespaceCondition
NamespaceCondition: 1 type string; 2 status string; 4 lastTransitionTime Time; \
5 reason string; 6 message string
Role: 1 metadata ObjectMeta; 2 rules []PolicyRule
ClusterRole: 1 metadata ObjectMeta; 2 rules []PolicyRule; 3 aggregationRule AggregationRule?
AggregationRule: 1 clusterRoleSelectors []LabelSelector
PolicyRule: 1 verbs []string; 2 apiGroups []string; 3 resources []string; \
4 resourceNames []string; 5 nonResourceURLs []string
RoleBinding: 1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef
ClusterRoleBinding: 1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef
Subject: 1 kind string; 2 apiGroup string; 3 name string; 4 namespace string
RoleRef: 1 apiGroup string; 2 kind string; 3 name string
Lease: 1 metadata ObjectMeta; 2 spec LeaseSpec
LeaseSpec: 1 holderIdentity string?; 2 leaseDurationSeconds int?; 3 acquireTime MicroTime?; \
4 renewTime MicroTime?; 5 leaseTransitions int?; 6 strategy string?; 7 preferredHolder string?
SelfSubjectAccessReview: 1 metadata ObjectMeta; 2 spec SelfSubjectAccessReviewSpec; \
3 status SubjectAccessReviewStatus
SelfSubjectAccessReviewSpec: 1 resourceAttributes ResourceAttributes?; \
2 nonResourceAttributes NonResourceAttributes?
ResourceAttributes: 1 namespace string; 2 verb string; 3 group string; 4 version string; \
5 resource string; 6 subresource string; 7 name string; 8 fieldSelector FieldSelectorAttributes?; \
9 labelSelector LabelSelectorAttributes?
FieldSelectorAttributes: 1 rawSelector string; 2 requirements []FieldSelectorRequirement
LabelSelectorAttributes: 1 rawSelector string; 2 requirements []LabelSelectorRequirement
NonResourceAttributes: 1 path string; 2 verb string
SubjectAccessReviewStatus: 1 allowed bool!; 4 denied bool; 2 reason string; \
3 evaluationError string
SelfSubjectRulesReview: 1 metadata ObjectMeta; 2 spec SelfSubjectRulesReviewSpec; \
3 status SubjectRulesReviewStatus
SelfSubjectRulesReviewSpec: 1 namespace string
SubjectRulesReviewStatus: 1 resourceRules []ResourceRule; 2 nonResourceRules []NonResourceRule; \
3 incomplete bool!; 4 evaluationError string
ResourceRule: 1 verbs []string; 2 apiGroups []string; 3 resources []string; \
4 resourceNames []string
NonResourceRule: 1 verbs []string; 2 nonResourceURLs []string
TokenRequest: 1 metadata ObjectMeta; 2 spec TokenRequestSpec; 3 status TokenRequestStatus
TokenRequestSpec: 1 audiences []string; 4 expirationSeconds int?; \
3 boundObjectRef BoundObjectReference?
BoundObjectReference: 1 kind string; 2 apiVersion string; 3 name string; 4 uid string
TokenRequestStatus: 1 token string; 2 expirationTimestamp Time
SelfSubjectReview: 1 metadata ObjectMeta; 2 status SelfSubjectReviewStatus
SelfSubjectReviewStatus: 1 userInfo UserInfo
UserInfo: 1 username string; 2 uid string; 3 groups []string; 4 extra map<ExtraValue>
"""

# (group, kind) -> message; lists are `<Kind>List` (ListMeta, repeated items)
KINDS: dict[tuple[str, str], str] = {
    ("", "ConfigMap"): "ConfigMap", ("", "Secret"): "Secret",
    ("", "ServiceAccount"): "ServiceAccount", ("", "Namespace"): "Namespace",
    ("", "Status"): "Status",
    ("rbac.authorization.k8s.io", "Role"): "Role",
    ("rbac.authorization.k8s.io", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("coordination.k8s.io", "Lease"): "Lease",
    ("authorization.k8s.io", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io", "SelfSubjectReview"): "SelfSubjectReview",
}


@dataclass(frozen=True, kw_only=True)
class Field:
    number: int
    name: str  # the JSON name
    type: str  # string | int | bool | bytes | Time | MicroTime | FieldsV1 | map<T> | a message
    repeated: bool = False
    pointer: bool = False  # a zero value that is sent stays in the JSON
    always: bool = False  # no omitempty: a zero value is written to JSON too


class ProtobufError(ValueError):
    """A body that is not the Kubernetes protobuf encoding of a kind the emulator decodes."""


def _parse_schema(text: str) -> dict[str, dict[int, Field]]:
    messages: dict[str, dict[int, Field]] = {}
    for line in text.replace("\\\n", "").strip().splitlines():
        name, _, body = line.partition(":")
        fields: dict[int, Field] = {}
        for part in body.split(";"):
            number, json_name, kind = part.split()
            repeated = kind.startswith("[]")
            pointer, always = kind.endswith("?"), kind.endswith("!")
            kind = kind.removeprefix("[]").rstrip("?!")
            fields[int(number)] = Field(number=int(number), name=json_name, type=kind,
                                        repeated=repeated, pointer=pointer, always=always)
        messages[name.strip()] = fields
    return messages


MESSAGES = _parse_schema(_SCHEMA)


def message_for(api_version: str, kind: str) -> str | None:
    """The message a kind (or its list) is encoded as, None when the emulator has no table."""
    group = api_version.rpartition("/")[0]
    if kind.endswith("List") and (group, kind.removesuffix("List")) in KINDS:
        return kind
    return KINDS.get((group, kind))


# ---- wire -----------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as ten bytes, two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


# ---- decode ---------------------------------------------------------------------------------

def _time(data: bytes, *, micro: bool) -> str | None:
    parts = {n: v for n, _w, v in _fields(data)}
    seconds, nanos = _signed(parts.get(1, 0)), parts.get(2, 0)
    if not seconds and not nanos:
        return None  # the zero Time: Go writes null
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _scalar(field: Field, wire: int, value: Any) -> Any:
    kind = field.type
    if kind == "string":
        return bytes(value).decode()
    if kind == "int":
        return _signed(value)
    if kind == "bool":
        return bool(value)
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind in ("Time", "MicroTime"):
        return _time(value, micro=kind == "MicroTime")
    if kind == "FieldsV1":
        raw = {n: v for n, _w, v in _fields(value)}.get(1, b"")
        return orjson.loads(raw) if raw else {}
    if kind.startswith("map<"):
        entry = {n: v for n, _w, v in _fields(value)}
        inner = kind[4:-1]
        key = bytes(entry.get(1, b"")).decode()
        raw_value = entry.get(2, b"")
        if inner == "string":
            return key, bytes(raw_value).decode()
        if inner == "bytes":
            return key, base64.b64encode(raw_value).decode()
        return key, [bytes(v).decode() for n, _w, v in _fields(raw_value) if n == 1]
    if wire != 2:
        raise ProtobufError(f"{field.name}: expected a message")
    return decode_message(kind, value)


def _is_zero(value: Any) -> bool:
    return value in ("", 0, False, None) and value is not True


def decode_message(message: str, data: bytes) -> dict[str, Any]:
    """One message as the JSON object Go would write for it."""
    if message.endswith("List") and message not in MESSAGES:
        item = message.removesuffix("List")
        parts = list(_fields(data))
        meta = [v for n, _w, v in parts if n == 1]
        return {"metadata": decode_message("ListMeta", meta[0] if meta else b""),
                "items": [decode_message(item, v) for n, _w, v in parts if n == 2]}
    schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field this table does not know: proto2 skips it
        decoded = _scalar(field, wire, value)
        if field.type.startswith("map<"):
            key, item = decoded
            out.setdefault(field.name, {})[key] = item
        elif field.repeated:
            out.setdefault(field.name, []).append(decoded)
        else:
            out[field.name] = decoded
    for field in schema.values():
        value = out.get(field.name)
        if field.name in out and _is_zero(value) and not field.pointer:
            if field.always and value is not None:
                continue
            del out[field.name]
    for field in schema.values():
        if field.always and field.name not in out and field.type == "bool":
            out[field.name] = False
    return out


def decode(raw: bytes) -> dict[str, Any]:
    """A request body (magic + runtime.Unknown) as the JSON object; ProtobufError for anything
    else, or for a kind the emulator has no table for."""
    if not raw.startswith(MAGIC):
        raise ProtobufError("provided object is not a Kubernetes protobuf message (no k8s "
                            "prefix)")
    unknown = decode_message("Unknown", raw[len(MAGIC):])
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufError(f"no protobuf decoding for {kind or 'an object'} "
                            f"({api_version or 'no apiVersion'})")
    body = decode_message(message, base64.b64decode(unknown.get("raw", "")))
    return {"apiVersion": api_version, "kind": kind, **body}


# ---- encode ---------------------------------------------------------------------------------

def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field `number` of wire type 2 (bytes, string, embedded message) holding `payload`."""
    return _key(number, 2) + _varint(len(payload)) + payload


def _encode_time(text: str) -> bytes:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    seconds = int(moment.timestamp())
    nanos = moment.microsecond * 1000
    return _key(1, 0) + _varint(seconds) + (_key(2, 0) + _varint(nanos) if nanos else b"")


def _encode_value(field: Field, value: Any) -> bytes:
    kind, number = field.type, field.number
    if kind == "string":
        return length_delimited(number, str(value).encode())
    if kind == "int":
        return _key(number, 0) + _varint(int(value))
    if kind == "bool":
        return _key(number, 0) + _varint(1 if value else 0)
    if kind == "bytes":
        return length_delimited(number, base64.b64decode(value))
    if kind in ("Time", "MicroTime"):
        return length_delimited(number, _encode_time(str(value)))
    if kind == "FieldsV1":
        return length_delimited(number, length_delimited(1, orjson.dumps(value)))
    if not isinstance(value, dict):
        raise ProtobufError(f"{field.name}: expected an object")
    return length_delimited(number, encode_message(kind, value))


def _encode_map(field: Field, value: dict[str, Any]) -> bytes:
    inner = field.type[4:-1]
    out = b""
    for key in sorted(value):
        item = value[key]
        if inner == "string":
            encoded = length_delimited(2, str(item).encode())
        elif inner == "bytes":
            encoded = length_delimited(2, base64.b64decode(item))
        else:
            encoded = length_delimited(2, b"".join(length_delimited(1, str(v).encode())
                                                    for v in item))
        out += length_delimited(field.number, length_delimited(1, key.encode()) + encoded)
    return out


def encode_message(message: str, obj: dict[str, Any]) -> bytes:
    """A JSON object as the message; ProtobufError for a field the table does not know (the
    caller then answers JSON rather than lose it)."""
    if message.endswith("List") and message not in MESSAGES:
        item = message.removesuffix("List")
        return length_delimited(1, encode_message("ListMeta", obj.get("metadata") or {})) + \
            b"".join(length_delimited(2, encode_message(item, i)) for i in obj.get("items") or [])
    schema = MESSAGES[message]
    by_name = {f.name: f for f in schema.values()}
    unknown = set(obj) - set(by_name) - {"apiVersion", "kind"}
    if unknown:
        raise ProtobufError(f"{message}: no field {sorted(unknown)[0]!r} in the table")
    out = b""
    for field in sorted(schema.values(), key=lambda f: f.number):
        value = obj.get(field.name)
        if value is None:
            continue
        if field.type.startswith("map<"):
            out += _encode_map(field, value)
        elif field.repeated:
            out += b"".join(_encode_value(field, v) for v in value)
        else:
            out += _encode_value(field, value)
    return out


def encode(obj: dict[str, Any]) -> bytes:
    """An object (or list) as kube-apiserver writes it in protobuf: magic + runtime.Unknown."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufError(f"no protobuf encoding for {kind} ({api_version})")
    raw = encode_message(message, obj)
    type_meta = length_delimited(1, api_version.encode()) + length_delimited(2, kind.encode())
    return MAGIC + length_delimited(1, type_meta) + length_delimited(2, raw) + \
        length_delimited(3, b"") + length_delimited(4, b"")
