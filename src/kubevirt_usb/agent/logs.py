"""Structured logs: one JSON object per line, with the node and device a message is about.

    log.info("created %s", name, extra={"node": node, "device": name})

prints `{"time": "...", "level": "info", "logger": "...", "message": "created x", "node": "...",
"device": "x"}`. Any `extra` key becomes a field; exceptions add an `error` field.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, TextIO

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_CHATTY = ("httpx", "httpx2", "httpcore", "hpack")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(*, level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of the process to `stream` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in _CHATTY:  # one line per HTTP request is not an event
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler
