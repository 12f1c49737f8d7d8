"""softswitch.records.store: exact round trips, exactly-once finish, recovery, filters."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from softswitch.records.model import CallRecord, Disposition, LegRecord
from softswitch.records.store import RecordError, RecordStore, record_from_dict, record_to_dict

T0 = 1_780_000_000.123456789


def make_call(id: str = "call-1", *, at: float = T0, tracking: str = "+18005550100",
              caller: str = "+14155550000") -> CallRecord:
    return CallRecord(
        id=id, tracking_number=tracking, tracking_label="Lab 0100 «simultaneous»",
        caller_number=caller, caller_name="Ada", pattern="simultaneous", started_at=at,
    )


def finished(record: CallRecord, disposition: Disposition = Disposition.ANSWERED) -> CallRecord:
    at = record.started_at
    return dataclasses.replace(
        record,
        first_ring_at=at + 0.1,
        answered_at=at + 3.3,
        bridged_at=at + 3.31,
        ended_at=at + 64.7,
        hangup_by="callee",
        disposition=disposition,
        final_status=200,
        tags={"lab-closed": "closed", "campaign": "ümlaut"},
        legs=[
            LegRecord(1, "R1", "+14155550101", "Lab R1", at + 0.01, rang_at=at + 0.1,
                      ended_at=at + 3.3, status=487, outcome="cancelled",
                      reason='SIP;cause=200;text="Call completed elsewhere"'),
            LegRecord(2, "R2", "+14155550102", "Lab R2", at + 0.01, rang_at=at + 0.2,
                      answered_at=at + 3.3, ended_at=at + 64.7, status=200,
                      outcome="answered"),
        ],
        billable_seconds=132,
        cost=0.066,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    with RecordStore(tmp_path / "calls.sqlite3") as opened:
        yield opened


def test_schema_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "calls.sqlite3"  # missing directories are created
    RecordStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in db.execute("PRAGMA index_list(calls)")}
    assert {"calls_started_at", "calls_tracking_number", "calls_disposition"} <= indexes
    columns = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
    assert set(columns) == {f.name for f in dataclasses.fields(CallRecord)}
    db.close()
    RecordStore(path).close()  # reopening an existing store is fine


def test_round_trip_in_progress_and_finished(store: RecordStore) -> None:
    record = make_call()
    store.start(record)
    assert store.get("call-1") == record
    done = finished(record)
    store.finish(done)
    got = store.get("call-1")
    assert got == done
    assert got is not None and got.started_at == T0  # bit-for-bit
    assert isinstance(got.disposition, Disposition)
    assert store.get("nope") is None


def test_round_trip_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    done = finished(make_call())
    with RecordStore(path) as first:
        first.start(make_call())
        first.finish(done)
    with RecordStore(path, readonly=True) as again:
        assert again.get("call-1") == done


def test_dict_round_trip() -> None:
    done = finished(make_call())
    data = record_to_dict(done)
    assert data["disposition"] == "answered" and data["legs"][1]["name"] == "R2"
    assert record_from_dict(data) == done


def test_finish_twice_raises(store: RecordStore) -> None:
    store.start(make_call())
    store.finish(finished(make_call()))
    with pytest.raises(RecordError, match="already finished"):
        store.finish(finished(make_call(), Disposition.BUSY))
    assert store.get("call-1") == finished(make_call())  # the first write stands


def test_other_refused_writes(store: RecordStore) -> None:
    with pytest.raises(RecordError, match="never started"):
        store.finish(finished(make_call("ghost")))
    store.start(make_call())
    with pytest.raises(RecordError, match="already started"):
        store.start(make_call())
    with pytest.raises(RecordError, match="final disposition"):
        store.finish(make_call())  # still in progress
    assert store.count() == 1


def test_recover_marks_in_progress_rows_interrupted(store: RecordStore) -> None:
    store.start(make_call("a", at=T0))
    store.start(make_call("b", at=T0 + 1))
    store.start(make_call("c", at=T0 + 2))
    store.finish(finished(make_call("b", at=T0 + 1)))
    assert store.recover(T0 + 100) == 2
    a, b, c = (store.get(i) for i in "abc")
    assert a is not None and a.disposition is Disposition.INTERRUPTED and a.ended_at == T0 + 100
    assert c is not None and c.disposition is Disposition.INTERRUPTED
    assert b == finished(make_call("b", at=T0 + 1))  # untouched
    assert store.recover(T0 + 200) == 0
    with pytest.raises(RecordError, match="already finished"):
        store.finish(finished(make_call("a")))  # recovered rows count as finished


def test_a_killed_writer_leaves_its_calls_in_progress(tmp_path: Path) -> None:
    # A committed start() survives SIGKILL of the process that wrote it.
    path = tmp_path / "calls.sqlite3"
    script = textwrap.dedent(f"""
        import os, signal
        from softswitch.records.model import CallRecord
        from softswitch.records.store import RecordStore
        store = RecordStore({str(path)!r})
        for i in range(3):
            store.start(CallRecord(f"k{{i}}", "+18005550100", "L", "+14155550000", None,
                                   None, {T0!r} + i))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert result.returncode == -9
    with RecordStore(path) as store:
        assert store.count(disposition=Disposition.IN_PROGRESS) == 3
        assert store.recover(T0 + 60) == 3
        assert store.count(disposition="interrupted") == 3


