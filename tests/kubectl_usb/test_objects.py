"""Reading objects with missing parts, and names made from values."""

from __future__ import annotations

import re

from kubevirt_usb.kubectl_usb.objects import (
    dig,
    meta,
    name,
    name_problem,
    namespace,
    readable,
    slug,
    spec,
    text,
)

DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_missing_parts_read_as_empty() -> None:
    assert spec(None) == {}
    assert meta({"metadata": "nonsense"}) == {}
    assert name({}) == ""
    assert namespace({"metadata": {"namespace": "lab"}}) == "lab"
    assert dig({"a": {"b": 1}}, "a", "b") == 1
    assert dig({"a": 3}, "a", "b") is None


def test_table_text_shows_nothing_as_a_dash() -> None:
    assert text(None) == "-"
    assert text("") == "-"
    assert text(0) == "0"


def test_readable_names_are_lower_case_dns_labels() -> None:
    assert readable("allow", "serial", "AAA1") == "allow-serial-aaa1"
    assert readable("a b", "/c/") == "a-b-c"
    assert len(readable("x" * 100)) == 63


def test_slugs_tell_different_values_apart() -> None:
    assert slug("vm1", "46f4-0001-aaa1") == "vm1-46f4-0001-aaa1"
    upper, lower = slug("vm1", "AAA1"), slug("vm1", "aaa1")
    assert upper != lower
    assert lower == "vm1-aaa1"
    assert DNS.match(upper)
    long = slug("x" * 300, limit=63)
    assert len(long) <= 63
    assert DNS.match(long)
    assert slug("x" * 300, limit=63) != slug("x" * 301, limit=63)


def test_names_that_cannot_name_an_object_say_why() -> None:
    assert name_problem("vm1") is None
    assert name_problem("web.example-1", what="VM name") is None
    assert name_problem("vm1/status", what="VM name") == (
        "'vm1/status' is not a valid VM name: lowercase letters, digits, '-' and '.', at most 253 "
        "characters")
    for bad in ("", "..", "Vm1", "vm_1", "-vm", "vm1?x=1", "x" * 254, "v\u00e9"):
        assert name_problem(bad) is not None, bad
    assert name_problem("lab", what="namespace") is None
    for bad in ("a.b", "Bad NS", "x" * 64, "default/virtualmachines"):
        assert name_problem(bad, what="namespace") is not None, bad
