"""The SQLite state store: one file, WAL, one connection per store object.

Why these choices:

- WAL lets ``okrsync runs``/reports read while a sync writes; ``synchronous=NORMAL`` is
  crash-safe for the application under WAL, and the two writes whose loss would cost the
  most — :meth:`commit` (cursor + snapshot) and :meth:`put_ids` (a lost id map means
  duplicate accounts on rerun) — switch to ``FULL`` so they also survive power loss.
- One connection guarded by a ``threading.RLock``: the engine may heartbeat or record events
  from a worker thread, and sqlite3 connections must not be used concurrently.
- Every write is ``BEGIN IMMEDIATE``: it takes SQLite's write lock up front, so two
  processes racing in :meth:`begin_run` serialise instead of failing at COMMIT.
- Large snapshots are encoded/decoded *outside* the thread lock, so a 2-second decode never
  stalls a heartbeat.

The queries and the run/lock protocol are shared with the PostgreSQL store in
:mod:`okrsync.state.sql`; this module holds what is SQLite's own.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any, ClassVar

from okrsync.errors import StateError
from okrsync.state.sql import NamedRow, SqlStateStore, utcnow


def _pid_namespace() -> str:
    """Identifies the PID namespace, so containers sharing a hostname never judge each other's pids."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: rely on the heartbeat
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


class SQLiteStateStore(SqlStateStore[sqlite3.Connection]):
    """:class:`~okrsync.state.StateStore` on one SQLite file (or ``":memory:"`` for tests).

    ``stale_lock_after``: a running run whose heartbeat is older is presumed dead and its lock
    taken over (a dead pid on this host is taken over at once). ``keep_snapshots``: how many
    committed snapshots per (job, key) to keep for reorg diffs. ``clock`` is injectable.
    """

    BLOB_DATA: ClassVar[str] = "CAST(data AS BLOB)"
    NO_LIMIT: ClassVar[int | None] = -1  # LIMIT -1: no limit
    NOT_A_STORE: ClassVar[str] = "is an SQLite database but not an okrsync state store"
    DB_ERROR: ClassVar[type[Exception]] = sqlite3.Error

    def __init__(
        self,
        path: str | os.PathLike[str] = "okrsync.db",
        *,
        stale_lock_after: timedelta = timedelta(hours=6),
        keep_snapshots: int = 5,
        busy_timeout: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(stale_lock_after=stale_lock_after, keep_snapshots=keep_snapshots, clock=clock)
        self.path = os.fspath(path)
        self._pid_ns = _pid_namespace()
        self._busy_timeout = busy_timeout
        if self.path != ":memory:" and not os.path.exists(self.path):
            # the file holds personal data: create it owner-only (SQLite gives -wal/-shm the same mode)
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StateError(f"cannot create state database {self.path}: {exc.strerror}") from exc
        self._open()

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on any exception; sqlite3 errors become StateError."""
        with self._lock:
            conn = self._connection()
            try:
                with self._db_errors():
                    if durable:
                        conn.execute("PRAGMA synchronous=FULL")
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.execute("COMMIT")
                    finally:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
            finally:
                if durable:
                    with suppress(sqlite3.Error):  # if this fails the connection just stays on FULL
                        conn.execute("PRAGMA synchronous=NORMAL")

    def _migration_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._tx()

    def _tables_query(self) -> tuple[str, tuple[Any, ...]]:
        return "SELECT name FROM sqlite_master WHERE type = 'table'", ()

    def _insert_returning_id(self, conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> int:
        run_id = conn.execute(query, params).lastrowid
        assert run_id is not None
        return run_id

    def _executemany(self, conn: sqlite3.Connection, query: str, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(query, rows)

    def _disconnect(self, conn: sqlite3.Connection) -> None:
        with suppress(sqlite3.Error):  # best effort; closing must not fail
            conn.execute("PRAGMA optimize")
        conn.close()

    # -- runs and locks ----------------------------------------------------------------------

    def _takeover_reason(self, row: NamedRow, now: datetime, session_free: bool | None) -> str | None:
        """A stale heartbeat, or a holder on this host (and PID namespace) whose pid is gone."""
        stale = self._stale_reason(row, now)
        if stale is not None:
            return stale
        if row["host"] == self._host and row["pid_ns"] == self._pid_ns and not _pid_alive(row["pid"]):
            return f"pid {row['pid']} on host {row['host']} is no longer running"
        return None

    # -- health ------------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """Problems found, ``[]`` when healthy. Reports rather than raises: it is a diagnostic."""
        problems: list[str] = []
        try:
            for (message,) in self._read("PRAGMA integrity_check"):
                if message != "ok":
                    problems.append(f"integrity: {message}")
            for row in self._read("PRAGMA foreign_key_check"):
                problems.append(f"foreign key: {row[0]} row {row[1]} references a missing {row[2]}")
            problems += self._missing_tables(self._table_names())
            problems += self._version_problems()
        except StateError as exc:
            problems.append(str(exc))
        return problems
