"""The PostgreSQL state store: the SQLite store's schema and semantics on a shared server.

Why these choices:

- **One schema per tenant.** ``postgresql://host/db?schema=tenant_acme`` puts a store's
  tables in that schema (created on first open). The tables are exactly the SQLite ones
  (the same migration list, translated by :func:`okrsync.state.schema.to_postgres`), so a
  tenant's state can be dumped, moved or dropped with one ``DROP SCHEMA … CASCADE``, a
  tenant can never read another's rows by a forgotten ``WHERE``, and per-tenant
  ``search_path`` keeps every query identical to SQLite's. The default schema is ``okrsync``.
- **Job lock = running row + session advisory lock.** As in SQLite, a partial unique index
  allows one ``running`` row per job, so the lock and the run history never disagree. The
  run also holds ``pg_try_advisory_lock`` on a hash of (schema, job) on the store's session:
  PostgreSQL releases it the moment the holder's connection ends, on whatever machine it
  ran. So a ``running`` row whose advisory lock is free belongs to a dead holder and is taken
  over at once; a live-but-silent holder is taken over after ``stale_lock_after`` without a
  heartbeat, exactly like SQLite.
- **Migrations under a transaction-level advisory lock** on the schema name, so a fleet of
  workers opening a new tenant at the same moment migrate it once.
- One connection per store object (autocommit; explicit transactions for writes), guarded by
  a ``threading.RLock`` like the SQLite store. Snapshots are encoded/decoded outside it.

The queries and the run/lock protocol are shared with the SQLite store in
:mod:`okrsync.state.sql`; this module holds what is PostgreSQL's own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from okrsync.errors import StateError
from okrsync.state import schema
from okrsync.state.sql import NamedRow, SqlStateStore, utcnow

Row = dict[str, Any]
DEFAULT_SCHEMA = "okrsync"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[2]}"))


def split_schema(url: str) -> tuple[str, str]:
    """``postgresql://…?schema=x&sslmode=require`` → (URL without ``schema``, ``x``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    scheme = "postgresql" if parts.scheme.startswith(("postgres", "postgresql")) else parts.scheme
    clean = urlunsplit(parts._replace(scheme=scheme, query=urlencode(rest)))
    return clean, (chosen[-1] if chosen else DEFAULT_SCHEMA)


