"""JSON log lines carry the request id of the question being handled."""

from __future__ import annotations

import io
import json
import logging

from rag import logs


def test_json_lines_with_request_id_and_exception() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    log = logging.getLogger("docent.test")
    try:
        token = logs.request_id.set("abc123def456")
        try:
            log.info("answered in %d ms", 42)
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        finally:
            logs.request_id.reset(token)
        log.warning("outside a request")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "answered in 42 ms" and first["request_id"] == "abc123def456"
    assert first["level"] == "INFO" and first["logger"] == "docent.test" and first["ts"].endswith("Z")
    assert "ValueError: boom" in second["exception"]
    assert "request_id" not in third
