"""Key-result metrics from SOQL aggregates over an owner's team, checked against the emulator's rows.

Expected values are computed straight from the generated Opportunity rows (``won_amount`` and
``opportunities``), never by the emulator's SOQL engine. The updated key results then reach a
files goal target (the OKR set as JSON) and a SuccessFactors goal milestone in its sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from okrsync.connectors.base import ConnectorContext
from okrsync.connectors.salesforce import SalesforceConnector, TeamScope, push_progress, update_key_results
from okrsync.connectors.salesforce.metrics import MetricQuery
from okrsync.connectors.salesforce.soql import chunk_in_list, quote, quote_id
from okrsync.connectors.successfactors import SuccessFactorsConfig, SuccessFactorsConnector
from okrsync.connectors.successfactors.goal_values import num_text
from okrsync.errors import ConfigError
from okrsync.hierarchy import Hierarchy, build_hierarchy
from okrsync.models import Cycle, KeyResult, Objective, OkrSet, Owner, Person
from okrsync.okrs import dump_okrs, load_okrs
from okrsync.sandbox import RunningEmulator, SandboxOrg, create_emulator, serve
from okrsync.sandbox.salesforce import SalesforceEmulator
from okrsync.state import open_state
from tests.connectors.salesforce.helpers import AS_OF, connector, emulator_of, pull

WON = (
    "salesforce:SELECT SUM(Amount) total FROM Opportunity WHERE IsWon = true "
    "AND CloseDate >= {cycle_start} AND CloseDate <= {cycle_end} AND OwnerId IN {team:subtree}"
)
QUARTER = Cycle(id="2024-Q2", name="Q2 2024", start=date(2024, 4, 1), end=date(2024, 6, 30))


@pytest.fixture(scope="module")
def sales() -> Iterator[tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy]]:
    org = SandboxOrg(3000, seed=8, as_of=AS_OF)
    with serve(create_emulator("salesforce", org)) as running:
        conn = connector(running)
        _, people = pull(conn)  # people carry external_ids["salesforce"]: no lookups for teams
        yield org, running, conn, build_hierarchy(people.values())
        conn.close()


def sf_ids(org: SandboxOrg, employee_ids: list[str]) -> list[str]:
    return [org.salesforce_user_id(org.get(e).index) for e in employee_ids]


def owners_at_three_levels(org: SandboxOrg, h: Hierarchy, em: SalesforceEmulator) -> list[str]:
    """The CEO, a Sales leader one level down, and a first-line Sales manager of reps."""
    reps = set(em.sales_rep_ids())
    ceo = h.roots()[0]
    leader = next(
        p for p in h.direct_reports(ceo) if h.people[p].department == "Sales" and h.subtree_size(p) > 50
    )
    first_line = next(
        p
        for p in h.subtree(leader)
        if h.level(p) >= 3 and h.direct_reports(p) and set(sf_ids(org, h.direct_reports(p))) & reps
    )
    return [ceo, leader, first_line]


def kr(i: int, owner: str, data_source: str = WON) -> KeyResult:
    return KeyResult(
        id=f"kr{i}",
        objective_id=f"o{i}",
        title="Closed-won revenue this quarter",
        owner=Owner(id=owner),
        metric_type="currency",
        target_value=5_000_000,
        unit="USD",
        data_source=data_source,
    )


def test_subtree_revenue_for_three_owners_reaches_files_and_successfactors_goals(
    sales: tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy], tmp_path: Path
) -> None:
    org, running, conn, h = sales
    em = emulator_of(running)
    owners = owners_at_three_levels(org, h, em)
    assert [h.level(o) for o in owners] == sorted({h.level(o) for o in owners})  # three different levels
    okrs = OkrSet(
        cycle=QUARTER,
        objectives=tuple(
            Objective(id=f"o{i}", title=f"Grow revenue ({o})", owner=Owner(id=o), cycle_id=QUARTER.id)
            for i, o in enumerate(owners)
        ),
        key_results=tuple(kr(i, o) for i, o in enumerate(owners)),
    )
    state = open_state(":memory:")
    em.reset_stats()
    updated, results = update_key_results(okrs, h, conn, state=state)

    expected = [em.won_amount(sf_ids(org, h.subtree(o)), quarter=0) for o in owners]
    assert [r.value for r in results] == expected
    assert [k.current_value for k in updated.key_results] == expected
    assert all(r.ok and r.scope == "subtree" and not r.unmatched for r in results)
    assert [r.team_size for r in results] == [h.subtree_size(o) for o in owners]
    assert results[0].team_size == 3000 and results[0].queries > 1  # the CEO's IN list is chunked
    assert results[2].queries == 1
    assert all(status == 200 for *_, status in em.request_log)  # no 414 URI Too Long
    assert 0 < expected[2] < expected[1] < expected[0]
    record = state.get_value("metrics", "kr1")
    assert record["value"] == expected[1] and record["cycle"] == "2024-Q2"
    assert "CloseDate >= 2024-04-01 AND CloseDate <= 2024-06-30" in record["query"]
    assert f"(:team subtree, {h.subtree_size(owners[1])} users)" in record["query"]

    # files goal target: the OKR set as JSON, read back unchanged
    path = tmp_path / "okrs.json"
    dump_okrs(updated, path)
    assert [k.current_value for k in load_okrs(path).key_results] == expected

    # SuccessFactors goal target in its sandbox: each key result is a milestone of its goal (SF's
    # milestones have no value field), and its value lands in the goal's metric line for it
    with serve(create_emulator("successfactors", org)) as sf_run:
        sf_conn = SuccessFactorsConnector(
            SuccessFactorsConfig(**{**sf_run.connection(), "person_key": "empId"}), ConnectorContext("sf")
        )
        pushed = push_progress(updated, {"sf": sf_conn})["sf"]
        assert all(r.ok for r in pushed), pushed
        goals = sf_run.emulator.goals  # type: ignore[attr-defined]
        milestones = {int(r["objId"]): r for r in goals.rows_of("GoalMilestone_1")}
        by_name = {r["name"]: r["id"] for r in goals.rows_of("Goal_1")}
        metric = {r["id"]: r["metric"] for r in goals.rows_of("Goal_1")}
        for i, o in enumerate(owners):
            gid = by_name[f"Grow revenue ({o})"]
            kr_line = milestones[gid]["description"]
            assert metric[gid] == f"{kr_line} = {num_text(expected[i])}"
        pulled = sf_conn.pull_goals().key_results  # the values read back from the metric lines
        assert sorted(k.current_value for k in pulled if k.current_value is not None) == sorted(expected)
        sf_conn.close()


def test_self_and_reports_scopes_with_hris_people(
    sales: tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy],
) -> None:
    org, running, _, h_sf = sales
    em = emulator_of(running)
    conn = connector(running)  # a fresh connector: User Ids looked up by EmployeeNumber, then cached
    hris = build_hierarchy(org.expected_people())  # no external_ids: canonical employee ids only
    rep_owner = next(p for p in hris.order() if sf_ids(org, [p])[0] in set(em.sales_rep_ids()))
    manager = owners_at_three_levels(org, h_sf, em)[2]
    data = WON.replace("{team:subtree}", "{team:%s}")
    okrs = OkrSet(
        cycle=QUARTER,
        key_results=(
            kr(0, rep_owner, data % "self"),
            kr(1, manager, data % "reports"),
            kr(2, manager, data % "reports"),
        ),
    )
    _, results = update_key_results(okrs, hris, conn)
    team = [manager, *hris.direct_reports(manager)]
    assert results[0].value == em.won_amount(sf_ids(org, [rep_owner]))
    assert results[1].value == results[2].value == em.won_amount(sf_ids(org, team))
    assert conn.directory.lookups == 2  # the rep, then the manager's team; the repeat hit the cache
    conn.close()


def test_other_aggregates_combine_across_chunks(
    sales: tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy],
) -> None:
    org, running, conn, h = sales
    em = emulator_of(running)
    ceo = h.roots()[0]
    team = set(sf_ids(org, h.subtree(ceo)))
    won = [
        r["Amount"]
        for r in em.opportunities
        if r["IsWon"] and QUARTER.start <= r["CloseDate"] <= QUARTER.end and r["OwnerId"] in team
    ]
    where = "FROM Opportunity WHERE IsWon = true AND CloseDate >= {cycle_start} AND CloseDate <= {cycle_end}"
    where += " AND OwnerId IN {team}"
    window = {"cycle_start": QUARTER.start, "cycle_end": QUARTER.end}
    people = [h.people[p] for p in h.subtree(ceo)]
    cases = {
        f"SELECT COUNT(Id) n {where}": len(won),
        f"SELECT COUNT() {where}": len(won),
        f"SELECT AVG(Amount) a {where}": sum(won) / len(won),
        f"SELECT MIN(Amount) {where}": min(won),
        f"SELECT MAX(Amount) m {where}": max(won),
    }
    for soql, want in cases.items():
        ev = conn.evaluate_detailed(kr(0, ceo, "salesforce:" + soql), people, **window)
        assert ev.queries > 1, soql
        assert ev.value == pytest.approx(want), soql
    with pytest.raises(ConfigError, match="COUNT_DISTINCT"):
        conn.evaluate(kr(0, ceo, f"salesforce:SELECT COUNT_DISTINCT(AccountId) {where}"), people, **window)


def test_a_failing_key_result_keeps_its_value_and_says_why(
    sales: tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy],
) -> None:
    _, _, conn, h = sales
    ceo = h.roots()[0]
    okrs = OkrSet(
        key_results=(
            kr(0, ceo, "salesforce:SELECT SUM(Amount) FROM Opportunity WHERE OwnerId IN {team} AND Nope = 1"),
            kr(1, "not-a-person", WON).model_copy(update={"current_value": 7.0}),
            kr(2, ceo, WON),  # no cycle: {cycle_start} cannot be filled
            KeyResult(id="k3", objective_id="o", title="manual", current_value=3.0),
        )
    )
    updated, results = update_key_results(okrs, h, conn)
    assert [r.ok for r in results] == [False, False, False]
    assert results[0].error and "INVALID_FIELD" in results[0].error
    assert results[1].error and "not in the hierarchy" in results[1].error
    assert results[2].error and "{cycle_start}" in results[2].error
    assert [k.current_value for k in updated.key_results] == [None, 7.0, None, 3.0]


# ---------------------------------------------------------------- pure: parsing, escaping, chunking
def test_metric_query_parsing() -> None:
    q = MetricQuery.parse(WON)
    assert (q.function, q.field, q.alias, q.scope) == ("SUM", "Amount", "total", TeamScope.SUBTREE)
    assert MetricQuery.parse("salesforce:select count() from Opportunity where OwnerId = {owner}").uses_owner
    bad = {
        "salesforce:SELECT Amount FROM Opportunity": "exactly one aggregate",
        "salesforce:SELECT SUM(Amount) FROM Opportunity GROUP BY OwnerId": "GROUP BY",
        "salesforce:SELECT SUM(Amount) FROM Opportunity WHERE OwnerId IN {team:everyone}": "team scope",
        "salesforce:SELECT SUM(Amount) FROM Opportunity WHERE Id = {tenant}": "unknown placeholder",
        "salesforce:SELECT SUM(Amount) FROM Opportunity WHERE OwnerId IN {team} OR OwnerId IN {team}": "once",
        "hris:SELECT SUM(Amount) FROM Opportunity": "not a salesforce: query",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            MetricQuery.parse(text)


def test_values_from_data_cannot_inject_soql() -> None:
    assert quote("O'Brien") == "'O\\'Brien'"
    assert quote("a\\' OR Name != '") == "'a\\\\\\' OR Name != \\''"
    with pytest.raises(ValueError):
        quote_id("005' OR Id != '")


def test_a_hostile_employee_number_is_only_ever_a_literal(
    sales: tuple[SandboxOrg, RunningEmulator, SalesforceConnector, Hierarchy],
) -> None:
    _, running, _, _ = sales
    conn = connector(running)
    hostile = Person(id="1' OR EmployeeNumber != '")
    ev = conn.evaluate_detailed(
        kr(0, hostile.id, WON), [hostile], cycle_start=QUARTER.start, cycle_end=QUARTER.end
    )
    assert ev.value == 0.0 and ev.unmatched == [hostile.id]  # looked up as a literal: nobody matches
    conn.close()


def test_in_lists_are_chunked_under_the_uri_budget() -> None:
    ids = [quote_id(f"005{n:015d}") for n in range(2000)]
    template = "SELECT SUM(Amount) FROM Opportunity WHERE OwnerId IN @@"
    chunks = list(chunk_in_list(template, "@@", ids, max_uri_bytes=16_000))
    assert sum(n for _, n in chunks) == 2000 and len(chunks) == 4
    from urllib.parse import quote_plus

    assert all(len(quote_plus(q)) + 64 <= 16_000 for q, _ in chunks)
