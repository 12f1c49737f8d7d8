"""The call record store: one SQLite row per call (stdlib ``sqlite3``).

Durability
----------
The database runs in WAL mode with ``synchronous=NORMAL``.  Every write
(:meth:`RecordStore.start`, :meth:`RecordStore.finish`, :meth:`RecordStore.recover`)
is its own transaction, committed before the method returns.  A committed
transaction is in the ``-wal`` file, handed to the operating system, so it
survives the softswitch process dying at any moment — an exception, ``SIGKILL``,
the OOM killer.  (``synchronous=NORMAL`` skips the fsync per commit: a power loss
or kernel crash may lose the last commits, never corrupt the file.  That is the
trade WAL mode is designed for; use ``synchronous=FULL`` in SQLite terms if that
matters more than write latency.)

So a call is written twice: :meth:`~RecordStore.start` inserts it ``in progress``
when the call arrives, :meth:`~RecordStore.finish` completes it when the call ends
— exactly once: a second ``finish`` raises :class:`RecordError`.  A softswitch that
was killed leaves its calls ``in progress``; the next start calls
:meth:`~RecordStore.recover`, which marks them ``interrupted``.  None is lost and
none is doubled (the call id is the primary key).

Schema
------
Table ``calls``: one column per scalar field of
:class:`~softswitch.records.model.CallRecord` (same names), ``tags`` and ``legs``
as JSON text, indexed on ``started_at``, ``tracking_number`` and ``disposition``.
Times are REAL seconds since the epoch (UTC); a float goes in and comes out
bit-for-bit, so a record round-trips exactly (dataclass equality).

Threads: one connection, guarded by a lock, usable from any thread (e.g. an
executor); it is not meant to be shared between processes other than as WAL
allows (one writer — softswitch — and any number of readers such as
``softswitch calls``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .model import CallRecord, Disposition, LegRecord

__all__ = [
    "RecordError",
    "RecordStore",
    "record_from_dict",
    "record_to_dict",
]

SCHEMA_VERSION = 1

# The scalar columns, in CallRecord field order; tags and legs are JSON.
_SCALARS = (
    "id",
    "tracking_number",
    "tracking_label",
    "caller_number",
    "caller_name",
    "pattern",
    "started_at",
    "first_ring_at",
    "answered_at",
    "bridged_at",
    "ended_at",
    "hangup_by",
    "disposition",
    "final_status",
    "billable_seconds",
    "cost",
)
_COLUMNS = (*_SCALARS, "tags", "legs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id               TEXT PRIMARY KEY NOT NULL,
    tracking_number  TEXT NOT NULL,
    tracking_label   TEXT NOT NULL,
    caller_number    TEXT NOT NULL,
    caller_name      TEXT,
    pattern          TEXT,
    started_at       REAL NOT NULL,
    first_ring_at    REAL,
    answered_at      REAL,
    bridged_at       REAL,
    ended_at         REAL,
    hangup_by        TEXT,
    disposition      TEXT NOT NULL,
    final_status     INTEGER,
    billable_seconds INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0,
    tags             TEXT NOT NULL DEFAULT '{}',
    legs             TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_tracking_number ON calls (tracking_number);
CREATE INDEX IF NOT EXISTS calls_disposition ON calls (disposition);
"""

_IN_PROGRESS = Disposition.IN_PROGRESS.value


class RecordError(Exception):
    """A write the store refuses: a call started twice, finished twice, finished
    without being started, or finished still ``in progress``."""


# --------------------------------------------------------------------------
# CallRecord <-> plain values (JSON-ready); used by the store and by outputs.


def record_to_dict(record: CallRecord) -> dict[str, Any]:
    """``record`` as plain JSON-ready values (the disposition as its text)."""
    data = dataclasses.asdict(record)
    data["disposition"] = record.disposition.value
    return data


def record_from_dict(data: Mapping[str, Any]) -> CallRecord:
    """The inverse of :func:`record_to_dict`."""
    values = dict(data)
    values["disposition"] = Disposition(values.get("disposition", _IN_PROGRESS))
    values["tags"] = dict(values.get("tags") or {})
    values["legs"] = [LegRecord(**leg) for leg in values.get("legs") or []]
    return CallRecord(**values)


def _row(record: CallRecord) -> dict[str, Any]:
    data = {name: getattr(record, name) for name in _SCALARS}
    data["disposition"] = record.disposition.value
    data["tags"] = json.dumps(record.tags, ensure_ascii=False)
    data["legs"] = json.dumps([dataclasses.asdict(leg) for leg in record.legs], ensure_ascii=False)
    return data


def _record(row: sqlite3.Row) -> CallRecord:
    values: dict[str, Any] = {name: row[name] for name in _SCALARS}
    values["tags"] = json.loads(row["tags"])
    values["legs"] = json.loads(row["legs"])
    return record_from_dict(values)


# --------------------------------------------------------------------------


