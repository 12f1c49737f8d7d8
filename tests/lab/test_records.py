"""Call records with real SIPp: what the store holds after calls, and after SIGKILL.

softswitch runs on a copy of conf/lab.yaml whose records go to tmp_path; the store is
read back with ``softswitch calls --json`` (the command users run), not with the
store's own classes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import SippRunner, Softswitch

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
TRACKING = "+18005550100"


def calls(config: Path, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "softswitch", "calls", "-c", str(config), "--json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    records: list[dict[str, Any]] = json.loads(out)
    return records


@pytest.fixture
def lab_with_store(
    lab_config_copy: Callable[[dict[str, str]], Path], tmp_path: Path
) -> Path:
    store = tmp_path / "calls.sqlite3"
    return lab_config_copy({"path: ../var/lab-calls.sqlite3": f"path: {store}"})


def test_answered_and_busy_calls_are_recorded_field_by_field(
    lab_with_store: Path,
    softswitch_on: Callable[[Path], Softswitch],
    sipp_runner: SippRunner,
) -> None:
    softswitch_on(lab_with_store)
    uas = sipp_runner.uas("r1", "uas", 5071, "-m", "1")
    before = time.time()
    uac = sipp_runner.run("caller", "uac", 5061, "-s", TRACKING, "-m", "1", "-d", "2000",
                          timeout=20)
    uac.assert_successful(1)
    uas.wait(timeout=15).assert_successful(1)
    busy = sipp_runner.uas("r1-busy", "uas_486.xml", 5071, "-m", "1")
    sipp_runner.run("caller-2", "uac_expect_486.xml", 5061, "-s", TRACKING, "-m", "1",
                    timeout=20).assert_successful(1)
    busy.wait(timeout=15).assert_successful(1)
    after = time.time()

    records = calls(lab_with_store)
    assert [r["disposition"] for r in records] == ["busy", "answered"]  # newest first
    busy_record, answered = records
    assert answered["tracking_number"] == TRACKING
    assert answered["tracking_label"] == "Lab 0100 single number"
    assert answered["caller_number"] == "sipp"  # SIPp's default From user
    assert answered["final_status"] == 200 and answered["hangup_by"] == "caller"
    assert before <= answered["started_at"] <= answered["answered_at"] <= answered["ended_at"]
    assert answered["ended_at"] <= after
    talk = answered["ended_at"] - answered["answered_at"]
    assert 1.8 <= talk <= 4.0  # SIPp held the call 2 s
    [leg] = answered["legs"]
    assert (leg["name"], leg["phone"], leg["outcome"], leg["status"]) == (
        "R1", "+14155550101", "answered", 200)
    assert answered["billable_seconds"] >= 6 and answered["cost"] > 0
    assert busy_record["final_status"] == 486
    assert [(x["name"], x["status"], x["outcome"]) for x in busy_record["legs"]] == [
        ("R1", 486, "busy")]
    assert busy_record["cost"] == 0.0


def test_sigkill_mid_call_leaves_every_call_recorded_as_interrupted(
    lab_with_store: Path,
    softswitch_on: Callable[[Path], Softswitch],
    sipp_runner: SippRunner,
) -> None:
    """Three calls up when softswitch is killed: after a restart all three are in the
    records, marked interrupted, none lost and none doubled."""
    first = softswitch_on(lab_with_store)
    sipp_runner.uas("r1", "uas", 5071, "-m", "3", timeout=60)
    caller = sipp_runner.start("caller", "uac", 5061, "-s", TRACKING, "-m", "3", "-r", "3",
                               "-d", "30000", remote=("127.0.0.1", 5060), timeout=60)
    deadline = time.monotonic() + 15
    while first.stats()["calls"] < 3:
        assert time.monotonic() < deadline, first.tail()
        time.sleep(0.3)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(5)
    caller.kill()
    assert {r["disposition"] for r in calls(lab_with_store)} == {"in progress"}

    second = softswitch_on(lab_with_store)  # recovers the store when it starts
    records = calls(lab_with_store)
    assert len(records) == 3
    assert len({r["id"] for r in records}) == 3
    assert all(r["disposition"] == "interrupted" and r["ended_at"] for r in records)
    assert "3 calls were in progress when softswitch last stopped" in second.log_text()
