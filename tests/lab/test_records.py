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


# ---- every disposition, stored field by field -----------------------------------------


def one_record(config: Path) -> dict[str, Any]:
    records = calls(config)
    assert len(records) == 1, records
    return records[0]


def test_no_answer_record(
    lab_with_store: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_with_store)
    r1 = sipp_runner.uas("r1", "uas_ring_cancel.xml", 5071, "-m", "1")
    sipp_runner.run("caller", "uac_expect_480.xml", 5061, "-s", TRACKING, "-m", "1",
                    timeout=25).assert_successful(1)
    r1.wait(timeout=15).assert_successful(1)
    record = one_record(lab_with_store)
    assert (record["disposition"], record["final_status"]) == ("no answer", 480)
    assert record["answered_at"] is None and record["first_ring_at"] is not None
    assert 4.5 <= record["ended_at"] - record["started_at"] <= 7.0  # the 5 s ring timeout
    [leg] = record["legs"]
    assert (leg["name"], leg["status"], leg["outcome"]) == ("R1", 480, "no answer")


def test_cancelled_record(
    lab_with_store: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_with_store)
    r1 = sipp_runner.uas("r1", "uas_ring_cancel.xml", 5071, "-m", "1")
    sipp_runner.run("caller", "uac_cancel.xml", 5061, "-s", TRACKING, "-m", "1",
                    timeout=20).assert_successful(1)
    r1.wait(timeout=15).assert_successful(1)
    record = one_record(lab_with_store)
    assert (record["disposition"], record["final_status"]) == ("cancelled", 487)
    assert record["hangup_by"] == "caller" and record["cost"] == 0.0


def test_failed_record(
    lab_with_store: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_with_store)
    r1 = sipp_runner.uas("r1", "uas_503.xml", 5071, "-m", "1")
    sipp_runner.run("caller", "uac_expect_503.xml", 5061, "-s", TRACKING, "-m", "1",
                    timeout=20).assert_successful(1)
    r1.wait(timeout=15).assert_successful(1)
    record = one_record(lab_with_store)
    assert (record["disposition"], record["final_status"]) == ("failed", 503)
    assert [(x["status"], x["outcome"]) for x in record["legs"]] == [(503, "failed")]


def test_fail_safe_record(
    lab_with_store: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_with_store)
    r3 = sipp_runner.uas("r3", "uas", 5073, "-m", "1")
    sipp_runner.run("caller", "uac", 5061, "-s", "+18005550107", "-m", "1",
                    timeout=30).assert_successful(1)
    r3.wait(timeout=20).assert_successful(1)
    record = one_record(lab_with_store)
    assert (record["disposition"], record["pattern"]) == ("fail-safe", "fail-safe")
    assert [(x["name"], x["status"], x["outcome"]) for x in record["legs"]] == [
        ("R1-unreachable", 408, "unreachable"), ("R3", 200, "answered")]


def test_simultaneous_losers_and_cost_from_the_tests_rate_table(
    lab_config_copy: Callable[[dict[str, str]], Path],
    tmp_path: Path,
    softswitch_on: Callable[[Path], Softswitch],
    sipp_runner: SippRunner,
) -> None:
    """0101: R2 answers after 1 s; R1 and R3 are cancelled "answered elsewhere".  The
    rate table is this test's: 0.60/min for simultaneous legs to +1415, none inbound,
    billed 6/6 — so each leg's time up costs ceil(s/6)*6/60*0.60."""
    config = lab_config_copy({
        "path: ../var/lab-calls.sqlite3": f"path: {tmp_path / 'c.sqlite3'}",
        "inbound_per_minute: 0.01": "inbound_per_minute: 0",
        'prefix: "+1415"\n    pattern: simultaneous\n    per_minute: 0.03':
            'prefix: "+1415"\n    pattern: simultaneous\n    per_minute: 0.60',
    })
    softswitch_on(config)
    r1 = sipp_runner.uas("r1", "routing_uas_ring_cancel_reason.xml", 5071, "-m", "1")
    r3 = sipp_runner.uas("r3", "routing_uas_ring_cancel_reason.xml", 5073, "-m", "1")
    r2 = sipp_runner.uas("r2", "routing_uas_answer_later.xml", 5072, "-m", "1")
    sipp_runner.run("caller", "uac", 5061, "-s", "+18005550101", "-m", "1", "-d", "2000",
                    timeout=30).assert_successful(1)
    for uas in (r1, r2, r3):
        uas.wait(timeout=20).assert_successful(1)
    record = one_record(config)
    assert (record["disposition"], record["pattern"]) == ("answered", "simultaneous")
    legs = {leg["name"]: leg for leg in record["legs"]}
    for loser in ("R1", "R3"):
        assert legs[loser]["outcome"] == "cancelled"
        assert legs[loser]["reason"] == 'SIP;cause=200;text="Call completed elsewhere"'
    assert legs["R2"]["outcome"] == "answered"
    billed = [-(-(leg["ended_at"] - leg["tried_at"]) // 6) * 6 for leg in legs.values()]
    assert record["billable_seconds"] == int(sum(billed))
    assert record["cost"] == pytest.approx(sum(billed) / 60 * 0.60, abs=1e-6)
    assert record["cost"] > 0
