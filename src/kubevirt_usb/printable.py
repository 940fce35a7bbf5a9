"""Text from hardware, other components or users, made safe to show: on a terminal (kubectl usb's
tables and errors) and in the web UI's pages (which escape markup on top of this).

Control characters (ESC starts terminal escape sequences, CR rewrites a line, a newline breaks a
table row), invisible formatting characters (bidi overrides such as U+202E reorder what is shown),
lone surrogates (they cannot be written out) and line/paragraph separators become visible escapes
(`\\x1b`, `\\u202e`); anything longer than `limit` characters is cut with an ellipsis.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


def printable(value: object, *, limit: int = 256) -> str:
    """`value` as visible characters only, at most `limit` of them (then `…`); None is ""."""
    if value is None:
        return ""
    text = str(value)
    out = []
    for char in text[:limit]:
        if unicodedata.category(char) in _HIDDEN:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out) + ("…" if len(text) > limit else "")
