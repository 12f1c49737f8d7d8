"""``softswitch calls``: list and filter the call records (read-only).

Three outputs: an aligned text table (default), ``--json`` (an array of full
records, legs included, as :func:`softswitch.records.store.record_to_dict` gives
them) and ``--csv`` (one line per call after a header row, the legs summarised as
``R1:486;R2:200`` — each leg's name and final SIP status, ``-`` for none).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from softswitch.config import Config
from softswitch.sip.e164 import NumberError, normalize

from .model import CallRecord, Disposition
from .store import RecordStore, record_to_dict

__all__ = [
    "EMPTY_MESSAGE",
    "add_parser",
    "answered_by",
    "format_csv",
    "format_json",
    "format_table",
    "legs_summary",
    "run",
]

EMPTY_MESSAGE = "no calls recorded yet"

CSV_COLUMNS = (
    "id",
    "started",
    "tracking_number",
    "tracking_label",
    "caller_number",
    "caller_name",
    "disposition",
    "status",
    "hangup_by",
    "pattern",
    "ring_seconds",
    "talk_seconds",
    "total_seconds",
    "answered_by",
    "billable_seconds",
    "cost",
    "tags",
    "legs",
)


def parse_when(text: str) -> datetime.datetime:
    """An ISO 8601 time for the command line; without a zone it is UTC."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time; expected e.g. 2026-11-26 or 2026-11-26T09:30Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def _number(text: str) -> str:
    try:
        return normalize(text)
    except NumberError:
        return text  # "anonymous" and the like are stored as received


def _disposition(text: str) -> Disposition:
    try:
        return Disposition(text.replace("_", " ").replace("-", " ").strip().lower())
    except ValueError:
        pass
    try:
        return Disposition(text.strip().lower())  # "fail-safe" keeps its hyphen
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected one of {', '.join(d.value for d in Disposition)}"
        ) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``calls`` subcommand to the ``softswitch`` parser."""
    calls = sub.add_parser("calls", help="list the call records, newest first")
    calls.add_argument("-c", "--config", required=True, type=Path,
                       help="YAML config file (its records.path is read)")
    calls.add_argument("--tracking", type=_number, metavar="NUMBER",
                       help="only calls to this tracking number")
    calls.add_argument("--disposition", type=_disposition, metavar="D",
                       help="only calls that ended so: "
                       + ", ".join(d.value for d in Disposition))
    calls.add_argument("--since", type=parse_when, metavar="ISO",
                       help="only calls started at or after (a time without a zone is UTC)")
    calls.add_argument("--until", type=parse_when, metavar="ISO",
                       help="only calls started before (a time without a zone is UTC)")
    calls.add_argument("--caller", type=_number, metavar="NUMBER",
                       help="only calls from this number")
    calls.add_argument("--limit", type=_count, default=100, metavar="N",
                       help="show at most N calls (default 100)")
    calls.add_argument("--offset", type=_count, default=0, metavar="N",
                       help="skip the N newest matching calls")
    output = calls.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="a JSON array of full records")
    output.add_argument("--csv", action="store_true", help="CSV, one line per call")


# --------------------------------------------------------------------------
# Formatting.


def _iso(when: float | None) -> str:
    if when is None:
        return ""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def answered_by(record: CallRecord) -> str:
    """The name of the leg that answered, or ''."""
    for leg in record.legs:
        if leg.answered_at is not None or leg.outcome == "answered":
            return leg.name
    return ""


def legs_summary(record: CallRecord) -> str:
    """``R1:486;R2:200``: each leg's name and final status (``-`` for none)."""
    return ";".join(
        f"{leg.name}:{'-' if leg.status is None else leg.status}" for leg in record.legs
    )


def _talk(record: CallRecord) -> str:
    return _seconds(record.talk_seconds) if record.answered_at is not None else ""


def format_table(records: Sequence[CallRecord]) -> str:
    """An aligned text table, one line per call."""
    header = ("started (UTC)", "tracking", "caller", "disposition", "status", "ring s",
              "talk s", "answered by", "cost")
    numeric = {4, 5, 6, 8}
    rows = [header] + [
        (
            _iso(r.started_at),
            r.tracking_number,
            r.caller_number,
            r.disposition.value,
            "" if r.final_status is None else str(r.final_status),
            _seconds(r.ring_seconds),
            _talk(r),
            answered_by(r),
            f"{r.cost:.4f}",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def format_json(records: Sequence[CallRecord]) -> str:
    """A JSON array of full records."""
    return json.dumps([record_to_dict(r) for r in records], indent=2, ensure_ascii=False)


def format_csv(records: Sequence[CallRecord]) -> str:
    """A header row, then one line per call."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            (
                r.id,
                _iso(r.started_at),
                r.tracking_number,
                r.tracking_label,
                r.caller_number,
                r.caller_name or "",
                r.disposition.value,
                "" if r.final_status is None else r.final_status,
                r.hangup_by or "",
                r.pattern or "",
                _seconds(r.ring_seconds),
                _talk(r),
                _seconds(r.total_seconds),
                answered_by(r),
                r.billable_seconds,
                f"{r.cost:.6f}",
                ";".join(f"{k}={v}" for k, v in r.tags.items()),
                legs_summary(r),
            )
        )
    return out.getvalue()


# --------------------------------------------------------------------------


def run(config: Config, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``softswitch calls``: print the records the arguments select; exit status."""
    out = out or sys.stdout
    path = config.records.path
    if not path.is_file():
        # Keep machine outputs well-formed; say why on stderr.
        if args.json:
            print("[]", file=out)
        elif args.csv:
            out.write(format_csv([]))
        if args.json or args.csv:
            print(f"softswitch calls: {EMPTY_MESSAGE} ({path})", file=sys.stderr)
        else:
            print(EMPTY_MESSAGE, file=out)
        return 0
    filters = {
        "tracking_number": args.tracking,
        "disposition": args.disposition,
        "since": None if args.since is None else args.since.timestamp(),
        "until": None if args.until is None else args.until.timestamp(),
        "caller": args.caller,
    }
    try:
        store = RecordStore(path, readonly=True)
    except (sqlite3.Error, OSError) as exc:  # not a database, unreadable
        print(f"softswitch calls: {path}: cannot be read ({exc})", file=sys.stderr)
        return 1
    with store:
        try:
            records = store.query(**filters, limit=args.limit, offset=args.offset)
            total = store.count(**filters)
        except sqlite3.Error as exc:  # a file that is not ours
            print(f"softswitch calls: {path}: cannot be read ({exc})", file=sys.stderr)
            return 1
    if args.json:
        print(format_json(records), file=out)
    elif args.csv:
        out.write(format_csv(records))
    elif total == 0 and not any(v is not None for v in filters.values()):
        print(EMPTY_MESSAGE, file=out)
    elif not records:
        print(f"no calls match (of {total} matching, skipped {args.offset})"
              if total else "no calls match", file=out)
    else:
        print(format_table(records), file=out)
        first = args.offset + 1
        print(f"\n{first}-{args.offset + len(records)} of {total} calls", file=out)
    return 0
