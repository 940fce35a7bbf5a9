"""Label and field selectors, parsed and matched the way a kube-apiserver does for list and watch.

The grammar, the order of checks and every error text follow k8s.io/apimachinery
(`labels.Parse`, `fields.ParseSelector`, `metav1.LabelSelectorAsSelector`) as of Kubernetes
1.30; a kube-apiserver returns those texts verbatim in a 400 BadRequest `Status`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.apiserver.errors import bad_request

# ---- operators (k8s.io/apimachinery/pkg/selection) ----------------------------------------

IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_ALL_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)


# ---- Go-style value rendering, shared with rbac.py and schema.py ----------------------------

_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """`text` as Go's `%q` (strconv.Quote) prints it."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_string_slice(values: Sequence[str]) -> str:
    """A `[]string` as Go's `%#v` prints it."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def go_aggregate(messages: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


# ---- label key / value validation (k8s.io/apimachinery/pkg/util/validation, 1.30) ----------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                       "and end with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _byte_len(text: str) -> int:
    return len(text.encode())


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > 253:
        errs.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def label_key_errors(key: str) -> list[str]:
    """What is wrong with a label key (IsQualifiedName), empty when it is valid."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name " + _regex_error(
            _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(
            _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """What is wrong with a label value, empty when it is valid."""
    errs = []
    if _byte_len(value) > 63:
        errs.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT,
                                 "MyValue", "my_value", "12345"))
    return errs


