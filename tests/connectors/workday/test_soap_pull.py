"""SOAP ``Get_Workers`` pulls over real HTTP: a 10k job through the engine, windows, future hires."""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from okrsync.config import parse_config
from okrsync.connectors.base import PullMode
from okrsync.engine import SyncEngine
from okrsync.io import read_people
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.state import open_state
from tests.connectors.workday.helpers import SOAP_FIELDS, connector, edit, mismatches, pull

Start = Callable[..., RunningEmulator]


def test_10k_job_full_then_incremental_through_the_engine(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(10_000, seed=5)
    run = start_emulator("workday", org=org)
    c = run.emulator.connection()  # type: ignore[attr-defined]
    (tmp_path / "okrsync.toml").write_text(
        f"""
[state]
path = "state.db"
[connections.workday]
type = "workday"
api = "soap"
base_url = "{c["base_url"]}"
tenant = "{c["tenant"]}"
username = "{c["username"]}"
password = "${{WD_TEST_PASSWORD}}"
[connections.directory]
type = "files"
path = "people.jsonl"
[jobs.nightly]
source = "workday"
targets = ["directory"]
max_deletes = "100%"
"""
    )
    os.environ["WD_TEST_PASSWORD"] = c["password"]
    try:
        config = parse_config(tomllib.loads((tmp_path / "okrsync.toml").read_text()), base_dir=tmp_path)
        engine = SyncEngine(config, open_state(str(tmp_path / "state.db")))
        first = engine.sync("nightly")
        assert first.mode == "full", first.notices
        assert first.source_requests == 11  # ceil(10,000 / 999) pages, nothing more
        people = {p.id: p for p in read_people(tmp_path / "people.jsonl")}
        assert len(people) == 10_000
        assert mismatches(people, org.expected_people(), SOAP_FIELDS) == []

        ids = edit(org, 50)
        second = engine.sync("nightly")
        engine.close()
        assert second.mode == "incremental", second.notices
        assert second.pulled < 200 and second.source_requests <= 4
        people = {p.id: p for p in read_people(tmp_path / "people.jsonl")}
        assert mismatches(people, org.expected_people(), SOAP_FIELDS) == []
        # the conversion: one person, owned by the active (new) WID
        converted = people[ids["converted"]]
        assert converted.status == "active"
        assert converted.external_ids["workday_wid"] == org.get(ids["converted"]).wid
        assert people[ids["future"]].status == "pre_hire"
        cursor = json.loads(open_state(str(tmp_path / "state.db")).get_cursor("nightly", "source") or "{}")
        assert org.get(ids["future"]).wid in cursor["future"]
    finally:
        os.environ.pop("WD_TEST_PASSWORD", None)


def test_three_windows_and_a_future_hire_that_arrives(start_emulator: Start) -> None:
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return now[0]

    org = SandboxOrg(1200, seed=8, clock=clock, as_of=now[0].date())
    boss = org.workers[0].employee_id
    hired = org.hire(boss, family_name="Soon", hire_date=now[0].date() + timedelta(days=2))
    run = start_emulator("workday", org=org)
    conn = connector(run)
    full, people = pull(conn, watermark=clock())
    assert full.mode is PullMode.FULL and people[hired.employee_id].status == "pre_hire"
    cursor = json.loads(full.cursor or "")
    assert cursor["future"][hired.wid] == hired.hire_date.isoformat()

    now[0] += timedelta(hours=1)
    moved = org.move(org.workers[50].employee_id, boss)
    gone = org.terminate(org.workers[60].employee_id)
    now[0] += timedelta(days=3)  # the hire date has arrived
    inc, changed = pull(conn, full.cursor, watermark=clock())
    conn.close()
    assert inc.mode is PullMode.INCREMENTAL
    assert inc.requests >= 3  # entry-time + effective-dated windows + the future-hire re-query
    assert changed[moved.employee_id].manager_id == boss
    assert changed[gone.employee_id].status == "terminated"
    assert changed[hired.employee_id].status == "active"  # re-queried as of its hire date
    assert hired.wid not in json.loads(inc.cursor or "")["future"]
    assert set(changed) <= {p.id for p in org.expected_people()}


def test_periodic_full_reconcile(start_emulator: Start) -> None:
    run = start_emulator("workday", org=SandboxOrg(300, seed=2))
    conn = connector(run, full_reconcile_days=1)
    first, _ = pull(conn)
    later = datetime.now(UTC)
    again, people = pull(conn, first.cursor, watermark=later)
    assert again.mode is PullMode.INCREMENTAL
    stale = json.loads(first.cursor or "")
    stale["full_at"] = (later - timedelta(days=2)).isoformat()
    reconcile, people = pull(conn, json.dumps(stale), watermark=later)
    conn.close()
    assert reconcile.mode is PullMode.FULL and len(people) == 300
    assert any("full reconcile" in n for n in reconcile.notices)