class PostgresStateStore(SqlStateStore[psycopg.Connection[Row]]):
    """:class:`~okrsync.state.StateStore` in one PostgreSQL schema.

    ``url``: a libpq URL, optionally with ``?schema=NAME`` (lower-case letters, digits, ``_``;
    default ``okrsync``); ``schema=`` overrides it. Other arguments as for
    :class:`~okrsync.state.SQLiteStateStore`.
    """

    PARAM: ClassVar[str] = "%s"
    FOR_UPDATE: ClassVar[str] = " FOR UPDATE"
    BLOB_SIZE: ClassVar[str] = "octet_length(data)"
    NO_LIMIT: ClassVar[int | None] = None  # LIMIT NULL: no limit
    VERSION_TABLE: ClassVar[str] = schema.PG_VERSION_TABLE
    NOT_A_STORE: ClassVar[str] = "holds tables but is not an okrsync state store"
    DB_ERROR: ClassVar[type[Exception]] = psycopg.Error

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        stale_lock_after: timedelta = timedelta(hours=6),
        keep_snapshots: int = 5,
        connect_timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(stale_lock_after=stale_lock_after, keep_snapshots=keep_snapshots, clock=clock)
        dsn, from_url = split_schema(url)
        self.schema = schema or from_url
        if not _SCHEMA_NAME.match(self.schema):
            raise StateError(
                f"invalid PostgreSQL schema name {self.schema!r}: use lower-case letters, digits and _"
            )
        self.url = redact_url(dsn)
        self.path = f"{self.url} (schema {self.schema})"  # what messages name, like SQLite's path
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._locked_jobs: dict[str, int] = {}  # job → run id whose advisory lock this session holds
        self._open()

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Row]:
        return psycopg.connect(
            self._dsn,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, int(self._connect_timeout)),
            application_name="okrsync",
        )

    def _explain(self, exc: Exception) -> str:
        """The server's one-line message (no DSN, so no password)."""
        primary = getattr(getattr(exc, "diag", None), "message_primary", None)
        if primary:
            return str(primary)
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[psycopg.Connection[Row]]:
        """One write transaction; rolled back on any exception; psycopg errors become StateError.

        Every commit is durable (``synchronous_commit`` is the server's business), so ``durable``
        changes nothing here.
        """
        with self._lock:
            conn = self._connection()
            with self._db_errors(), conn.transaction():
                yield conn

    @contextmanager
    def _migration_tx(self) -> Iterator[psycopg.Connection[Row]]:
        """Serialised per schema by a transaction-level advisory lock; creates the schema and
        points ``search_path`` at it (SET inside the transaction is kept on commit)."""
        conn = self._connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("okrsync:migrate", self.schema),))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            yield conn

    def _migrate(self) -> None:
        super()._migrate()
        # set again in case the server resets it
        self._connection().execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    def _ddl(self, statement: str) -> str:
        return schema.to_postgres(statement)

    def _tables_query(self) -> tuple[str, tuple[Any, ...]]:
        return "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ?", (
            self.schema,
        )

    def _insert_returning_id(self, conn: psycopg.Connection[Row], query: str, params: tuple[Any, ...]) -> int:
        row = conn.execute(query + " RETURNING id", params).fetchone()
        assert row is not None
        return int(row["id"])

    def _executemany(self, conn: psycopg.Connection[Row], query: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(query, rows)

    def _disconnect(self, conn: psycopg.Connection[Row]) -> None:
        with suppress(psycopg.Error):
            conn.close()
        self._locked_jobs.clear()

    # -- runs and locks ----------------------------------------------------------------------

    def _job_key(self, job: str) -> int:
        return advisory_key("okrsync:job", self.schema, job)

    def _takeover_reason(self, row: NamedRow, now: datetime, session_free: bool | None) -> str | None:
        """Its session ended (we got the advisory lock), or a stale heartbeat."""
        if session_free:
            return (
                f"pid {row['pid']} on host {row['host']} is no longer running "
                "(its database session ended and released the job's advisory lock)"
            )
        return self._stale_reason(row, now)

    def begin_run(self, job: str, *, started_at: datetime, mode: str, dry_run: bool = False) -> int:
        """Take the job's lock and create the run row; LockError if a live run holds it."""
        now = self._clock()
        with self._lock:
            self._connection()  # a closed store fails here, before it takes an advisory lock
            got = False
            if job not in self._locked_jobs:  # advisory locks nest per session: never take ours twice
                got = bool(self._scalar("SELECT pg_try_advisory_lock(?)", (self._job_key(job),)))
            try:
                with self._tx() as conn:
                    run_id = self._begin(conn, job, now, started_at, mode, dry_run, session_free=got)
            except BaseException:
                if got:
                    self._unlock(job)
                raise
            if got:
                self._locked_jobs[job] = run_id
            return run_id

    def _scalar(self, query: str, params: tuple[Any, ...]) -> Any:
        rows = self._read(query, params)
        return next(iter(rows[0].values())) if rows else None

    def _unlock(self, job: str) -> None:
        self._locked_jobs.pop(job, None)
        with suppress(StateError):  # a lost session has released it already
            self._scalar("SELECT pg_advisory_unlock(?)", (self._job_key(job),))

    def _finished(self, run_id: int, job: str | None) -> None:
        """Release the job's advisory lock if this run took it."""
        if job is not None and self._locked_jobs.get(job) == run_id:
            with self._lock:
                self._unlock(job)

    # -- health ------------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """Problems found, ``[]`` when healthy (PostgreSQL checks pages and foreign keys itself)."""
        problems: list[str] = []
        try:
            tables = self._table_names()
            problems += self._missing_tables(tables)
            if "schema_version" in tables:
                problems += self._version_problems()
            if {"runs", "snapshots"} <= tables:
                for r in self._read(
                    "SELECT job, count(*) AS n FROM runs WHERE status = 'running'"
                    " GROUP BY job HAVING count(*) > 1"
                ):
                    problems.append(f"runs: job {r['job']} has {r['n']} running rows")
        except StateError as exc:
            problems.append(str(exc))
        return problems
