"""Text made safe to show on a terminal and in pages."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevirt_usb.printable import printable


def test_printable_shows_control_and_invisible_characters_as_escapes() -> None:
    assert printable("a\x1b[31mb\u202ec\nd\x00") == "a\\x1b[31mb\\u202ec\\x0ad\\x00"
    assert printable("<script>") == "<script>"  # markup is the templates' job
    assert printable("[bold]x[/bold]") == "[bold]x[/bold]"  # so is rich's, where it is used
    assert printable(None) == ""
    assert printable("x" * 10, limit=4) == "xxxx…"
    assert printable("\ud800") == "\\ud800"  # a lone surrogate cannot be written out


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(codec=None)), st.integers(1, 300))
def test_printable_text_is_visible_bounded_and_writable(text: str, limit: int) -> None:
    shown = printable(text, limit=limit)
    hidden = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    assert not [ch for ch in shown if unicodedata.category(ch) in hidden]
    assert len(shown) <= limit * 6 + 1
    shown.encode("utf-8")  # no lone surrogate left
    assert printable(shown, limit=len(shown)) == shown  # already printable: unchanged
