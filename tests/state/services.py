"""The machine's PostgreSQL for tests: where it is, whether it answers, and throwaway schemas.

``OKRSYNC_TEST_PG`` overrides the server (default: 127.0.0.1:5432, database ``test``, trust auth).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_URL = os.environ.get("OKRSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_ENV = "OKRSYNC_REQUIRE_SERVICES"


def pg_available() -> tuple[bool, str]:
    """(True, "") when PostgreSQL answers, else (False, why) for the skip message."""
    try:
        import psycopg
    except ImportError as exc:
        return False, f"psycopg is not installed ({exc}); pip install -e '.[test]'"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"PostgreSQL at {PG_URL} is unreachable: {first}"
    return True, ""


def drop_schema(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def fresh_schema(prefix: str = "okrsync_test") -> Iterator[str]:
    """A schema name nobody else uses; dropped (with everything in it) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        drop_schema(name)
