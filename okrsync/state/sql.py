"""What the SQLite and PostgreSQL stores share: every query, the run/lock protocol, migrations.

Both stores run the same schema (:mod:`okrsync.state.schema`) with the same semantics, so
:class:`SqlStateStore` holds all of the logic once and a subclass only says how its database
differs: the connection and its transactions, the job lock's liveness test, and a handful of
dialect details, each a class attribute or a small hook:

- Queries here are written with ``?`` placeholders; :attr:`SqlStateStore.PARAM` is what the
  driver wants instead (``%s`` for psycopg). No query here may contain a literal ``?`` or ``%``.
- ``FOR_UPDATE`` is appended to the reads of a run row that a write transaction goes on to change.
- ``BLOB_DATA``/``BLOB_SIZE`` read a snapshot body and its size in bytes; ``NO_LIMIT`` is the
  ``LIMIT`` value that means "all rows".
- Upserts (``INSERT … ON CONFLICT … DO UPDATE SET … = excluded.…``) are spelled the same in both.
"""

# Queries are only ever built from the dialect's class constants, never from data: values are bound.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from okrsync.errors import LockError, StateError
from okrsync.models import OrgSnapshot
from okrsync.state import codec, schema
from okrsync.state.base import FINAL_STATUSES, RecordEvent, RunInfo, SnapshotInfo

log = logging.getLogger("okrsync.state")


class NamedRow(Protocol):
    """A result row read by column name (``sqlite3.Row``, psycopg's ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the shared code uses."""

    def execute(self, query: str, params: Any = ..., /) -> Cursor: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


def utcnow() -> datetime:
    return datetime.now(UTC)


def run_info(row: NamedRow) -> RunInfo:
    return RunInfo(
        id=row["id"],
        job=row["job"],
        started_at=codec.from_iso(row["started_at"]),
        finished_at=codec.from_iso(row["finished_at"]) if row["finished_at"] else None,
        status=row["status"],
        mode=row["mode"],
        dry_run=bool(row["dry_run"]),
        summary=json.loads(row["summary"]),
        host=row["host"],
        pid=row["pid"],
        heartbeat_at=codec.from_iso(row["heartbeat_at"]),
    )


def record_event(row: NamedRow) -> RecordEvent:
    return RecordEvent(
        person_id=row["person_id"],
        operation=row["operation"],
        target=row["target"],
        ok=bool(row["ok"]),
        changes=json.loads(row["changes"]),
        error=row["error"],
        field=row["field"],
        retries=row["retries"],
    )


