"""One tenant's job never runs twice at once, whichever workers its deliveries land on.

:class:`PgAdvisoryTenantLock` takes ``pg_try_advisory_lock`` on a hash of (tenant, job) on a
session of its own. PostgreSQL releases it when that session ends, so a SIGKILLed worker (or a
lost machine) frees its tenants at once; a redelivered task then takes the lock and converges.
A second delivery while the first runs does not wait: :meth:`acquire` returns False and the
task is retried later. The state store's own job lock (a ``running`` run row) stays in force
underneath, so even a fleet without this lock never runs one tenant's job concurrently.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import psycopg

from okrsync.state.postgres import advisory_key, redact_url, split_schema

__all__ = ["NoTenantLock", "PgAdvisoryTenantLock", "TenantLock"]


class TenantLock(Protocol):
    def acquire(self, tenant: str, job: str) -> bool: ...

    def release(self, tenant: str, job: str) -> None: ...

    def close(self) -> None: ...


class NoTenantLock:
    """Relies on the state store's job lock alone (e.g. SQLite files on one machine)."""

    def acquire(self, tenant: str, job: str) -> bool:
        return True

    def release(self, tenant: str, job: str) -> None:
        return None

    def close(self) -> None:
        return None


def lock_key(tenant: str, job: str) -> int:
    return advisory_key("okrsync:tenant-job", tenant, job)


class PgAdvisoryTenantLock:
    """Session-level advisory locks on one connection per worker process (opened lazily)."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self._dsn = split_schema(url)[0]
        self.url = redact_url(self._dsn)
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="okrsync-lock",
            )
            self._conn = conn
        return conn

    def acquire(self, tenant: str, job: str) -> bool:
        with self._mutex:
            row = (
                self._connection()
                .execute("SELECT pg_try_advisory_lock(%s)", (lock_key(tenant, job),))
                .fetchone()
            )
            return bool(row and row[0])

    def release(self, tenant: str, job: str) -> None:
        with self._mutex:
            if self._conn is None:
                return
            try:
                self._connection().execute("SELECT pg_advisory_unlock(%s)", (lock_key(tenant, job),))
            except psycopg.Error:  # the session is gone, and with it the lock
                self.close_unlocked()

    def close_unlocked(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._mutex:
            self.close_unlocked()