def fill(store: RecordStore) -> list[CallRecord]:
    """Ten calls, one a minute: alternating tracking numbers, three callers,
    dispositions cycling answered / busy / no answer; the last still in progress."""
    dispositions = [Disposition.ANSWERED, Disposition.BUSY, Disposition.NO_ANSWER]
    records = []
    for i in range(10):
        record = make_call(f"q{i}", at=T0 + 60 * i,
                           tracking="+18005550100" if i % 2 == 0 else "+18005550101",
                           caller=f"+1415555000{i % 3}")
        store.start(record)
        if i < 9:
            record = finished(record, dispositions[i % 3])
            store.finish(record)
        records.append(record)
    return records


def ids(records: list[CallRecord]) -> list[str]:
    return [r.id for r in records]


def test_query_filters_and_paging(store: RecordStore) -> None:
    records = fill(store)
    assert store.query() == records[::-1]  # newest first, whole records
    assert store.count() == 10
    assert ids(store.query(tracking_number="+18005550101")) == ["q9", "q7", "q5", "q3", "q1"]
    assert ids(store.query(disposition=Disposition.BUSY)) == ["q7", "q4", "q1"]
    assert ids(store.query(disposition="in progress")) == ["q9"]
    assert ids(store.query(caller="+14155550002")) == ["q8", "q5", "q2"]
    # since inclusive, until exclusive
    assert ids(store.query(since=T0 + 120, until=T0 + 300)) == ["q4", "q3", "q2"]
    assert ids(store.query(tracking_number="+18005550100", disposition="answered",
                           since=T0 + 1)) == ["q6"]
    assert store.count(tracking_number="+18005550100") == 5
    assert store.count(caller="+14155550001", disposition="no answer") == 0
    # paging
    assert ids(store.query(limit=3)) == ["q9", "q8", "q7"]
    assert ids(store.query(limit=3, offset=3)) == ["q6", "q5", "q4"]
    assert ids(store.query(limit=3, offset=9)) == ["q0"]
    assert store.query(offset=10) == [] and store.query(limit=0) == []
    assert store.count(since=T0 + 60 * 9) == 1
    with pytest.raises(ValueError):
        store.query(disposition="exploded")
    with pytest.raises(ValueError):
        store.query(limit=-1)


def test_same_start_time_keeps_insertion_order_newest_first(store: RecordStore) -> None:
    for name in ("x", "y", "z"):
        store.start(make_call(name, at=T0))
    assert ids(store.query()) == ["z", "y", "x"]


def test_readonly_store(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    with pytest.raises(FileNotFoundError):
        RecordStore(path, readonly=True)
    assert not path.exists()
    with RecordStore(path) as writer, RecordStore(path, readonly=True) as reader:
        writer.start(make_call())
        assert ids(reader.query()) == ["call-1"]  # sees the writer's commits live
        with pytest.raises(sqlite3.OperationalError):
            reader.start(make_call("other"))
    path.with_name("empty.sqlite3").write_bytes(b"")
    with RecordStore(path.with_name("empty.sqlite3"), readonly=True) as empty:
        assert empty.query() == [] and empty.count() == 0 and empty.get("x") is None
