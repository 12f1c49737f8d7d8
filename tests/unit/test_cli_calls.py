"""``softswitch calls``: the three outputs, the filters, and the empty cases."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest

from softswitch.cli import main
from softswitch.records.model import CallRecord, Disposition, LegRecord
from softswitch.records.query import EMPTY_MESSAGE
from softswitch.records.store import RecordStore, record_from_dict

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def call(i: int, disposition: Disposition, legs: list[LegRecord], *,
         tracking: str = "+18005550100") -> CallRecord:
    at = T0 + 3600 * i
    answered = next((leg.answered_at for leg in legs if leg.answered_at), None)
    return CallRecord(
        id=f"call-{i}", tracking_number=tracking, tracking_label="Lab",
        caller_number=f"+1415555000{i}", caller_name=None, pattern="sequential",
        started_at=at, first_ring_at=at + 0.5, answered_at=answered,
        ended_at=at + 65.25, hangup_by="caller", disposition=disposition,
        final_status=200 if answered else 486, tags={"hours": "open"}, legs=legs,
        billable_seconds=120 if answered else 0, cost=0.04 if answered else 0.0,
    )


def leg(n: int, at: float, status: int, answered: float | None = None) -> LegRecord:
    return LegRecord(n, f"R{n}", f"+141555501{n:02}", f"Lab R{n}", at, rang_at=at + 0.5,
                     answered_at=answered, ended_at=at + 65.25, status=status,
                     outcome="answered" if answered else "busy")


RECORDS = [
    call(0, Disposition.ANSWERED,
         [leg(1, T0, 486), leg(2, T0 + 1, 200, answered=T0 + 5.25)]),
    call(1, Disposition.BUSY, [leg(1, T0 + 3600, 486)], tracking="+18005550101"),
    call(2, Disposition.ANSWERED, [leg(3, T0 + 7200, 200, answered=T0 + 7210)]),
]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    path = conf / "softswitch.yaml"
    path.write_text("records: {path: ../var/calls.sqlite3}\n")
    return path


@pytest.fixture
def filled(config_file: Path) -> Path:
    db = config_file.parent.parent / "var" / "calls.sqlite3"
    with RecordStore(db) as store:
        for record in RECORDS:
            store.start(dataclasses.replace(record, disposition=Disposition.IN_PROGRESS))
            store.finish(record)
        store.start(CallRecord("live", "+18005550100", "Lab", "anonymous", None, None,
                               T0 + 4 * 3600))
    return config_file


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_database(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(config_file))
    assert code == 0 and out.strip() == EMPTY_MESSAGE
    assert not (config_file.parent.parent / "var").exists()  # reading creates nothing
    code, out, err = run(capsys, "calls", "-c", str(config_file), "--json")
    assert code == 0 and json.loads(out) == [] and EMPTY_MESSAGE in err
    code, out, err = run(capsys, "calls", "-c", str(config_file), "--csv")
    assert code == 0 and out.startswith("id,started,") and len(out.splitlines()) == 1


def test_table(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(filled))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["started", "(UTC)", "tracking", "caller", "disposition",
                                "status", "ring", "s", "talk", "s", "answered", "by", "cost"]
    assert lines[1].split()[:4] == ["2026-05-29T00:26:40Z", "+18005550100", "anonymous",
                                    "in"]
    assert lines[2].split() == ["2026-05-28T22:26:40Z", "+18005550100", "+14155550002",
                                "answered", "200", "10.0", "55.2", "R3", "0.0400"]
    assert lines[3].split() == ["2026-05-28T21:26:40Z", "+18005550101", "+14155550001",
                                "busy", "486", "65.2", "0.0000"]
    assert lines[4].split()[-2:] == ["R2", "0.0400"]
    # aligned: every data line's columns start where the header's do
    assert len({line.index("+1800") for line in lines[1:5]}) == 1
    assert lines[-1] == "1-4 of 4 calls"


def test_json(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(filled), "--json", "--disposition",
                       "answered")
    assert code == 0
    data = json.loads(out)
    assert [record_from_dict(item) for item in data] == [RECORDS[2], RECORDS[0]]
    assert data[1]["legs"][0]["status"] == 486 and data[1]["disposition"] == "answered"


def test_csv(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(filled), "--csv", "--until",
                       "2026-05-28T23:00:00Z")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["id"] for row in rows] == ["call-2", "call-1", "call-0"]
    assert rows[2]["legs"] == "R1:486;R2:200"
    assert rows[2]["answered_by"] == "R2" and rows[2]["tags"] == "hours=open"
    assert rows[1]["legs"] == "R1:486" and rows[1]["answered_by"] == ""
    assert rows[0]["started"] == "2026-05-28T22:26:40Z" and rows[0]["cost"] == "0.040000"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tracking", "1 (800) 555-0101"], ["call-1"]),
        (["--caller", "+1 415 555 0000"], ["call-0"]),
        (["--caller", "anonymous"], ["live"]),
        (["--disposition", "in_progress"], ["live"]),
        (["--disposition", "busy"], ["call-1"]),
        (["--since", "2026-05-28T21:26:40Z"], ["live", "call-2", "call-1"]),
        (["--since", "2026-05-28T21:00", "--until", "2026-05-28T23:00+00:00"],
         ["call-2", "call-1"]),
        (["--limit", "2"], ["live", "call-2"]),
        (["--limit", "2", "--offset", "2"], ["call-1", "call-0"]),
    ],
)
def test_filters(capsys: pytest.CaptureFixture[str], filled: Path, args: list[str],
                 expected: list[str]) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(filled), "--json", *args)
    assert code == 0 and [item["id"] for item in json.loads(out)] == expected


def test_nothing_matches(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "calls", "-c", str(filled), "--tracking", "+18005550199")
    assert code == 0 and out.strip() == "no calls match"


@pytest.mark.parametrize(
    "args",
    [["--disposition", "exploded"], ["--since", "yesterday"], ["--limit", "-1"],
     ["--json", "--csv"]],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], config_file: Path,
                       args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["calls", "-c", str(config_file), *args])
    assert exit_.value.code == 2


def test_a_bad_rates_entry_is_a_config_error(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('rates:\n  - {prefix: "+1", per_minute: 0.02}\n'
                    '  - {prefix: "+44", per_minute: lots}\n')
    code, out, err = run(capsys, "calls", "-c", str(path))
    assert code == 2 and out == ""
    assert f"{path}: rates[1].per_minute: got \"lots\"; expected a price per minute" in err


def test_not_a_database(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    db = config_file.parent.parent / "var" / "calls.sqlite3"
    db.parent.mkdir()
    db.write_text("this is not SQLite, it is long enough to have a header of sorts\n" * 20)
    code, _, err = run(capsys, "calls", "-c", str(config_file))
    assert code == 1 and "cannot be read" in err