class SqlStateStore(ABC, Generic[C]):
    """:class:`~okrsync.state.StateStore` on an SQL database with one connection per store object.

    The connection is guarded by a ``threading.RLock`` (the engine may heartbeat or record
    events from a worker thread); large snapshots are encoded/decoded outside it, so a
    2-second decode never stalls a heartbeat. ``stale_lock_after``: a running run whose
    heartbeat is older is presumed dead and its lock taken over. ``keep_snapshots``: how many
    committed snapshots per (job, key) to keep for reorg diffs. ``clock`` is injectable.
    """

    MIGRATIONS: ClassVar[tuple[str, ...]] = schema.MIGRATIONS
    SCHEMA_VERSION: ClassVar[int] = len(schema.MIGRATIONS)

    # -- dialect (see the module docstring) ---------------------------------------------------
    PARAM: ClassVar[str] = "?"
    FOR_UPDATE: ClassVar[str] = ""
    BLOB_DATA: ClassVar[str] = "data"
    BLOB_SIZE: ClassVar[str] = "length(data)"
    NO_LIMIT: ClassVar[int | None] = None
    #: DDL of the ``schema_version`` table.
    VERSION_TABLE: ClassVar[str] = schema.VERSION_TABLE
    #: Completes "``{path}`` …" when a database holds tables but no ``schema_version``.
    NOT_A_STORE: ClassVar[str] = "holds tables but is not an okrsync state store"
    #: The driver's error base class (no default: it must not catch our own errors); such errors
    #: become :class:`StateError`.
    DB_ERROR: ClassVar[type[Exception]]

    path: str  # what messages name

    def __init__(
        self,
        *,
        stale_lock_after: timedelta,
        keep_snapshots: int,
        clock: Callable[[], datetime],
    ) -> None:
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        self.stale_lock_after = stale_lock_after
        self.keep_snapshots = keep_snapshots
        self._clock = clock
        self._host = socket.gethostname()
        self._pid_ns = ""  # recorded with each run; identifies the PID namespace where that matters
        self._lock = threading.RLock()
        self._conn: C | None = None

    # -- what a database does its own way ---------------------------------------------------------

    @abstractmethod
    def _connect(self) -> C:
        """A new, configured connection (called once, from :meth:`_open`); nothing stays open if it fails."""

    @abstractmethod
    def _tx(self, *, durable: bool = False) -> AbstractContextManager[C]:
        """One write transaction under the thread lock; rolled back on any exception; driver
        errors become StateError. ``durable``: the commit must also survive power loss."""

    @abstractmethod
    def _migration_tx(self) -> AbstractContextManager[C]:
        """The transaction :meth:`_migrate` runs in."""

    @abstractmethod
    def _tables_query(self) -> tuple[str, tuple[Any, ...]]:
        """A query (and its parameters) whose rows' ``name`` column lists the store's tables."""

    @abstractmethod
    def _takeover_reason(self, row: NamedRow, now: datetime, session_free: bool | None) -> str | None:
        """Why the running row's holder is presumed dead, or None when it may still be alive.

        ``session_free``: whether this session got the job's session lock; None where the
        database has none (see :meth:`_begin`).
        """

    @abstractmethod
    def _insert_returning_id(self, conn: C, query: str, params: tuple[Any, ...]) -> int:
        """Run an INSERT (already in the driver's placeholder style) and return the new row's id."""

    @abstractmethod
    def _executemany(self, conn: C, query: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement (already in the driver's placeholder style) for every row."""

    @abstractmethod
    def _disconnect(self, conn: C) -> None:
        """Close the connection, best effort (closing must not fail)."""

    @abstractmethod
    def integrity_check(self) -> list[str]:
        """Problems found, ``[]`` when healthy. Reports rather than raises: it is a diagnostic."""

    def _explain(self, exc: Exception) -> str:
        """A driver error as message text."""
        return str(exc)

    def _ddl(self, statement: str) -> str:
        """One statement of :attr:`MIGRATIONS` in this database's dialect."""
        return statement

    def _finished(self, run_id: int, job: str | None) -> None:
        """Called whenever :meth:`finish_run` ends, with the run's job once it was read."""

    # -- plumbing -------------------------------------------------------------------------

    def _open(self) -> None:
        """Connect and migrate; on failure nothing stays open and driver errors become StateError."""
        try:
            self._conn = self._connect()
            self._migrate()
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if isinstance(exc, self.DB_ERROR):
                raise StateError(f"cannot open state database {self.path}: {self._explain(exc)}") from exc
            raise

    def _connection(self) -> C:
        if self._conn is None:
            raise StateError(f"state store {self.path} is closed")
        return self._conn

    def _sql(self, query: str) -> str:
        """A query written with ``?`` placeholders, in the driver's placeholder style."""
        return query if self.PARAM == "?" else query.replace("?", self.PARAM)

    @contextmanager
    def _db_errors(self) -> Iterator[None]:
        """Driver errors raised inside become StateError naming the store."""
        try:
            yield
        except self.DB_ERROR as exc:
            raise StateError(f"state database {self.path}: {self._explain(exc)}") from exc

    def _read(self, query: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock, self._db_errors():
            return self._connection().execute(self._sql(query), tuple(params)).fetchall()

    def _table_names(self) -> set[str]:
        query, params = self._tables_query()
        return {r["name"] for r in self._read(query, params)}

    def _migrate(self) -> None:
        target = len(self.MIGRATIONS)
        with self._migration_tx() as conn:
            query, params = self._tables_query()
            tables = {r["name"] for r in conn.execute(self._sql(query), params).fetchall()}
            if tables and "schema_version" not in tables:
                raise StateError(f"{self.path} {self.NOT_A_STORE}")
            conn.execute(self.VERSION_TABLE)
            current = int(
                conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version").fetchone()["v"]
            )
            if current > target:
                raise StateError(
                    f"{self.path} has state schema version {current}, but this okrsync knows versions up to "
                    f"{target}; upgrade okrsync to use it"
                )
            now = codec.to_iso(self._clock())
            for version in range(current + 1, target + 1):
                for statement in schema.statements(self.MIGRATIONS[version - 1]):
                    conn.execute(self._ddl(statement))
                conn.execute(
                    self._sql("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"),
                    (version, now),
                )
            if current and current < target:
                log.info("migrated state %s from schema version %d to %d", self.path, current, target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Idempotent. (PostgreSQL drops any advisory lock a still-running run held with the session.)"""
        with self._lock:
            if self._conn is None:
                return
            self._disconnect(self._conn)
            self._conn = None

    # -- runs and locks ----------------------------------------------------------------------

    def _stale_reason(self, row: NamedRow, now: datetime) -> str | None:
        """Why a holder is presumed dead by its heartbeat alone (any database), or None."""
        heartbeat = codec.from_iso(row["heartbeat_at"])
        if now - heartbeat > self.stale_lock_after:
            return f"no heartbeat since {row['heartbeat_at']} (stale after {self.stale_lock_after})"
        return None

    def begin_run(self, job: str, *, started_at: datetime, mode: str, dry_run: bool = False) -> int:
        """Take the job's lock and create the run row; LockError if a live run holds it."""
        now = self._clock()
        with self._tx() as conn:
            return self._begin(conn, job, now, started_at, mode, dry_run, session_free=None)

    def _begin(
        self,
        conn: C,
        job: str,
        now: datetime,
        started_at: datetime,
        mode: str,
        dry_run: bool,
        *,
        session_free: bool | None,
    ) -> int:
        """Inside a write transaction: take over a dead holder's running row, insert ours.

        ``session_free=False`` (this session did not get the job's session lock) with no running
        row means another session is between its lock and its row: refused, try again.
        """
        held = conn.execute(
            self._sql("SELECT * FROM runs WHERE job = ? AND status = 'running'" + self.FOR_UPDATE), (job,)
        ).fetchone()
        reason = None
        if held is not None:
            reason = self._takeover_reason(held, now, session_free)
            if reason is None:
                raise LockError(
                    f"job '{job}' is already running (run {held['id']}, pid {held['pid']} on host "
                    f"{held['host']}, since {held['started_at']}, last heartbeat {held['heartbeat_at']})"
                )
            conn.execute(
                self._sql("UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ?"),
                (codec.to_iso(now), held["id"]),
            )
        elif session_free is False:
            raise LockError(
                f"job '{job}' is being started or finished by another session of {self.path}; "
                "try again in a moment"
            )
        run_id = self._insert_returning_id(
            conn,
            self._sql(
                "INSERT INTO runs (job, status, mode, dry_run, started_at, heartbeat_at, host, pid, pid_ns)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                job,
                mode,
                int(dry_run),
                codec.to_iso(started_at),
                codec.to_iso(now),
                self._host,
                os.getpid(),
                self._pid_ns,
            ),
        )
        if held is not None:
            summary = json.loads(held["summary"])
            summary["interrupted"] = {"reason": reason, "taken_over_by": run_id, "at": codec.to_iso(now)}
            conn.execute(
                self._sql("UPDATE runs SET summary = ? WHERE id = ?"), (codec.dump_json(summary), held["id"])
            )
            log.warning("job %r: took over the lock of run %d (%s)", job, held["id"], reason)
        return run_id

    def _require_lock(self, conn: C, run_id: int, job: str | None = None) -> NamedRow:
        row: NamedRow | None = conn.execute(
            self._sql("SELECT * FROM runs WHERE id = ?" + self.FOR_UPDATE), (run_id,)
        ).fetchone()
        if row is None:
            raise StateError(f"run {run_id} does not exist")
        if job is not None and row["job"] != job:
            raise StateError(f"run {run_id} belongs to job '{row['job']}', not '{job}'")
        if row["status"] != "running":
            raise LockError(
                f"run {run_id} of job '{row['job']}' no longer holds the lock (status {row['status']}); "
                "another run may have taken over"
            )
        return row

    def heartbeat(self, run_id: int) -> None:
        """Prove the run is alive; LockError if it was taken over, so the engine stops writing."""
        with self._tx() as conn:
            self._require_lock(conn, run_id)
            conn.execute(
                self._sql("UPDATE runs SET heartbeat_at = ? WHERE id = ?"),
                (codec.to_iso(self._clock()), run_id),
            )

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None:
        """Record the outcome and release the lock.

        A run that was taken over keeps status ``interrupted`` (its lock is gone and another
        run owns the job), but what it reported is kept in the summary. This never raises
        LockError, because it is typically called from a ``finally`` block.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"unknown final run status {status!r}; expected one of {sorted(FINAL_STATUSES)}")
        body = dict(summary)
        job: str | None = None
        try:
            with self._tx() as conn:
                row = conn.execute(
                    self._sql("SELECT job, status, summary FROM runs WHERE id = ?" + self.FOR_UPDATE),
                    (run_id,),
                ).fetchone()
                if row is None:
                    raise StateError(f"run {run_id} does not exist")
                job = row["job"]
                if row["status"] == "interrupted":
                    old = json.loads(row["summary"])
                    body = {**body, "interrupted": old.get("interrupted"), "reported_status": status}
                    status = "interrupted"
                    log.warning("run %d of job %r finished after it was taken over", run_id, row["job"])
                elif row["status"] != "running":
                    raise StateError(f"run {run_id} already finished with status {row['status']}")
                now = codec.to_iso(self._clock())
                conn.execute(
                    self._sql(
                        "UPDATE runs SET status = ?, finished_at = ?, heartbeat_at = ?, summary = ?"
                        " WHERE id = ?"
                    ),
                    (status, now, now, codec.dump_json(body, lenient=True), run_id),
                )
        finally:
            self._finished(run_id, job)

    def runs(self, job: str | None = None, limit: int = 20) -> list[RunInfo]:
        """Newest first."""
        rows = self._read(
            "SELECT * FROM runs WHERE (CAST(? AS TEXT) IS NULL OR job = ?) ORDER BY id DESC LIMIT ?",
            [job, job, limit],
        )
        return [run_info(r) for r in rows]

    def get_run(self, run_id: int) -> RunInfo | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", [run_id])
        return run_info(rows[0]) if rows else None

    # -- snapshots and cursors ---------------------------------------------------------------

    def get_snapshot(self, job: str, key: str, *, back: int = 0) -> OrgSnapshot | None:
        """The last committed snapshot under ``key``; ``back=1`` the one before it, and so on."""
        if back < 0:
            raise ValueError("back must be >= 0")
        rows = self._read(
            f"SELECT id, {self.BLOB_DATA} AS data, encoding FROM snapshots WHERE job = ? AND key = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?",
            [job, key, back],
        )
        if not rows:
            return None
        try:  # outside the thread lock: decoding 100,000 people takes a while
            return codec.decode_snapshot(bytes(rows[0]["data"]), rows[0]["encoding"])
        except codec.SnapshotDecodeError as exc:
            raise StateError(f"snapshot {rows[0]['id']} ({job}/{key}) in {self.path}: {exc}") from exc

    def snapshot_history(self, job: str, key: str) -> list[SnapshotInfo]:
        """The kept snapshots under ``key``, newest first, without decoding them."""
        rows = self._read(
            "SELECT id, job, key, run_id, source, taken_at, committed_at, people, units,"
            f" {self.BLOB_SIZE} AS size FROM snapshots WHERE job = ? AND key = ? ORDER BY id DESC",
            [job, key],
        )
        return [
            SnapshotInfo(
                id=r["id"],
                job=r["job"],
                key=r["key"],
                run_id=r["run_id"],
                source=r["source"],
                taken_at=codec.from_iso(r["taken_at"]),
                committed_at=codec.from_iso(r["committed_at"]),
                people=r["people"],
                units=r["units"],
                size=r["size"],
            )
            for r in rows
        ]

    def get_cursor(self, job: str, key: str) -> str | None:
        rows = self._read("SELECT value FROM cursors WHERE job = ? AND key = ?", [job, key])
        return str(rows[0]["value"]) if rows else None

    def commit(
        self,
        run_id: int,
        job: str,
        *,
        snapshots: Mapping[str, OrgSnapshot],
        cursors: Mapping[str, str | None],
    ) -> None:
        """Store all snapshots and cursors in one durable transaction, or none of them.

        Refused (StateError/LockError, nothing written) when the run is a dry run, belongs to
        another job, or no longer holds the lock: a run that was taken over must not
        overwrite the newer run's state. A ``None`` cursor is removed (next pull is full).
        """
        encoded: list[tuple[str, OrgSnapshot, bytes]] = []
        for key, snapshot in snapshots.items():
            try:  # before the transaction: serialising 100,000 people must not hold the write lock
                encoded.append((key, snapshot, codec.encode_snapshot(snapshot)))
            except (ValueError, TypeError) as exc:
                raise StateError(f"cannot serialise snapshot '{key}' of job '{job}': {exc}") from exc
        for key, value in cursors.items():
            if value is not None and not isinstance(value, str):
                raise TypeError(f"cursor '{key}' must be a str or None, not {type(value).__name__}")
        with self._tx(durable=True) as conn:
            row = self._require_lock(conn, run_id, job)
            if row["dry_run"]:
                raise StateError(f"run {run_id} of job '{job}' is a dry run; dry runs never commit state")
            now = codec.to_iso(self._clock())
            for key, snapshot, blob in encoded:
                conn.execute(
                    self._sql(
                        "INSERT INTO snapshots (job, key, run_id, source, taken_at, committed_at, people,"
                        " units, encoding, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        job,
                        key,
                        run_id,
                        snapshot.source,
                        codec.to_iso(snapshot.taken_at),
                        now,
                        len(snapshot.people),
                        len(snapshot.units),
                        codec.SNAPSHOT_ENCODING,
                        blob,
                    ),
                )
                conn.execute(
                    self._sql(
                        "DELETE FROM snapshots WHERE job = ? AND key = ? AND id NOT IN"
                        " (SELECT id FROM snapshots WHERE job = ? AND key = ? ORDER BY id DESC LIMIT ?)"
                    ),
                    (job, key, job, key, self.keep_snapshots),
                )
            for key, value in cursors.items():
                if value is None:
                    conn.execute(self._sql("DELETE FROM cursors WHERE job = ? AND key = ?"), (job, key))
                else:
                    conn.execute(
                        self._sql(
                            "INSERT INTO cursors (job, key, value, run_id, updated_at) VALUES (?, ?, ?, ?, ?)"
                            " ON CONFLICT (job, key) DO UPDATE SET value = excluded.value,"
                            " run_id = excluded.run_id, updated_at = excluded.updated_at"
                        ),
                        (job, key, value, run_id, now),
                    )
            conn.execute(self._sql("UPDATE runs SET heartbeat_at = ? WHERE id = ?"), (now, run_id))

    # -- id maps -----------------------------------------------------------------------------

    def get_id_map(self, system: str) -> dict[str, str]:
        rows = self._read("SELECT source_id, target_id FROM id_map WHERE system = ?", [system])
        return {r["source_id"]: r["target_id"] for r in rows}

    def put_ids(self, system: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Upsert and commit durably at once: what a target created must survive a crash."""
        now = codec.to_iso(self._clock())
        rows = [(system, source_id, target_id, now) for source_id, target_id in pairs]
        if not rows:
            return
        with self._tx(durable=True) as conn:
            self._executemany(
                conn,
                self._sql(
                    "INSERT INTO id_map (system, source_id, target_id, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (system, source_id) DO UPDATE SET target_id = excluded.target_id,"
                    " updated_at = excluded.updated_at"
                ),
                rows,
            )

    def delete_ids(self, system: str, source_ids: Iterable[str]) -> None:
        """Forget mappings, e.g. after the target record was deleted."""
        rows = [(system, source_id) for source_id in source_ids]
        if rows:
            with self._tx(durable=True) as conn:
                self._executemany(
                    conn, self._sql("DELETE FROM id_map WHERE system = ? AND source_id = ?"), rows
                )

    # -- events ------------------------------------------------------------------------------

    def record_events(self, run_id: int, events: Iterable[RecordEvent]) -> None:
        """Append events in one transaction; secret-looking fields and error text are redacted."""
        rows = [
            (
                run_id,
                e.person_id,
                e.operation,
                e.target,
                int(e.ok),
                codec.dump_json(codec.scrub_changes(e.changes)),
                codec.scrub_error(e.error),
                e.field,
                e.retries,
            )
            for e in events
        ]
        if not rows:
            return
        with self._tx() as conn:
            if conn.execute(self._sql("SELECT 1 FROM runs WHERE id = ?"), (run_id,)).fetchone() is None:
                raise StateError(f"run {run_id} does not exist")
            self._executemany(
                conn,
                self._sql(
                    "INSERT INTO events (run_id, person_id, operation, target, ok, changes, error, field,"
                    " retries) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                rows,
            )

    def events(
        self, run_id: int, *, only_failures: bool = False, limit: int | None = None
    ) -> list[RecordEvent]:
        """In the order they were recorded."""
        rows = self._read(
            "SELECT * FROM events WHERE run_id = ? AND (? = 0 OR ok = 0) ORDER BY id LIMIT ?",
            [run_id, int(only_failures), self.NO_LIMIT if limit is None else limit],
        )
        return [record_event(r) for r in rows]

    def person_history(self, person_id: str, limit: int = 100) -> list[tuple[RunInfo, RecordEvent]]:
        """Every event about one person across runs, newest first, with the run it happened in."""
        rows = self._read(
            "SELECT r.id, r.job, r.started_at, r.finished_at, r.status, r.mode, r.dry_run, r.summary, r.host,"
            " r.pid, r.heartbeat_at, e.person_id, e.operation, e.target, e.ok, e.changes, e.error, e.field,"
            " e.retries FROM events e JOIN runs r ON r.id = e.run_id"
            " WHERE e.person_id = ? ORDER BY e.id DESC LIMIT ?",
            [person_id, limit],
        )
        runs: dict[int, RunInfo] = {}
        out = []
        for row in rows:
            run = runs[row["id"]] if row["id"] in runs else runs.setdefault(row["id"], run_info(row))
            out.append((run, record_event(row)))
        return out

    # -- small key/value store -----------------------------------------------------------------

    def put_value(self, namespace: str, key: str, value: Any) -> None:
        """Store a small JSON value (KR metrics, goal-map metadata); not for secrets or bulk data."""
        text = codec.dump_json(value)
        with self._tx() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                    " updated_at = excluded.updated_at"
                ),
                (namespace, key, text, codec.to_iso(self._clock())),
            )

    def get_value(self, namespace: str, key: str) -> Any | None:
        rows = self._read("SELECT value FROM kv WHERE namespace = ? AND key = ?", [namespace, key])
        return json.loads(rows[0]["value"]) if rows else None

    # -- health ------------------------------------------------------------------------------

    def _missing_tables(self, tables: set[str]) -> list[str]:
        return [f"schema: table {name} is missing" for name in sorted(schema.TABLES - tables)]

    def _version_problems(self) -> list[str]:
        """A gap in the applied migrations; StateError when ``schema_version`` cannot be read."""
        applied = [r["version"] for r in self._read("SELECT version FROM schema_version ORDER BY version")]
        expected = list(range(1, len(self.MIGRATIONS) + 1))
        return [] if applied == expected else [f"schema: applied versions {applied}, expected {expected}"]
