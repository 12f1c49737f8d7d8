"""--log-format json: one JSON object per line, with the call's id where it applies."""

from __future__ import annotations

import json
import logging

from softswitch.logs import JsonFormatter


def test_a_call_line_carries_its_call_id() -> None:
    record = logging.LogRecord("softswitch.call", logging.INFO, __file__, 1,
                               "call %s: %s", ("c1", "answered by leg 1 R1"), None)
    record.call_id = "c1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "call c1: answered by leg 1 R1"
    assert (entry["level"], entry["logger"], entry["call_id"]) == ("info", "softswitch.call", "c1")
    assert entry["time"].endswith("+00:00")


def test_other_lines_have_no_call_id_and_keep_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("softswitch", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "call_id" not in entry
    assert "ValueError: boom" in entry["exception"]
