"""Label and field selectors behave, and fail, like a kube-apiserver's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.apiserver.errors import APIError
from kubevirt_usb.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    go_quote,
    label_key_errors,
    label_selector_from_dict,
    object_fields,
    parse_field_selector,
    parse_label_selector,
)

NAME_PART = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start " \
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex " \
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"


def _label_error(text: str) -> str:
    with pytest.raises(APIError) as info:
        parse_label_selector(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    return info.value.message


def _field_error(text: str, **kwargs: object) -> str:
    with pytest.raises(APIError) as info:
        parse_field_selector(text, supported=("metadata.name", "metadata.namespace"),
                             **kwargs)  # type: ignore[arg-type]
    assert info.value.code == 400
    return info.value.message


# ---- label selector grammar ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app==web", {"app": "web"}, True),
    ("app!=web", {"app": "db"}, True),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier in (a,b)", {}, False),
    ("tier notin (a)", {}, True),
    ("tier notin (a)", {"tier": "a"}, False),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("  app = web , !gone ", {"app": "web"}, True),
    ("app=web,env=prod", {"app": "web", "env": "dev"}, False),
    ("x in (foo,,baz)", {"x": ""}, True),
    ("x in ()", {"x": ""}, True),
    ("app=", {"app": ""}, True),
    ("n>3", {"n": "4"}, True),
    ("n>3", {"n": "3"}, False),
    ("n<3", {"n": "x"}, False),
    ("in in (in)", {"in": "in"}, True),
    ("example.com/app=web", {"example.com/app": "web"}, True),
])
def test_label_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_empty_label_selector_matches_everything() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches({})
    assert parse_label_selector("   ").empty


@pytest.mark.parametrize(("text", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
    ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART}'),
    ("n>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' '
            "operators, the value must be an integer"),
    ("k=a b", "found 'b', expected: ',' or 'end of string'"),
    ("k=-x", 'unable to parse requirement: values[0][k]: Invalid value: "-x": a valid label must '
             "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
             "must start and end with an alphanumeric character (e.g. 'MyValue',  or "
             "'my_value',  or '12345', regex used for validation is "
             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
])
def test_invalid_label_selectors_are_400_with_upstream_text(text: str, message: str) -> None:
    assert _label_error(text) == message


def test_label_key_prefix_errors() -> None:
    assert label_key_errors("Example.com/app") == [
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
        "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    assert label_key_errors("/app") == ["prefix part must be non-empty"]
    assert label_key_errors("a" * 64) == ["name part must be no more than 63 characters"]
    assert label_key_errors("example.com/app") == []


def test_label_selector_renders_like_upstream() -> None:
    selector = parse_label_selector("z notin (b,a),!y,x in (c), w, v==1, u!=2")
    assert str(selector) == "u!=2,v==1,w,x in (c),!y,z notin (a,b)"
    assert selector.requires_exact_match("x") == "c"
    assert selector.requires_exact_match("u") is None
    assert selector.requires_exact_match("q") is None


# -- round trip: render a generated selector, parse it, get the same requirements back --

_ALNUM = "abcxyzABC019"
_key_name = st.one_of(
    st.sampled_from(_ALNUM),
    st.builds(lambda a, mid, b: a + mid + b, st.sampled_from(_ALNUM),
              st.text(_ALNUM + "-_.", max_size=6), st.sampled_from(_ALNUM)))
_label = st.builds(lambda a, mid, b: a + mid + b, st.sampled_from("abz09"),
                   st.text("abz09-", max_size=4), st.sampled_from("abz09"))
_prefix = st.builds(lambda parts: ".".join(parts), st.lists(_label, min_size=1, max_size=3))
_keys = st.one_of(_key_name, st.builds(lambda p, n: f"{p}/{n}", _prefix, _key_name))
_values = st.one_of(st.just(""), _key_name)


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    key = draw(_keys)
    operator = draw(st.sampled_from(["in", "notin", "=", "==", "!=", "exists", "!"]))
    if operator in ("exists", "!"):
        return Requirement(key=key, operator=operator)
    if operator in ("in", "notin"):
        values = draw(st.lists(_values, min_size=1, max_size=4, unique=True))
        return Requirement(key=key, operator=operator, values=tuple(sorted(values)))
    return Requirement(key=key, operator=operator, values=(draw(_values),))


@given(st.lists(_requirements(), max_size=5))
def test_rendered_selectors_parse_back(requirements: list[Requirement]) -> None:
    selector = LabelSelector(requirements=tuple(sorted(requirements, key=lambda r: r.key)))
    parsed = parse_label_selector(str(selector))
    assert sorted(parsed.requirements, key=repr) == sorted(selector.requirements, key=repr)


@given(st.lists(_requirements(), max_size=5),
       st.dictionaries(_keys, _values, max_size=6))
def test_rendered_selector_matches_like_its_requirements(
        requirements: list[Requirement], labels: dict[str, str]) -> None:
    parsed = parse_label_selector(",".join(str(r) for r in requirements))
    assert parsed.matches(labels) == all(r.matches(labels) for r in requirements)


def _outcome(text: str) -> tuple[int, bool]:
    try:
        parse_label_selector(text)
    except APIError as exc:
        return exc.code, bool(exc.message)
    return 200, True


@given(st.text(max_size=30))
def test_any_text_parses_or_is_a_bad_request(text: str) -> None:
    assert _outcome(text) in ((200, True), (400, True))


# ---- metav1.LabelSelector ----------------------------------------------------------------------


def test_dict_selector_none_matches_nothing_and_empty_matches_everything() -> None:
    assert not label_selector_from_dict(None).matches({})
    assert label_selector_from_dict({}).matches({"a": "b"})
    assert label_selector_from_dict({"matchLabels": {}, "matchExpressions": []}).empty


def test_dict_selector_combines_labels_and_expressions() -> None:
    selector = label_selector_from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "gone", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
        ]})
    assert selector.matches({"app": "web", "tier": "a", "zone": "z"})
    assert not selector.matches({"app": "web", "tier": "a", "zone": "z", "gone": ""})
    assert not selector.matches({"app": "web", "tier": "a", "zone": "z", "env": "prod"})
    assert not selector.matches({"app": "web", "tier": "a"})


@pytest.mark.parametrize(("selector", "message"), [
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]},
     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not '
     "exist"),
    ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": {NAME_PART}'),
])
def test_invalid_dict_selectors(selector: dict[str, object], message: str) -> None:
    with pytest.raises(APIError) as info:
        label_selector_from_dict(selector)
    assert info.value.message == message


# ---- field selectors ---------------------------------------------------------------------------


def test_field_selector_terms() -> None:
    selector = parse_field_selector("metadata.name=a,metadata.namespace!=kube-system",
                                    supported=("metadata.name", "metadata.namespace"))
    assert selector.matches({"metadata.name": "a", "metadata.namespace": "default"})
    assert not selector.matches({"metadata.name": "a", "metadata.namespace": "kube-system"})
    assert not selector.matches({"metadata.name": "b", "metadata.namespace": "default"})
    assert selector.requires_exact_match("metadata.name") == "a"
    assert selector.requires_exact_match("metadata.namespace") is None


def test_field_selector_double_equals_and_escapes() -> None:
    selector = parse_field_selector(r"spec.nodeName==node\,1\=x\\", supported=("spec.nodeName",))
    assert selector.matches({"spec.nodeName": "node,1=x\\"})


def test_missing_fields_read_as_empty() -> None:
    selector = parse_field_selector("spec.nodeName=", supported=("spec.nodeName",))
    assert selector.matches({})
    assert parse_field_selector("", supported=()) == FieldSelector()


@pytest.mark.parametrize(("text", "message"), [
    ("spec.foo=x", "field label not supported: spec.foo"),
    ("metadata.name=a,b=c,a=d", "field label not supported: a"),
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    (r"metadata.name=a\q", r"invalid field selector: invalid escape sequence: \q"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_invalid_field_selectors(text: str, message: str) -> None:
    assert _field_error(text) == message


def test_field_selector_default_conversion_text() -> None:
    assert _field_error("spec.x=1", default_conversion=True) == \
        '"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_object_fields_reads_dotted_paths() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"nodeName": "n1", "hostNetwork": True}, "status": {}}
    assert object_fields(pod, extra=("spec.nodeName", "spec.hostNetwork", "status.phase")) == {
        "metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "n1",
        "spec.hostNetwork": "true", "status.phase": ""}
    assert object_fields({"metadata": {"name": "node"}}) == {
        "metadata.name": "node", "metadata.namespace": ""}


def test_go_quote_escapes_like_strconv() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
