"""Structured logs: one JSON object per line with the node and device fields."""

from __future__ import annotations

import io
import json
import logging

from kubevirt_usb.agent.logs import configure


def _fail() -> None:
    raise RuntimeError("boom")


def test_each_record_is_one_json_line_with_its_extra_fields() -> None:
    stream = io.StringIO()
    handler = configure(level="info", stream=stream)
    try:
        log = logging.getLogger("kubevirt_usb.test")
        log.info("created %s", "dev-1", extra={"node": "node1", "device": "dev-1"})
        log.debug("not shown")
        logging.getLogger("httpx2").info("HTTP Request: GET ...")
        try:
            _fail()
        except RuntimeError:
            log.exception("failed", extra={"node": "node1"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["created dev-1", "failed"]
    first = lines[0]
    assert (first["level"], first["logger"], first["node"], first["device"]) == (
        "info", "kubevirt_usb.test", "node1", "dev-1")
    assert first["time"].endswith("Z")
    assert "RuntimeError: boom" in lines[1]["error"]


def test_non_ascii_text_stays_readable() -> None:
    stream = io.StringIO()
    handler = configure(stream=stream)
    try:
        logging.getLogger("kubevirt_usb.test").warning("Gerät \ufffd", extra={"serial": "é"})
    finally:
        logging.getLogger().removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert (line["message"], line["serial"]) == ("Gerät \ufffd", "é")
