"""The StateStore contract, run against every store: SQLite (a temp file) and PostgreSQL (a schema).

PostgreSQL cases use 127.0.0.1:5432 database ``test`` (trust auth) in a schema created for this
module and dropped after it; tables are emptied between tests. They skip on a machine without
PostgreSQL and fail instead under ``OKRSYNC_REQUIRE_SERVICES=1`` (CI). Cases that only make
sense for one store (WAL, file permissions, corrupt files) stay in ``tests/test_state.py``.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from okrsync.errors import LockError, StateError
from okrsync.models import OrgSnapshot, Person
from okrsync.state import RecordEvent, SQLiteStateStore, StateStore, open_state
from okrsync.state.schema import MIGRATIONS
from tests.conftest import require_or_skip
from tests.state.services import PG_URL, REQUIRE_ENV, drop_schema, pg_available
from tests.test_state import T0, FakeClock, people, snapshot

REPO = Path(__file__).resolve().parents[2]
V2_SCRIPT = (
    "ALTER TABLE runs ADD COLUMN trigger TEXT;\n"
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
)


@dataclass
class Backend:
    """One store under test plus the raw access a test needs to tamper with it."""

    name: str
    location: str  # what open_state() takes
    cls: type[Any]
    tmp: Path
    pg_schema: str | None = None

    def open(self, cls: type[Any] | None = None, **kwargs: Any) -> Any:
        factory = cls or self.cls
        if self.name == "sqlite":
            return factory(self.location, **kwargs)
        return factory(PG_URL, schema=self.pg_schema, **kwargs)

    def execute(self, statement: str) -> None:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.location)
            with conn:
                conn.execute(statement)
            conn.close()
            return
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as pg:
            pg.execute(f"SET search_path TO {self.pg_schema}")  # type: ignore[arg-type]
            pg.execute(statement)  # type: ignore[arg-type]

    def tables(self) -> set[str]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(PG_URL) as pg:
            rows = pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.pg_schema,)
            )
            return {r[0] for r in rows}

    def columns(self, table: str) -> set[str]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(PG_URL) as pg:
            rows = pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s",
                (self.pg_schema, table),
            )
            return {r[0] for r in rows}

    def versions(self) -> list[int]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(PG_URL) as pg:
            pg.execute(f"SET search_path TO {self.pg_schema}")  # type: ignore[arg-type]
            return [r[0] for r in pg.execute("SELECT version FROM schema_version ORDER BY version")]

    def fail_cursor_updates(self) -> None:
        """From now on an UPDATE of a cursor row fails inside the database."""
        if self.name == "sqlite":
            self.execute(
                "CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors"
                " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
            return
        self.execute(
            "CREATE FUNCTION fail_cursor() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$"
        )
        self.execute(
            "CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors FOR EACH ROW EXECUTE FUNCTION fail_cursor()"
        )

    def corrupt_snapshots(self) -> None:
        if self.name == "sqlite":
            self.execute("UPDATE snapshots SET data = substr(data, 1, 20) || zeroblob(20)")
        else:
            self.execute(
                "UPDATE snapshots SET data = substring(data from 1 for 20) || '\\x0000000000'::bytea"
            )

    def reset(self) -> None:
        """Empty every table (PostgreSQL: the module's schema outlives single tests)."""
        if self.name == "postgresql" and "runs" in self.tables():
            self.execute(
                "DROP TABLE IF EXISTS notes; DROP FUNCTION IF EXISTS fail_cursor() CASCADE;"
                " TRUNCATE runs, snapshots, cursors, id_map, events, kv RESTART IDENTITY CASCADE"
            )
            if "trigger" in self.columns("runs"):  # a migration test left version 2 behind: start over
                drop_schema(str(self.pg_schema))


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    available, reason = pg_available()
    require_or_skip(available, reason, REQUIRE_ENV)
    name = f"okrsync_contract_{os.getpid()}_{os.urandom(3).hex()}"
    try:
        yield name
    finally:
        drop_schema(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        db = tmp_path / "state.db"
        yield Backend("sqlite", str(db), SQLiteStateStore, tmp_path)
        return
    from okrsync.state.postgres import PostgresStateStore

    schema: str = request.getfixturevalue("pg_schema")
    b = Backend("postgresql", f"{PG_URL}?schema={schema}", PostgresStateStore, tmp_path, schema)
    b.reset()
    yield b
    b.reset()


@pytest.fixture
def store(backend: Backend) -> Iterator[Any]:
    with backend.open() as s:
        yield s


# -- protocol and opening --------------------------------------------------------------------


def test_open_state_returns_the_backend(backend: Backend) -> None:
    opened = open_state(backend.location)
    try:
        assert isinstance(opened, StateStore) and isinstance(opened, backend.cls)
        run = opened.begin_run("nightly", started_at=T0, mode="full")
        opened.finish_run(run, "ok", {})
        assert opened.integrity_check() == []
    finally:
        opened.close()


# -- runs and locks --------------------------------------------------------------------------


def test_begin_finish_and_list_runs(store: StateStore) -> None:
    first = store.begin_run("nightly", started_at=T0, mode="full")
    store.finish_run(first, "ok", {"counts": {"update": 3}, "phases": {"pull": 1.5}})
    second = store.begin_run("nightly", started_at=T0 + timedelta(days=1), mode="incremental", dry_run=True)
    other = store.begin_run("okrs", started_at=T0, mode="full")  # another job has its own lock
    assert store.get_run(second).status == "running"  # type: ignore[union-attr]
    store.finish_run(second, "dry_run", {})

    assert [r.id for r in store.runs()] == [other, second, first]
    assert [r.id for r in store.runs("nightly", limit=1)] == [second]
    run = store.get_run(first)
    assert run is not None
    assert (run.job, run.status, run.mode, run.dry_run) == ("nightly", "ok", "full", False)
    assert run.started_at == T0 and run.finished_at is not None
    assert run.summary == {"counts": {"update": 3}, "phases": {"pull": 1.5}}
    assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
    assert store.get_run(second).dry_run is True  # type: ignore[union-attr]
    assert store.get_run(9999) is None


def test_finish_run_rejects_bad_status_and_double_finish(store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    with pytest.raises(ValueError, match="unknown final run status 'done'"):
        store.finish_run(run, "done", {})
    # never masks an error
    store.finish_run(run, "failed_records", {"failed": 2, "odd": object(), "when": T0})
    summary = store.get_run(run).summary  # type: ignore[union-attr]
    assert summary["when"] == "2026-03-01T02:00:00.000000+00:00" and summary["odd"].startswith("<object")
    with pytest.raises(StateError, match="already finished with status failed_records"):
        store.finish_run(run, "ok", {})
    with pytest.raises(StateError, match="run 999 does not exist"):
        store.finish_run(999, "ok", {})


def test_live_lock_raises_lock_error_with_holder(backend: Backend) -> None:
    with backend.open() as a, backend.open() as b:
        held = a.begin_run("nightly", started_at=T0, mode="full")
        with pytest.raises(LockError) as info:
            b.begin_run("nightly", started_at=T0, mode="full")
        assert str(info.value).startswith(
            f"job 'nightly' is already running (run {held}, pid {os.getpid()} "
            f"on host {socket.gethostname()}, since 2026-03-01T02:00:00"
        )
        with pytest.raises(LockError):  # the holder itself cannot start the job twice either
            a.begin_run("nightly", started_at=T0, mode="full")
        a.finish_run(held, "ok", {})  # releases the lock
        assert b.begin_run("nightly", started_at=T0, mode="full") > held


def test_lock_of_dead_process_is_taken_over(backend: Backend) -> None:
    backend.open().close()  # schema exists before the child starts
    crash = (
        "import os, sys\n"
        "from datetime import UTC, datetime\n"
        "from okrsync.state import open_state\n"
        "store = open_state(sys.argv[1])\n"
        "print(store.begin_run('nightly', started_at=datetime.now(UTC), mode='full'), flush=True)\n"
        "os._exit(0)  # die holding the lock, as a killed sync would\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run(
        [sys.executable, "-c", crash, backend.location],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    dead_run = int(child.stdout.strip())

    with backend.open() as store:
        dead_pid = store.get_run(dead_run).pid
        new_run = store.begin_run("nightly", started_at=T0, mode="full")
        old = store.get_run(dead_run)
        assert old is not None and old.status == "interrupted" and old.finished_at is not None
        assert old.summary["interrupted"]["taken_over_by"] == new_run
        assert (
            f"pid {dead_pid} on host {socket.gethostname()} is no longer running"
            in (old.summary["interrupted"]["reason"])
        )
        assert store.get_run(new_run).status == "running"


def test_stale_heartbeat_is_taken_over_and_old_run_cannot_write(backend: Backend) -> None:
    clock = FakeClock()
    with backend.open(clock=clock) as old, backend.open(clock=clock) as new:
        stale = old.begin_run("nightly", started_at=T0, mode="full")
        clock.now = T0 + timedelta(hours=5)
        old.heartbeat(stale)
        clock.now = T0 + timedelta(hours=10)  # 5 h since the last heartbeat: still fresh
        with pytest.raises(LockError):
            new.begin_run("nightly", started_at=clock.now, mode="full")
        clock.now = T0 + timedelta(hours=11, seconds=1)
        fresh = new.begin_run("nightly", started_at=clock.now, mode="full")
        assert "no heartbeat since" in new.get_run(stale).summary["interrupted"]["reason"]

        # the old process wakes up: it must not clobber the newer run's state
        with pytest.raises(LockError, match=f"run {stale} of job 'nightly' no longer holds the lock"):
            old.heartbeat(stale)
        with pytest.raises(LockError):
            old.commit(stale, "nightly", snapshots={"source": snapshot()}, cursors={"source": "x"})
        assert old.get_snapshot("nightly", "source") is None and old.get_cursor("nightly", "source") is None
        old.finish_run(stale, "ok", {"counts": {}})  # from a finally block: must not raise
        info = old.get_run(stale)
        assert info is not None and info.status == "interrupted"
        assert info.summary["reported_status"] == "ok"
        assert info.summary["interrupted"]["taken_over_by"] == fresh


def test_fresh_lock_on_another_host_is_respected(backend: Backend, store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    # a dead-looking pid, but on another machine: only the heartbeat (or its session) can tell
    backend.execute(f"UPDATE runs SET host = 'elsewhere', pid = 999999999 WHERE id = {int(run)}")  # noqa: S608
    with backend.open() as other, pytest.raises(LockError, match="pid 999999999 on host elsewhere"):
        other.begin_run("nightly", started_at=T0, mode="full")


# -- snapshots, cursors and commit atomicity ------------------------------------------------


def test_commit_and_read_back(store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    source, target = snapshot(5), snapshot(2, source="entra")
    both = {"source": source, "target:entra": target}
    store.commit(run, "nightly", snapshots=both, cursors={"source": "d1"})
    assert store.get_snapshot("nightly", "source") == source
    assert store.get_snapshot("nightly", "target:entra") == target
    assert store.get_snapshot("other-job", "source") is None
    assert store.get_cursor("nightly", "source") == "d1"
    assert store.get_cursor("nightly", "target:entra") is None

    store.commit(run, "nightly", snapshots={}, cursors={"source": None})  # None resets: next pull is full
    assert store.get_cursor("nightly", "source") is None


def test_snapshot_history_keeps_the_last_n(backend: Backend) -> None:
    with backend.open(keep_snapshots=2) as store:
        run = store.begin_run("nightly", started_at=T0, mode="full")
        for title in ("A", "B", "C"):
            store.commit(run, "nightly", snapshots={"source": snapshot(title=title)}, cursors={})
        history = store.snapshot_history("nightly", "source")
        assert len(history) == 2 and history[0].people == 3 and history[0].run_id == run
        assert store.get_snapshot("nightly", "source").people[0].title == "C"
        assert store.get_snapshot("nightly", "source", back=1).people[0].title == "B"
        assert store.get_snapshot("nightly", "source", back=2) is None


def test_commit_is_atomic_when_a_snapshot_cannot_be_serialised(store: Any) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    before = snapshot(title="Before")
    store.commit(run, "nightly", snapshots={"source": before}, cursors={"source": "c1"})

    poison = Person(id="X1", attributes={"handle": object()})  # JSON cannot express it
    bad = OrgSnapshot(source="entra", taken_at=T0, people=(poison,))
    with pytest.raises(StateError, match="cannot serialise snapshot 'target:entra' of job 'nightly'"):
        store.commit(
            run,
            "nightly",
            snapshots={"source": snapshot(title="After"), "target:entra": bad},
            cursors={"source": "c2"},
        )
    assert store.get_snapshot("nightly", "source") == before
    assert store.get_snapshot("nightly", "target:entra") is None
    assert store.get_cursor("nightly", "source") == "c1"
    assert len(store.snapshot_history("nightly", "source")) == 1


def test_commit_is_atomic_when_the_database_fails_mid_transaction(backend: Backend, store: Any) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    before = snapshot(title="Before")
    store.commit(run, "nightly", snapshots={"source": before}, cursors={"source": "c1"})
    backend.fail_cursor_updates()  # fails *after* the snapshot row was inserted in the same transaction
    with pytest.raises(StateError, match="disk on fire"):
        store.commit(run, "nightly", snapshots={"source": snapshot(title="After")}, cursors={"source": "c2"})
    assert store.get_snapshot("nightly", "source") == before
    assert store.get_cursor("nightly", "source") == "c1"
    assert len(store.snapshot_history("nightly", "source")) == 1


def test_commit_refused_for_dry_runs_and_foreign_jobs(store: StateStore) -> None:
    dry = store.begin_run("nightly", started_at=T0, mode="full", dry_run=True)
    with pytest.raises(StateError, match="is a dry run"):
        store.commit(dry, "nightly", snapshots={"source": snapshot()}, cursors={"source": "c"})
    with pytest.raises(StateError, match="belongs to job 'nightly', not 'okrs'"):
        store.commit(dry, "okrs", snapshots={}, cursors={"source": "c"})
    assert store.get_snapshot("nightly", "source") is None and store.get_cursor("nightly", "source") is None


def test_corrupt_snapshot_body_is_a_state_error(backend: Backend, store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    store.commit(run, "nightly", snapshots={"source": snapshot(50)}, cursors={})
    backend.corrupt_snapshots()
    with pytest.raises(StateError, match=r"snapshot \d+ \(nightly/source\) in .*corrupt snapshot body"):
        store.get_snapshot("nightly", "source")


@pytest.mark.slow
def test_snapshot_of_100000_people_round_trips(store: Any) -> None:
    """A few seconds per store on a shared 2-core machine; no timing asserted."""
    big = OrgSnapshot(source="workday", taken_at=T0, people=people(100_000))
    run = store.begin_run("nightly", started_at=T0, mode="full")
    store.commit(run, "nightly", snapshots={"source": big}, cursors={"source": "w1"})
    [info] = store.snapshot_history("nightly", "source")
    assert info.people == 100_000 and info.size < 8_000_000
    assert store.get_snapshot("nightly", "source") == big


# -- id maps, events, KV ---------------------------------------------------------------------


def test_id_map_upsert_is_idempotent(store: Any) -> None:
    store.put_ids("entra", [("E1", "oid-1"), ("E2", "oid-2")])
    store.put_ids("entra", [("E1", "oid-1"), ("E2", "oid-2")])  # a rerun after a crash
    store.put_ids("entra", iter([("E2", "oid-2b")]))  # re-linked
    store.put_ids("scim", [("E1", "scim-1")])
    store.put_ids("entra", [])
    assert store.get_id_map("entra") == {"E1": "oid-1", "E2": "oid-2b"}
    assert store.get_id_map("scim") == {"E1": "scim-1"}
    assert store.get_id_map("nowhere") == {}
    store.delete_ids("entra", ["E1"])
    assert store.get_id_map("entra") == {"E2": "oid-2b"}


def test_put_ids_survive_a_crash_before_commit(backend: Backend) -> None:
    store = backend.open()
    store.begin_run("nightly", started_at=T0, mode="full")
    store.put_ids("entra", [("E1", "oid-1")])
    # no commit, no close: the process "dies"; a second connection sees the mapping
    with backend.open() as other:
        assert other.get_id_map("entra") == {"E1": "oid-1"}
    store.close()


def test_events_and_person_history(store: StateStore) -> None:
    first = store.begin_run("nightly", started_at=T0, mode="full")
    store.record_events(
        first,
        [
            RecordEvent("E1", "create", "entra", True, {"title": [None, "Engineer"]}),
            RecordEvent("E2", "quarantine", None, False, error="email is not valid", field="email"),
            RecordEvent("E3", "update", "entra", False, error="429 from Graph", retries=3),
        ],
    )
    store.finish_run(first, "failed_records", {})
    second = store.begin_run("nightly", started_at=T0 + timedelta(days=1), mode="incremental")
    store.record_events(second, [RecordEvent("E1", "update", "entra", True, {"title": ["Engineer", "Lead"]})])
    store.record_events(second, [])

    assert [e.person_id for e in store.events(first)] == ["E1", "E2", "E3"]
    assert store.events(first, only_failures=True) == [
        RecordEvent("E2", "quarantine", None, False, {}, error="email is not valid", field="email"),
        RecordEvent("E3", "update", "entra", False, {}, error="429 from Graph", retries=3),
    ]
    assert len(store.events(first, limit=1)) == 1

    history = store.person_history("E1")
    assert [(run.id, event.operation, event.changes) for run, event in history] == [
        (second, "update", {"title": ["Engineer", "Lead"]}),
        (first, "create", {"title": [None, "Engineer"]}),
    ]
    assert history[1][0].status == "failed_records"
    assert len(store.person_history("E1", limit=1)) == 1
    assert store.person_history("nobody") == []
    with pytest.raises(StateError, match="run 404 does not exist"):
        store.record_events(404, [RecordEvent("E1", "skip", None, True)])


def test_events_never_keep_secrets_and_accept_dates(store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    store.record_events(
        run,
        [
            RecordEvent(
                "E1",
                "update",
                "scim",
                False,
                {"password": ["old-pw", "new-pw"], "hire_date": [date(2020, 1, 1), date(2021, 2, 3)]},
                error="POST https://x/token?client_secret=s3cr3t failed: Bearer abcdefghijklmnop",
            )
        ],
    )
    [event] = store.events(run)
    assert event.changes == {"password": ["***", "***"], "hire_date": ["2020-01-01", "2021-02-03"]}
    assert event.error is not None and "s3cr3t" not in event.error and "abcdefghijklmnop" not in event.error


def test_key_value_store(store: StateStore) -> None:
    assert store.get_value("kr-metrics", "KR-1") is None
    store.put_value("kr-metrics", "KR-1", {"value": 41.5, "at": T0, "tags": ("a", "b")})
    assert store.get_value("kr-metrics", "KR-1") == {
        "value": 41.5,
        "at": "2026-03-01T02:00:00.000000+00:00",
        "tags": ["a", "b"],
    }
    store.put_value("kr-metrics", "KR-1", 42)
    assert store.get_value("kr-metrics", "KR-1") == 42
    assert store.get_value("other", "KR-1") is None


def test_concurrent_use_from_threads(store: Any) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.record_events(run, [RecordEvent(f"T{n}-{i}", "update", "entra", True)])
                store.heartbeat(run)
                store.put_ids("entra", [(f"T{n}-{i}", f"oid-{n}-{i}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.events(run)) == 80 and len(store.get_id_map("entra")) == 80


# -- integrity, migrations, closing ----------------------------------------------------------


def test_integrity_check_on_a_healthy_database(store: StateStore) -> None:
    run = store.begin_run("nightly", started_at=T0, mode="full")
    store.commit(run, "nightly", snapshots={"source": snapshot()}, cursors={"source": "c"})
    assert store.integrity_check() == []


def _v2(backend: Backend) -> type[Any]:
    return type("V2Store", (backend.cls,), {"MIGRATIONS": (*MIGRATIONS, V2_SCRIPT), "SCHEMA_VERSION": 2})


def test_migration_from_an_older_version_keeps_data(backend: Backend) -> None:
    with backend.open() as v1:
        run = v1.begin_run("nightly", started_at=T0, mode="full")
        v1.commit(run, "nightly", snapshots={"source": snapshot()}, cursors={"source": "c1"})
        v1.finish_run(run, "ok", {})
        v1.put_ids("entra", [("E1", "oid-1")])
    with backend.open(cls=_v2(backend)) as v2:
        assert v2.integrity_check() == []
        assert v2.get_cursor("nightly", "source") == "c1" and v2.get_id_map("entra") == {"E1": "oid-1"}
        assert v2.get_snapshot("nightly", "source") == snapshot()
        assert v2.runs()[0].status == "ok"
    assert backend.versions() == [1, 2]
    assert "trigger" in backend.columns("runs") and "notes" in backend.tables()
    with pytest.raises(
        StateError, match=r"has state schema version 2, but this okrsync knows versions up to"
    ):
        backend.open()


def test_failed_migration_leaves_the_old_version_intact(backend: Backend) -> None:
    bad_script = "CREATE TABLE ok_so_far (x INTEGER); SELEKT nonsense;"
    broken = type("BrokenV2", (backend.cls,), {"MIGRATIONS": (*MIGRATIONS, bad_script)})
    with backend.open() as v1:
        v1.put_value("ns", "k", 1)
    with pytest.raises(StateError, match="syntax error"):
        backend.open(cls=broken)
    with backend.open() as v1:
        assert v1.integrity_check() == [] and v1.get_value("ns", "k") == 1
    assert "ok_so_far" not in backend.tables() and backend.versions() == [1]


def test_closed_store_raises_state_error(store: StateStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StateError, match="is closed"):
        store.runs()


# -- PostgreSQL-only: URLs, schemas, isolation ----------------------------------------------


@pytest.mark.services
def test_postgres_urls_schemas_and_tenant_isolation(pg_schema: str) -> None:
    from okrsync.state.postgres import PostgresStateStore, redact_url, split_schema

    assert split_schema("postgres://u:pw@h:5/db?sslmode=require&schema=t_1") == (
        "postgresql://u:pw@h:5/db?sslmode=require",
        "t_1",
    )
    assert split_schema("postgresql://h/db") == ("postgresql://h/db", "okrsync")
    assert redact_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    with pytest.raises(StateError, match="invalid PostgreSQL schema name 'Bad-Name'"):
        PostgresStateStore(PG_URL, schema="Bad-Name")
    with pytest.raises(
        StateError, match=r"cannot open state database postgresql://nobody:\*\*\*@127\.0\.0\.1:1/"
    ):
        PostgresStateStore("postgresql://nobody:hunter2@127.0.0.1:1/x", connect_timeout=1)
    with pytest.raises(StateError) as refused:
        PostgresStateStore("postgresql://nobody:hunter2@127.0.0.1:1/x", connect_timeout=1)
    assert "hunter2" not in str(refused.value)

    other = f"{pg_schema}_b"
    try:
        with open_state(f"{PG_URL}?schema={pg_schema}") as a, open_state(f"{PG_URL}?schema={other}") as b:  # type: ignore[attr-defined]
            run_a = a.begin_run("nightly", started_at=T0, mode="full")
            # same job name in another tenant's schema: no lock clash, no shared rows
            run_b = b.begin_run("nightly", started_at=T0, mode="full")
            a.put_ids("entra", [("E1", "a-1")])
            assert b.get_id_map("entra") == {} and [r.id for r in b.runs()] == [run_b]
            a.finish_run(run_a, "ok", {})
            b.finish_run(run_b, "ok", {})
    finally:
        drop_schema(other)


@pytest.mark.services
def test_postgres_many_sessions_migrating_one_new_schema_at_once(pg_schema: str) -> None:
    from okrsync.state.postgres import PostgresStateStore

    name = f"{pg_schema}_race"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        try:
            barrier.wait()
            PostgresStateStore(PG_URL, schema=name).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with PostgresStateStore(PG_URL, schema=name) as store:
            assert store.integrity_check() == []
    finally:
        drop_schema(name)
