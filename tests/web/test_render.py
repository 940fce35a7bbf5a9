"""The templates escape every value they are given."""

from __future__ import annotations

import jinja2
import pytest

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
