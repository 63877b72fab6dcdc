"""Durable state of okrsync jobs: runs and their locks, snapshots, cursors, id maps, events.

Import from here: ``from okrsync.state import StateStore, SQLiteStateStore, open_state``.
The engine types against :class:`StateStore`; :func:`open_state` picks the backend from the
configured ``[state] path``/``url``: a SQLite file by default, or
:class:`~okrsync.state.postgres.PostgresStateStore` for ``postgresql://`` URLs (imported lazily,
so psycopg is only needed by deployments that use it: ``pip install okrsync[fleet]``).
"""

from __future__ import annotations

import os
from datetime import timedelta

from okrsync.errors import StateError
from okrsync.state.base import FINAL_STATUSES, RUN_STATUSES, RecordEvent, RunInfo, SnapshotInfo, StateStore
from okrsync.state.sqlite import SQLiteStateStore

__all__ = [
    "FINAL_STATUSES",
    "RUN_STATUSES",
    "RecordEvent",
    "RunInfo",
    "SQLiteStateStore",
    "SnapshotInfo",
    "StateStore",
    "open_state",
]


def open_state(url_or_path: str, *, stale_lock_after: timedelta = timedelta(hours=6)) -> StateStore:
    """Open the store named by ``url_or_path``.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's convention), a plain
    path (``~`` expanded), ``:memory:``, or ``postgresql://user@host/db?schema=tenant_x`` (one
    schema per tenant; default schema ``okrsync``).
    """
    target = url_or_path.strip()
    if "://" in target:
        scheme, _, rest = target.partition("://")
        scheme = scheme.lower()
        if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
            try:
                from okrsync.state.postgres import PostgresStateStore
            except ImportError as exc:  # pragma: no cover - depends on the installed extras
                raise StateError(
                    f"PostgreSQL state needs psycopg: pip install 'okrsync[fleet]' ({exc})"
                ) from None
            return PostgresStateStore(target, stale_lock_after=stale_lock_after)
        if scheme != "sqlite":
            raise StateError(
                f"unsupported state URL scheme {scheme!r}: use a path, sqlite:///path, :memory: or postgresql://…"
            )
        if rest in ("", "/", "/:memory:"):
            target = ":memory:"
        elif rest.startswith("/"):
            target = rest[1:]
        else:
            raise StateError(
                "a sqlite state URL needs three slashes: sqlite:///relative.db or sqlite:////abs.db"
            )
    if target != ":memory:":
        target = os.path.expanduser(target)
    return SQLiteStateStore(target, stale_lock_after=stale_lock_after)