# ---- label selectors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One condition of a label selector: `key <operator> values`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            return self._compares(labels)
        return False

    def _compares(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels or len(self.values) != 1:
            return False
        have, want = _go_int(labels[self.key]), _go_int(self.values[0])
        if have is None or want is None:
            return False
        return have > want if self.operator == GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator == EXISTS:
            return self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({shown})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{shown}"


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where Go reports an error."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: all requirements must hold. `nothing` matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every object)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have (`key=v`, `key==v`, `key in (v)`), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _field_error(path: str, value: str, detail: str) -> str:
    """A field.Invalid error as Go prints it (`<nil>` stands for no path)."""
    return f"{path}: Invalid value: {value}: {detail}"


def _requirement_errors(key: str, operator: str, values: Sequence[str]) -> list[str]:
    """The checks of labels.NewRequirement, as `field.Error` strings."""
    errs = []
    key_errs = label_key_errors(key)
    if key_errs:
        errs.append(_field_error("key", go_quote(key), "; ".join(key_errs)))
    shown = go_string_slice(values)
    if operator in (IN, NOT_IN):
        if not values:
            errs.append(_field_error("values", shown,
                                     "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(_field_error("values", shown,
                                     "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(_field_error("values", shown,
                                     "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(_field_error("values", shown,
                                     "for 'Gt', 'Lt' operators, exactly one value is required"))
        errs.extend(
            _field_error(f"values[{i}]", go_quote(v),
                         "for 'Gt', 'Lt' operators, the value must be an integer")
            for i, v in enumerate(values) if _go_int(v) is None)
    else:
        supported = ", ".join(go_quote(o) for o in _ALL_OPERATORS)
        errs.append(f"operator: Unsupported value: {go_quote(operator)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(values):
        value_errs = label_value_errors(v)
        if value_errs:
            errs.append(_field_error(f"values[{i}][{key}]", go_quote(v), "; ".join(value_errs)))
    return errs


def _new_requirement(key: str, operator: str, values: Sequence[str]) -> Requirement:
    errs = _requirement_errors(key, operator, values)
    if errs:
        raise _SelectorError(go_aggregate(errs))
    return Requirement(key=key, operator=operator, values=tuple(values))


class _SelectorError(Exception):
    """A parse failure; its text is what the apiserver puts in the 400 Status message."""


# -- the lexer and parser of labels.Parse --

_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DOUBLE_EQ, _EQ, _GT, _IDENT, _IN, _LT, _NOT_EQ, _NOT_IN, \
    _OPEN = range(14)
_TOKENS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DOUBLE_EQ, "=": _EQ, ">": _GT, "in": _IN,
           "<": _LT, "!=": _NOT_EQ, "notin": _NOT_IN, "(": _OPEN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    """Tokens of a selector string, ending with the end-of-string token."""
    end = text.find("\x00")  # Go's lexer reads a NUL byte as the end of input
    source = text if end < 0 else text[:end]
    items: list[tuple[int, str]] = []
    pos, size = 0, len(source)
    while True:
        while pos < size and source[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            items.append((_EOS, ""))
            return items
        start = pos
        if source[pos] in _SPECIAL:
            token, literal = _ERROR, ""
            while pos < size and source[pos] in _SPECIAL:
                candidate = source[start:pos + 1]
                if candidate in _TOKENS:
                    token, literal = _TOKENS[candidate], candidate
                elif token != _ERROR:
                    break
                pos += 1
            pos = start + len(literal) if token != _ERROR else pos
            items.append((token, literal or f"error expected: keyword found '{source[start:pos]}'"))
        else:
            while pos < size and source[pos] not in _SPECIAL and source[pos] not in _WHITESPACE:
                pos += 1
            word = source[start:pos]
            items.append((_TOKENS.get(word, _IDENT), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def _at(self, index: int, values: bool) -> tuple[int, str]:
        token, literal = self.items[min(index, len(self.items) - 1)]
        if values and token in (_IN, _NOT_IN):
            token = _IDENT
        return token, literal

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._at(self.position, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.position += 1
        return self._at(self.position - 1, values)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self.lookahead()
            if token == _EOS:
                return requirements
            if token not in (_IDENT, _NOT):
                raise _SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except _SelectorError as exc:
                raise _SelectorError(f"unable to parse requirement: {exc}") from None
            token, literal = self.consume()
            if token == _EOS:
                return requirements
            if token != _COMMA:
                raise _SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            token, literal = self.lookahead()
            if token not in (_IDENT, _NOT):
                raise _SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, operator, sorted(values))

    def key_and_operator(self) -> tuple[str, str]:
        operator = ""
        token, literal = self.consume()
        if token == _NOT:
            operator = DOES_NOT_EXIST
            token, literal = self.consume()
        if token != _IDENT:
            raise _SelectorError(f"found '{literal}', expected: identifier")
        key_errs = label_key_errors(literal)
        if key_errs:
            raise _SelectorError(_field_error("<nil>", go_quote(literal), "; ".join(key_errs)))
        if self.lookahead()[0] in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def operator(self) -> str:
        token, literal = self.consume(values=False)
        operators = {_IN: IN, _EQ: EQUALS, _DOUBLE_EQ: DOUBLE_EQUALS, _GT: GREATER_THAN,
                     _LT: LESS_THAN, _NOT_IN: NOT_IN, _NOT_EQ: NOT_EQUALS}
        if token not in operators:
            raise _SelectorError(
                f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operators[token]

    def value_set(self) -> set[str]:
        token, literal = self.consume()
        if token != _OPEN:
            raise _SelectorError(f"found '{literal}' expected: '('")
        token, literal = self.lookahead()
        if token in (_IDENT, _COMMA):
            values = self.identifiers()
            self.consume()  # the ')' that ended the list
            return values
        if token == _CLOSE:
            self.consume()
            return {""}
        raise _SelectorError(f"found '{literal}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            token, literal = self.consume()
            if token == _IDENT:
                values.add(literal)
                after, after_literal = self.lookahead()
                if after == _CLOSE:
                    return values
                if after != _COMMA:
                    raise _SelectorError(f"found '{after_literal}', expected: ',' or ')'")
            elif token == _COMMA:
                if not values:
                    values.add("")
                after = self.lookahead()[0]
                if after == _CLOSE:
                    values.add("")
                    return values
                if after == _COMMA:
                    values.add("")
            else:
                raise _SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_EOS, _COMMA):
            return {""}
        token, literal = self.consume()
        if token == _IDENT:
            return {literal}
        raise _SelectorError(f"found '{literal}', expected: identifier")


def _by_key(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda r: r.key))


def parse_label_selector(text: str) -> LabelSelector:
    """`?labelSelector=` as labels.Parse reads it; a 400 BadRequest with upstream's text if invalid.

    Grammar: comma-separated requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`,
    `k`, `!k`, `k>1`, `k<1`; an empty string selects everything.
    """
    try:
        return LabelSelector(requirements=_by_key(_Parser(text).parse()))
    except _SelectorError as exc:
        raise bad_request(str(exc)) from None


_DICT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels + matchExpressions) as upstream reads it.

    None (the field is absent) matches nothing, `{}` matches everything, as
    LabelSelectorAsSelector does. An invalid selector raises a 400 BadRequest carrying
    upstream's error text.
    """
    if selector is None:
        return LabelSelector(nothing=True)
    try:
        return LabelSelector(requirements=_by_key(_dict_requirements(selector)))
    except _SelectorError as exc:
        raise bad_request(str(exc)) from None


def _dict_requirements(selector: Mapping[str, Any]) -> list[Requirement]:
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    expressions: Sequence[Mapping[str, Any]] = selector.get("matchExpressions") or []
    requirements = [_new_requirement(key, EQUALS, [match_labels[key]])
                    for key in sorted(match_labels)]
    for expression in expressions:
        name = str(expression.get("operator", ""))
        if name not in _DICT_OPERATORS:
            raise _SelectorError(f"{go_quote(name)} is not a valid label selector operator")
        requirements.append(_new_requirement(str(expression.get("key", "")),
                                             _DICT_OPERATORS[name],
                                             list(expression.get("values") or [])))
    return requirements


# ---- field selectors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: `field=value` or, with `negated`, `field!=value`."""

    field: str
    value: str
    negated: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negated


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: all terms must hold."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal (as upstream uses `metadata.name=x` to authorize lists)."""
        for r in self.requirements:
            if r.field == field and not r.negated:
                return r.value
        return None


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for index, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for index in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, index):
                return term[:index], op, term[index + len(op):]
    return None


def _unescape(value: str) -> str:
    if not any(ch in value for ch in "\\,="):
        return value
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise _SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise _SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise _SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str, *, supported: Collection[str],
                         default_conversion: bool = False) -> FieldSelector:
    """`?fieldSelector=` as fields.ParseSelector + the kind's field label conversion read it.

    Terms are `f=v`, `f==v`, `f!=v` joined by commas (`\\,`, `\\=`, `\\\\` escape values). A
    field outside `supported` is a 400 `field label not supported: <f>` (custom resources and the
    core kinds with registered conversions); with `default_conversion` the text is that of kinds
    without one (ConfigMaps, Leases, apps/*): `"<f>" is not a known field selector: only
    "metadata.name", "metadata.namespace"`.
    """
    try:
        terms = _field_terms(text)
        for term in terms:
            _check_supported(term.field, supported, default_conversion=default_conversion)
    except _SelectorError as exc:
        raise bad_request(str(exc)) from None
    return FieldSelector(requirements=tuple(terms))


def _field_terms(text: str) -> list[FieldRequirement]:
    terms = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise _SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = split
        terms.append(FieldRequirement(field=field, value=_unescape(value), negated=op == "!="))
    return terms


def _check_supported(field: str, supported: Collection[str], *, default_conversion: bool) -> None:
    if field in supported:
        return
    if default_conversion:
        raise _SelectorError(f"{go_quote(field)} is not a known field selector: only "
                             '"metadata.name", "metadata.namespace"')
    raise _SelectorError(f"field label not supported: {field}")


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dotted(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def object_fields(obj: Mapping[str, Any], *, extra: Collection[str] = ()) -> dict[str, str]:
    """The field set a field selector is matched against: metadata.name, metadata.namespace and
    the dotted paths in `extra` (`spec.nodeName`, `involvedObject.name`, ...); missing is ""."""
    return {path: _field_text(_dotted(obj, path))
            for path in ("metadata.name", "metadata.namespace", *extra)}


__all__ = [
    "FieldRequirement", "FieldSelector", "LabelSelector", "Requirement", "go_aggregate",
    "go_quote", "go_string_slice", "label_key_errors", "label_selector_from_dict",
    "label_value_errors", "object_fields", "parse_field_selector", "parse_label_selector",
]
