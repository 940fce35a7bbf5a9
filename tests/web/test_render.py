"""The templates escape every value they are given."""

from __future__ import annotations

import datetime as dt
import unicodedata
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb.web import views
from kubevirt_usb.web.live import sse_message
from kubevirt_usb.web.render import Templates


def test_values_are_escaped_in_text_and_attributes() -> None:
    html = Templates().render("_alert.html", tone="danger", title="<b>t</b>",
                              text='" onmouseover="x')
    assert "&lt;b&gt;t&lt;/b&gt;" in html
    assert "&#34; onmouseover=&#34;x" in html
    assert "<b>" not in html


def test_missing_values_are_errors_not_blanks() -> None:
    with pytest.raises(jinja2.UndefinedError):
        Templates().render("_alert.html", tone="info", title="x")


# ---- hostile strings in the live fragments ---------------------------------------------------
# Devices and attachments whose fields hold markup, quotes that would end an attribute, htmx
# attribute names, terminal escapes, bidi overrides, line breaks or huge strings, rendered into the
# fragments the live pages swap in and sent as server-sent events: the HTML has only the
# templates' own elements and attributes, no hidden characters, and the event stays one event.

_HOSTILE = st.one_of(
    st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
                     "' hx-get='/x' hx-trigger='load", "{{ 7*7 }}", "\x1b[31mred\u202e",
                     "a\r\nevent: x\n\ndata: y", "x" * 3000, "</template><svg onload=alert(1)>"]),
    st.text(max_size=20))
_DEVICE = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": _HOSTILE}),
    "spec": st.one_of(st.just({}), st.fixed_dictionaries({"claimRef": st.fixed_dictionaries(
        {"namespace": _HOSTILE, "attachment": _HOSTILE, "vm": _HOSTILE})})),
    "status": st.fixed_dictionaries({k: _HOSTILE for k in (
        "node", "vendorId", "productId", "productName", "vendorName", "product", "serial",
        "portPath", "manufacturer", "speed", "state")}),
})
_ATTACHMENT = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": _HOSTILE, "namespace": _HOSTILE}),
    "spec": st.fixed_dictionaries({"vm": st.just("vm1"), "device": st.dictionaries(
        st.sampled_from(["name", "serial", "product", "node"]), _HOSTILE)}),
    "status": st.fixed_dictionaries({k: _HOSTILE for k in (
        "phase", "message", "device", "node", "lastError", "attachedSince")}),
})
_TEMPLATE_TAGS = {"div", "p", "h2", "span", "table", "thead", "tbody", "tr", "th", "td", "br",
                  "button", "caption", "form", "input", "label", "small", "code", "a", "strong"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.texts.extend(value or "" for _, value in attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _assert_only_template_markup(html: str) -> None:
    elements = _Elements()
    elements.feed(html)
    assert elements.tags <= _TEMPLATE_TAGS, elements.tags - _TEMPLATE_TAGS
    assert not {a for a in elements.attributes if a.startswith("on")}
    assert elements.attributes <= _ATTRIBUTES, elements.attributes - _ATTRIBUTES
    hidden = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    for text in elements.texts:
        assert not [c for c in text if c not in "\n\t" and unicodedata.category(c) in hidden]
    event = sse_message("devices", html)
    lines = event.split("\n")
    assert lines[0] == "event: devices"
    assert all(line.startswith("data: ") for line in lines[1:-2])
    assert lines[-2:] == ["", ""]


_ATTRIBUTES = {"class", "id", "role", "aria-label", "scope", "title", "type", "name", "value",
               "data-label", "data-device", "data-attachment", "data-phase", "data-bytes",
               "hx-post", "hx-get", "hx-target", "hx-swap", "hx-confirm", "hx-vals", "colspan",
               "href", "for", "disabled", "aria-hidden", "hx-include", "hx-disabled-elt",
               "data-path", "data-path-reason"}


_TEMPLATES = Templates()


@settings(max_examples=30)
@given(devices=st.lists(_DEVICE, max_size=3), attachments=st.lists(_ATTACHMENT, max_size=2))
def test_hostile_strings_in_live_fragments_stay_text(devices: list[Any],
                                                     attachments: list[Any]) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    templates = _TEMPLATES
    rows = views.device_rows(devices, attachments=attachments, now=now)
    groups = views.devices_by_node(rows)
    _assert_only_template_markup(templates.render(
        "_devices.html", groups=groups, error=None, total=len(rows),
        shown=sum(len(g.rows) for g in groups), can_attach=True, namespace="lab"))
    _assert_only_template_markup(templates.render(
        "_attachments.html", rows=views.attachment_rows(attachments, now=now), error=None,
        can_detach=True, vm="vm1", namespace="lab"))
