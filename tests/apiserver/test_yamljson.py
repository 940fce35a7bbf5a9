"""YAML bodies become the JSON sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) makes of them, or one
error: never a value JSON cannot encode."""

from __future__ import annotations

import orjson
import pytest

from kubevirt_usb.apiserver.yamljson import (
    YAMLBodyError,
    go_float32_g,
    load_yaml_as_json,
    resolve_scalar,
)


def test_keys_become_strings_and_timestamps_stay_as_written() -> None:
    data = load_yaml_as_json(b"a: {1: x, 2.5: w, false: z, 1e3: t}\nb: 2020-01-01\n"
                             b"c: 2020-01-01 10:00:00\n")
    assert data == {"a": {"1": "x", "2.5": "w", "false": "z", "1000": "t"}, "b": "2020-01-01",
                    "c": "2020-01-01 10:00:00"}


def test_binary_and_sets_become_json() -> None:
    data = load_yaml_as_json(b"a: !!binary aGVsbG8=\nb: !!set {x, z}\nc: !!omap [k: v]\n")
    assert data == {"a": "hello", "b": {"x": None, "z": None}, "c": [{"k": "v"}]}
    orjson.dumps(data)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1 booleans, in go-yaml v2's three spellings each
        *((word, True) for word in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                    "on", "On", "ON")),
        *((word, False) for word in ("n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                     "off", "Off", "OFF")),
        # other spellings are strings
        ("yEs", "yEs"), ("oN", "oN"), ("nO", "nO"), ("tRUE", "tRUE"), ("x", "x"),
        # nulls
        ("~", None), ("null", None), ("Null", None), ("NULL", None), ("nULL", "nULL"),
        # integers as strconv.ParseInt(s, 0, 64) reads them, underscores dropped
        ("0755", 493), ("0o17", 15), ("0x1F", 31), ("0X1f", 31), ("0b101", 5), ("-0b101", -5),
        ("+12", 12), ("1_000", 1000), ("0", 0), ("-0", 0),
        ("18446744073709551615", 18446744073709551615),
        # floats: Go's JSON writes an integral one without a fraction
        ("1e3", 1000), ("1.5", 1.5), (".5", 0.5), ("-.5", -0.5), ("1.", 1), ("08", 8),
        ("1e21", 1e21), ("+1.5e-3", 0.0015), ("99999999999999999999", 1e20),
        # strings go-yaml v2 does not read as numbers (PyYAML's base 60 is one of them)
        ("1:20", "1:20"), ("0x", "0x"), ("1e400", "1e400"), (".", "."), ("-x", "-x"),
        ("2001-12-14", "2001-12-14"), ("12abc", "12abc"), ("=", "="),
    ],
)
def test_plain_scalars_resolve_as_go_yaml_v2_resolves_them(text: str, value: object) -> None:
    assert load_yaml_as_json(f"a: {text}\n".encode()) == {"a": value}
    assert type(load_yaml_as_json(f"a: {text}\n".encode())["a"]) is type(value)


def test_quoted_and_str_tagged_scalars_stay_strings() -> None:
    assert load_yaml_as_json(b"a: 'yes'\nb: \"0755\"\nc: !!str on\nd: !!int '0x10'\n"
                             b"e: !!float 3\nf: !!bool Y\n") == {
        "a": "yes", "b": "0755", "c": "on", "d": 16, "e": 3, "f": True}


def test_a_name_that_yaml_1_1_reads_as_a_boolean_is_a_boolean() -> None:
    assert load_yaml_as_json(b"metadata:\n  name: y\ndata: {a: yes, b: Off}\n") == {
        "metadata": {"name": True}, "data": {"a": True, "b": False}}


def test_merge_keys_follow_go_yaml_v2() -> None:
    text = b"base: &b {a: 1, b: 2}\nother: &o {b: 3, c: 4}\nm: {a: 0, <<: *b}\nl: {<<: [*b, *o]}\n"
    data = load_yaml_as_json(text)
    assert data["m"] == {"a": 1, "b": 2}  # v2: a merge after a key overwrites it
    assert data["l"] == {"a": 1, "b": 2, "c": 4}  # the list's earlier maps win
    assert load_yaml_as_json(b"m: {'<<': {a: 1}}\n") == {"m": {"<<": {"a": 1}}}


def test_only_the_first_document_counts() -> None:
    assert load_yaml_as_json(b"a: 1\n---\nb: 2\n") == {"a": 1}


def test_unknown_tags_are_ignored() -> None:
    assert load_yaml_as_json(b"a: !thing 5\nb: !thing {c: d}\n") == {"a": "5", "b": {"c": "d"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "exceeded max depth"),
        (b"a: &m {b: *m}\n", "refers to the node that contains it"),
        (b"a: .nan\n", "unsupported value: NaN"),
        (b"a: -.inf\n", "unsupported value: -Inf"),
        (b"a: [unclosed\n", "while parsing"),
        (b"a: {null: v}\n", r"unsupported map key of type: %!s\(<nil>\), key: <nil>, "
                            r'value: "v"'),
        (b"a: {~: 1}\n", "unsupported map key of type"),
        (b"a: {18446744073709551615: 1}\n", "unsupported map key of type: uint64, key: "
                                            "0xffffffffffffffff, value: 1"),
        (b"a: !!int abc\n", "cannot decode !!str `abc` as a !!int"),
        (b"a: !!bool 1\n", "cannot decode !!int `1` as a !!bool"),
        (b"a: !!binary '*'\n", "invalid base64"),
        (b"a: {<<: 5}\n", "map merge requires map or sequence of maps"),
        (b"a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + b"".join(
            f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n".encode() for i in range(1, 9)),
         "excessive aliasing"),
    ],
)
def test_what_json_cannot_hold_is_one_error(text: bytes, expected: str) -> None:
    with pytest.raises(YAMLBodyError, match=expected):
        load_yaml_as_json(text)


def test_shared_aliases_within_bounds_are_expanded() -> None:
    assert load_yaml_as_json(b"a: &x {k: v}\nb: *x\n") == {"a": {"k": "v"}, "b": {"k": "v"}}


def test_an_empty_document_is_null() -> None:
    assert load_yaml_as_json(b"# nothing\n") is None


@pytest.mark.parametrize(
    ("text", "tag", "value"),
    [("yes", "", True), ("yes", "tag:yaml.org,2002:str", "yes"), ("", "", None),
     (".inf", "", float("inf")), ("0o7", "", 7)],
)
def test_resolve_scalar_names_the_tag_go_yaml_gives(text: str, tag: str, value: object) -> None:
    assert resolve_scalar(text, tag=tag)[1] == value


@pytest.mark.parametrize(
    ("value", "text"),
    [(2.5, "2.5"), (1000.0, "1000"), (1e6, "1e+06"), (123456.0, "123456"),
     (123456789.0, "1.2345679e+08"), (0.1, "0.1"), (0.0001, "0.0001"), (0.00001, "1e-05"),
     (-1.5, "-1.5"), (0.0, "0"), (float("inf"), ".inf"), (float("-inf"), "-.inf"),
     (float("nan"), ".nan"), (1e39, ".inf"), (3.14159265, "3.1415927")],
)
def test_float_keys_are_written_as_go_formats_a_float32(value: float, text: str) -> None:
    assert go_float32_g(value) == text
