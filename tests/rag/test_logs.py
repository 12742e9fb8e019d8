"""JSON log lines carry the request id of the question being handled; a healthy run logs no errors."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

from rag import logs

ROOT = Path(__file__).resolve().parents[2]


def test_json_lines_with_request_id_and_exception() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
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


E_LINE = re.compile(r"^E\d{4}", re.MULTILINE)  # gRPC C-core's error lines
# A record at ERROR or worse, in our format ("12:00:00 ERROR   name: ...") or vLLM's ("(Worker pid=1) ERROR 11-30 ...")
ERROR_RECORD = re.compile(r"^(?:\([^)]*\) )?(?:\d\d:\d\d:\d\d )?(?:ERROR|CRITICAL)\b", re.MULTILINE)
CLIENT_PING = re.compile(r"CLIENT\[[^]]*\]: Ping \d+ sent")
SERVER_PING = re.compile(r"SERVER\[[^]]*\]: Ping \d+ sent")


def test_an_index_run_logs_no_errors_and_never_pings_milvus_lite(tmp_path: Path, process_env: dict[str, str]) -> None:
    """Lite's in-process gRPC server counts client pings as strikes and answers GOAWAY "too_many_pings", which
    gRPC logs at E level (three times in an index run of the Milvus docs). A small run is too short to collect
    three strikes, so it also checks the cause: with gRPC's ping trace on, the client must send Lite no ping."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"page{n}.md").write_text(f"# Page {n}\n\nMilvus collections hold vectors. Page {n}.\n")
    env = {**process_env, "GRPC_VERBOSITY": "debug", "GRPC_TRACE": "http2_ping"}
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "--dir", str(docs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = done.stderr
    assert done.returncode == 0, err[-4000:]
    assert "3 new" in done.stdout + err
    assert not E_LINE.search(err), E_LINE.findall(err)
    assert not ERROR_RECORD.search(err), [ln for ln in err.splitlines() if ERROR_RECORD.search(ln)]
    assert SERVER_PING.search(err), "gRPC's ping trace is on (the server's own pings show), so silence below means"
    pings = CLIENT_PING.findall(err)
    assert not pings, f"the client pinged the in-process Milvus Lite server {len(pings)} times"
