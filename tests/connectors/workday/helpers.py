"""Shared helpers of the Workday connector tests: connect, pull, map, compare with the org."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from okrsync.connectors.base import ConnectorContext, Pull, PullRequest
from okrsync.connectors.workday import WorkdayConfig, WorkdayConnector
from okrsync.io import person_from_row
from okrsync.mapping import load_mapping
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator, SandboxOrg

FIELDS = ("manager_id", "status", "email", "worker_type", "title", "display_name")
SOAP_FIELDS = (
    *FIELDS,
    "given_name",
    "family_name",
    "department",
    "division",
    "location",
    "cost_center",
    "hire_date",
    "termination_date",
    "additional_manager_ids",
    "user_name",
)


def connector(run: RunningEmulator, api: str = "soap", **overrides: Any) -> WorkdayConnector:
    settings = run.emulator.connection(api)  # type: ignore[attr-defined]
    cfg = WorkdayConfig(**{**settings, "max_attempts": 3, **overrides})
    return WorkdayConnector(cfg, ConnectorContext("workday"))


def pull(
    conn: WorkdayConnector, cursor: str | None = None, watermark: datetime | None = None
) -> tuple[Pull, dict[str, Person]]:
    """Pull and map like the engine does; a duplicate id is a test failure."""
    result = conn.pull(PullRequest(cursor, watermark or datetime.now(UTC), full=cursor is None))
    mapping = load_mapping(conn.default_mapping)
    people: dict[str, Person] = {}
    for raw in result.records:
        person = person_from_row(dict(mapping.apply(raw.data)), raw.ref)
        assert person.id not in people, f"duplicate person {person.id}"
        people[person.id] = person
    return result, people


def mismatches(
    people: dict[str, Person],
    expected: Iterable[Person],
    fields: Iterable[str] = FIELDS,
    skip: Callable[[Person], bool] = lambda p: False,
) -> list[str]:
    out = []
    wanted = {p.id: p for p in expected if not skip(p)}
    for pid, want in wanted.items():
        got = people.get(pid)
        if got is None:
            out.append(f"{pid}: missing")
            continue
        out += [
            f"{pid}.{f}: {getattr(got, f)!r} != {getattr(want, f)!r}"
            for f in fields
            if getattr(got, f) != getattr(want, f)
        ]
    out += [f"{pid}: unexpected" for pid in set(people) - set(wanted)]
    return out


def edit(org: SandboxOrg, count: int = 50) -> dict[str, str]:
    """``count`` edits: moves, terminations, renames, hires (some future-dated), conversions.

    Returns the employee ids of one conversion and one future-dated hire.
    """
    edits = org.random_edits(
        count - 1, seed=11, kinds=("move", "terminate", "rename", "hire", "convert"), future_hires=0.4
    )
    converted = next(str(e["id"]) for e in edits if e["op"] == "convert")
    boss = next(w for w in org if w.status == "active" and any(x.manager == w.index for x in org))
    future = org.hire(
        boss.employee_id, family_name="Future", hire_date=org.clock().date() + timedelta(days=20)
    )
    return {"converted": converted, "future": future.employee_id}
