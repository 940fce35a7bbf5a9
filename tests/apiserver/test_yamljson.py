"""YAML bodies become plain JSON data, or one error: never a value JSON cannot encode."""

from __future__ import annotations

import orjson
import pytest

from kubevirt_usb.apiserver.yamljson import YAMLBodyError, load_yaml_as_json


def test_keys_become_strings_and_timestamps_stay_as_written() -> None:
    data = load_yaml_as_json(b"a: {1: x, 2.5: y, false: z, null: n}\nb: 2020-01-01\n"
                             b"c: 2020-01-01 10:00:00\n")
    assert data == {"a": {"1": "x", "2.5": "y", "false": "z", "null": "n"}, "b": "2020-01-01",
                    "c": "2020-01-01 10:00:00"}


def test_binary_and_sets_become_json() -> None:
    data = load_yaml_as_json(b"a: !!binary aGVsbG8=\nb: !!set {x, y}\n")
    assert data == {"a": "hello", "b": {"x": None, "y": None}}
    orjson.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "exceeded max depth"),
        (b"a: &m {b: *m}\n", "refers to the node that contains it"),
        (b"a: .nan\n", "unsupported value: NaN"),
        (b"a: [unclosed\n", "while parsing"),
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
