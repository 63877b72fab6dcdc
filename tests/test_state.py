"""SQLite state store specifics (WAL, file modes, corrupt files, URLs) and the shared test data.

What every store must do is in ``tests/state/test_contract.py``, run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from okrsync.errors import StateError
from okrsync.models import OrgSnapshot, OrgUnit, Person
from okrsync.state import RecordEvent, SQLiteStateStore, StateStore, open_state
from okrsync.state.schema import statements

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def people(n: int, *, title: str = "Engineer") -> tuple[Person, ...]:
    rows = [
        {
            "id": f"E{i:06d}",
            "external_ids": {"workday": f"W{i}"},
            "email": f"p{i}@acme.test",
            "display_name": f"Person {i}",
            "family_name": f"Family{i % 997}",
            "title": title,
            "department": f"Dept {i % 50}",
            "hire_date": date(2020, 1, 1 + i % 28).isoformat(),
            "manager_id": None if i == 0 else f"E{(i - 1) // 8:06d}",
            "status": "on_leave" if i % 97 == 0 else "active",
            "additional_manager_ids": ["E000000"] if i % 50 == 1 else [],
            "attributes": {"grade": i % 10, "remote": i % 2 == 0},
        }
        for i in range(n)
    ]
    return tuple(TypeAdapter(list[Person]).validate_python(rows))


def snapshot(n: int = 3, *, source: str = "workday", title: str = "Engineer") -> OrgSnapshot:
    return OrgSnapshot(
        source=source,
        taken_at=T0,
        people=people(n, title=title),
        units=(OrgUnit(id="U1", name="Engineering"), OrgUnit(id="U2", name="Sales", parent_id="U1")),
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStateStore]:
    with SQLiteStateStore(db) as s:
        yield s


# -- SQLite-only cases; the store-agnostic contract is tests/state/test_contract.py -----------


def test_store_satisfies_protocol_and_uses_wal(store: SQLiteStateStore, db: Path) -> None:
    assert isinstance(store, StateStore)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    if os.name == "posix":  # holds personal data: owner-only
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_corrupted_file_is_reported_or_refused(db: Path) -> None:
    with SQLiteStateStore(db) as store:
        run = store.begin_run("nightly", started_at=T0, mode="full")
        for batch in range(20):  # enough b-tree pages that the middle of the file is table/index data
            store.record_events(
                run,
                [
                    RecordEvent(f"E{batch}-{i}", "update", "entra", True, {"t": ["a", "b"]})
                    for i in range(200)
                ],
            )
    size = db.stat().st_size
    page = 4096
    with db.open("r+b") as f:  # clobber four whole pages in the middle, header untouched
        f.seek((size // 2) // page * page)
        f.write(bytes(range(256)) * (4 * page // 256))

    try:
        store = SQLiteStateStore(db)
    except StateError as exc:  # acceptable: refused at open, naming the file
        assert str(db) in str(exc)
        return
    with store:
        problems = store.integrity_check()
    assert problems, "a database with four overwritten pages must not pass integrity_check"
    assert any(p.startswith("integrity:") or "malformed" in p for p in problems)


def test_non_sqlite_file_is_refused_with_its_path(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"this is not a database, just some text" * 200)
    with pytest.raises(StateError, match=f"cannot open state database {junk}"):
        SQLiteStateStore(junk)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(StateError, match="not an okrsync state store"):
        SQLiteStateStore(other)


def test_statement_splitter_respects_literals() -> None:
    script = "CREATE TABLE t (x TEXT DEFAULT 'a;b');\n-- comment\nINSERT INTO t VALUES ('c;d');\n"
    assert list(statements(script)) == [
        "CREATE TABLE t (x TEXT DEFAULT 'a;b')",
        "-- comment\nINSERT INTO t VALUES ('c;d')",
    ]
    with pytest.raises(ValueError, match="incomplete SQL"):
        list(statements("CREATE TABLE t (x TEXT DEFAULT 'a;b)"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel.db", "rel.db"),
        ("plain.db", "plain.db"),
        (":memory:", ":memory:"),
        ("sqlite://", ":memory:"),
    ],
)
def test_open_state_urls(url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_state(url)
    try:
        assert isinstance(store, SQLiteStateStore) and store.path == expected
        run = store.begin_run("nightly", started_at=T0, mode="full")
        store.finish_run(run, "ok", {})
    finally:
        store.close()
    if expected != ":memory:":
        assert (tmp_path / expected).exists()


def test_open_state_absolute_url_and_refusals(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    store = open_state(f"sqlite:///{target}")
    assert isinstance(store, SQLiteStateStore) and store.path == str(target)
    store.close()
    with pytest.raises(StateError, match="unsupported state URL scheme 'mysql'"):
        open_state("mysql://x/y")
    with pytest.raises(StateError, match=f"cannot (create|open) state database {tmp_path}"):
        open_state(str(tmp_path / "missing-dir" / "x.db"))
