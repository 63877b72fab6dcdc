"""Org pull over real HTTP against the SuccessFactors emulator: full, incremental, effective dating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from okrsync.models import PersonStatus
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.successfactors.helpers import connector, pull, sf

FIELDS = (
    "email",
    "user_name",
    "display_name",
    "given_name",
    "family_name",
    "title",
    "department",
    "division",
    "location",
    "cost_center",
    "worker_type",
    "status",
    "hire_date",
)


def test_full_pull_of_10000_users_keeps_leavers_managers_and_hr_then_incremental_sees_exactly_50_edits(
    start_emulator: Any,
) -> None:
    org = SandboxOrg(10_000, seed=3)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    conn = connector(run)
    today = datetime.now(UTC).date()
    horizon = today + timedelta(days=30)
    first, people, _ = pull(conn)
    expected = {sf(p.id): p for p in org.expected_people()}
    visible = {
        k for k, p in expected.items() if p.status is not PersonStatus.PRE_HIRE or p.hire_date <= horizon
    }  # type: ignore[operator]
    assert set(people) == visible
    assert sum(p.status is PersonStatus.TERMINATED for p in people.values()) == round(10_000 * 0.02)
    assert first.requests == 1 + 2 * 10  # token + 10 EmpJob pages + 10 User pages (1000 per page)
    for uid, person in people.items():
        e = expected[uid]
        assert person.manager_id == sf(e.manager_id), uid
        assert person.additional_manager_ids == tuple(sf(m) for m in e.additional_manager_ids), uid
        assert person.external_ids == {"employee_id": e.id}
        for name in FIELDS:
            assert getattr(person, name) == getattr(e, name), (uid, name)
        if e.hire_date and e.termination_date and e.termination_date >= e.hire_date:
            assert person.termination_date == e.termination_date, uid  # (sandbox data: hire after leave)
    hr = run.emulator.people  # type: ignore[attr-defined]
    for w in [x for x in org if org.sf_user_id(x.index) in people][:500]:
        want = hr.hr_of(w)
        assert people[org.sf_user_id(w.index)].attributes.get("hr_manager_id") == (
            None if want is None else org.sf_user_id(want)
        )
    assert any("look-ahead" in n for n in first.notices)

    # ---- incremental: exactly the 50 edited people, with the watermark of the first run
    version = org.version
    edits = org.random_edits(50, seed=21)
    assert len(edits) == 50
    changed = {org.sf_user_id(w.index) for w in org.changed_since(version)}
    second, delta, removed = pull(conn, cursor=first.cursor)
    assert second.mode.value == "incremental" and not removed
    assert set(delta) == changed
    assert second.requests <= 8
    now = {sf(p.id): p for p in org.expected_people()}
    for uid, person in delta.items():
        e = now[uid]
        assert (person.manager_id, person.status, person.title) == (sf(e.manager_id), e.status, e.title)
        if e.status is PersonStatus.TERMINATED:  # terminated today: SF shows the leaver inactive already
            assert person.termination_date == today
    assert second.cursor is not None and second.cursor > (first.cursor or "")


def test_future_hire_appears_only_inside_the_lookahead_window_and_becomes_effective(
    start_emulator: Any,
) -> None:
    org = SandboxOrg(300, seed=4)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    today = datetime.now(UTC).date()
    hire = org.hire(org.employee_id(1), given_name="Futura", hire_date=today + timedelta(days=20))
    uid = org.sf_user_id(hire.index)
    _, narrow, _ = pull(connector(run, lookahead_days=10))
    assert uid not in narrow
    _, wide, _ = pull(connector(run, lookahead_days=25))
    person = wide[uid]
    assert person.status is PersonStatus.PRE_HIRE and person.hire_date == hire.hire_date
    assert person.manager_id == org.sf_user_id(1)

    # incremental: nothing is modified, but 15 days later the hire enters the 10-day window
    conn = connector(run, lookahead_days=10, full_reconcile_days=None)
    first, _, _ = pull(conn)
    later = datetime.now(UTC) + timedelta(days=15)
    second, delta, _ = pull(conn, cursor=first.cursor, watermark=later)
    assert second.mode.value == "incremental" and uid in delta
    assert delta[uid].status is PersonStatus.PRE_HIRE


def test_backdated_manager_change_and_future_termination_come_from_empjob(start_emulator: Any) -> None:
    org = SandboxOrg(200, seed=6)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    conn = connector(run)
    first, _, _ = pull(conn)
    w = next(w for w in org if w.active and w.manager not in (None, 0, 1) and w.index > 5 and not w.dotted)
    # a back-dated manager change recorded only in EmpJob (the User row keeps its old timestamp)
    people: Any = run.emulator.people  # type: ignore[attr-defined]
    stamp = w.last_modified
    people.pending_effective = datetime.now(UTC).date() - timedelta(days=10)
    org.move(w.employee_id, org.employee_id(1))
    people.pending_effective = None
    w.last_modified = stamp
    leaver = next(x for x in org if x.active and x.index > 5 and x.index != w.index and not x.dotted)
    org.terminate(leaver.employee_id, on=datetime.now(UTC).date() + timedelta(days=5))
    _, delta, _ = pull(conn, cursor=first.cursor)
    assert set(delta) == {org.sf_user_id(w.index), org.sf_user_id(leaver.index)}
    assert delta[org.sf_user_id(w.index)].manager_id == org.sf_user_id(1)
    gone = delta[org.sf_user_id(leaver.index)]
    assert gone.termination_date == leaver.termination_date
    assert gone.status is PersonStatus.TERMINATED  # SF already shows the user inactive


def test_periodic_full_reconcile_and_bad_cursor(start_emulator: Any) -> None:
    run: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(50, seed=2))
    conn = connector(run, full_reconcile_days=1)
    first, people, _ = pull(conn)
    later = datetime.now(UTC) + timedelta(days=1)
    again, everyone, _ = pull(conn, cursor=first.cursor, watermark=later)
    assert again.mode.value == "full" and set(everyone) == set(people)
    assert any("reconcile" in n for n in again.notices)
    bad, _, _ = pull(conn, cursor="not-a-date")
    assert bad.mode.value == "full" and any("unreadable cursor" in n for n in bad.notices)


@pytest.mark.parametrize("code", ["X"])
def test_unknown_employment_status_is_quarantined_by_the_engine_mapping(
    start_emulator: Any, code: str
) -> None:
    from okrsync.connectors.base import RawRecord
    from okrsync.engine import _map_record
    from tests.connectors.successfactors.helpers import MAPPING

    run: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(30, seed=2))
    conn = connector(run, empl_status={"T": "terminated"})  # "A" unmapped on purpose
    result = conn.pull(
        __import__("okrsync.connectors.base", fromlist=["PullRequest"]).PullRequest(
            cursor=None, watermark=datetime.now(UTC), full=True
        )
    )
    raws: list[RawRecord] = list(result.records)
    outcomes = [_map_record(r, MAPPING) for r in raws]
    bad = [q for person, qs in outcomes if person is None for q in qs]
    assert bad and all(q.field == "status" and "unknown emplStatus 'A'" in q.reason for q in bad)
    assert any(person is not None for person, _ in outcomes)  # the terminated ones still map