class RecordStore:
    """Call records in the SQLite file at ``path``.

    ``RecordStore(path)`` opens it for writing, creating missing parent directories,
    the file and the schema.  ``RecordStore(path, readonly=True)`` opens an existing
    file for reading only (``softswitch calls``); it raises FileNotFoundError when
    the file does not exist and never creates anything but SQLite's ``-shm``.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self.deferred = False
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path}: no call records database")
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA busy_timeout = 5000")
            if readonly:
                self._has_table = self._table_exists()
            else:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._has_table = True
        except BaseException:
            self._db.close()
            raise

    def _table_exists(self) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'"
        ).fetchone()
        return row is not None

    # ----------------------------------------------------------------- writes

    def start(self, record: CallRecord) -> None:
        """Insert ``record`` as a new row, committed at once.

        Normally ``in progress``; a record inserted with a final disposition (a
        call refused before it began) is complete and cannot be finished.
        Raises RecordError when a record with this id exists."""
        row = _row(record)
        sql = (
            f"INSERT INTO calls ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _COLUMNS)})"
        )
        with self._lock:
            try:
                with self._committing():
                    self._db.execute(sql, row)
            except sqlite3.IntegrityError as exc:
                raise RecordError(f"call {record.id} was already started ({exc})") from None

    def finish(self, record: CallRecord) -> None:
        """Write everything in ``record`` over its ``in progress`` row, committed at once.

        Raises RecordError — so a double write fails loudly — when ``record`` is still
        ``in progress``, was never started, or was already finished (or recovered)."""
        if record.disposition is Disposition.IN_PROGRESS:
            raise RecordError(f"call {record.id}: finish() needs a final disposition")
        row = _row(record)
        assignments = ", ".join(f"{c} = :{c}" for c in _COLUMNS if c != "id")
        sql = f"UPDATE calls SET {assignments} WHERE id = :id AND disposition = :in_progress"
        with self._lock:
            with self._committing():
                cursor = self._db.execute(sql, {**row, "in_progress": _IN_PROGRESS})
                if cursor.rowcount == 1:
                    return
                found = self._db.execute(
                    "SELECT disposition FROM calls WHERE id = ?", (record.id,)
                ).fetchone()
        if found is None:
            raise RecordError(f"call {record.id} was never started; cannot finish it")
        raise RecordError(
            f"call {record.id} was already finished ({found['disposition']}); "
            "a call is finished exactly once"
        )

    @contextlib.contextmanager
    def _committing(self) -> Iterator[None]:
        """Commit at the end of the block, unless commits are deferred (``defer_commits``):
        then the write joins the open transaction and ``commit()`` ends it."""
        if self.deferred:
            yield
            return
        with self._db:
            yield

    def defer_commits(self) -> None:
        """Let writes gather into one transaction until ``commit()``: the running
        softswitch commits a batch every few milliseconds instead of twice per call."""
        self.deferred = True

    def commit(self) -> None:
        with self._lock:
            self._db.commit()

    def recover(self, now: float) -> int:
        """Mark every ``in progress`` row ``interrupted``, ended at ``now``; return how
        many.  Call it at startup, before taking calls: any such row is a call the
        previous softswitch process did not live to finish."""
        with self._lock:
            with self._db:
                cursor = self._db.execute(
                    "UPDATE calls SET disposition = ?, ended_at = ? WHERE disposition = ?",
                    (Disposition.INTERRUPTED.value, now, _IN_PROGRESS),
                )
        return cursor.rowcount

    # ------------------------------------------------------------------ reads

    def get(self, id: str) -> CallRecord | None:
        """The record of call ``id``, or None."""
        if not self._has_table:
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM calls WHERE id = ?", (id,)).fetchone()
        return None if row is None else _record(row)

    @staticmethod
    def _where(
        tracking_number: str | None,
        disposition: Disposition | str | None,
        since: float | None,
        until: float | None,
        caller: str | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if tracking_number is not None:
            clauses.append("tracking_number = ?")
            params.append(tracking_number)
        if disposition is not None:
            clauses.append("disposition = ?")
            params.append(Disposition(disposition).value)  # ValueError if unknown
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            params.append(until)
        if caller is not None:
            clauses.append("caller_number = ?")
            params.append(caller)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def query(
        self,
        *,
        tracking_number: str | None = None,
        disposition: Disposition | str | None = None,
        since: float | None = None,
        until: float | None = None,
        caller: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CallRecord]:
        """Records matching every filter given, newest first (by ``started_at``).

        ``tracking_number`` and ``caller`` match exactly (E.164 as stored);
        ``since`` is inclusive and ``until`` exclusive, both epoch seconds on
        ``started_at``; ``limit`` and ``offset`` page through the result."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit ({limit}) and offset ({offset}) must be >= 0")
        if not self._has_table:
            return []
        where, params = self._where(tracking_number, disposition, since, until, caller)
        sql = f"SELECT * FROM calls{where} ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, [*params, limit, offset]).fetchall()
        return [_record(row) for row in rows]

    def count(
        self,
        *,
        tracking_number: str | None = None,
        disposition: Disposition | str | None = None,
        since: float | None = None,
        until: float | None = None,
        caller: str | None = None,
    ) -> int:
        """How many records match the filters (as :meth:`query`, without paging)."""
        if not self._has_table:
            return 0
        where, params = self._where(tracking_number, disposition, since, until, caller)
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM calls{where}", params).fetchone()
        return int(row[0])

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
