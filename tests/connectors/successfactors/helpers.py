"""Shared helpers: a connector pointed at a running SF emulator, and pulls mapped like the engine does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from okrsync.connectors.base import ConnectorContext, Pull, PullRequest
from okrsync.connectors.successfactors import SuccessFactorsConfig, SuccessFactorsConnector
from okrsync.io import person_from_row
from okrsync.mapping import load_mapping
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator

MAPPING = load_mapping("successfactors")


def connector(
    run: RunningEmulator, clock: Callable[[], datetime] | None = None, **overrides: Any
) -> SuccessFactorsConnector:
    cfg = SuccessFactorsConfig(**{**run.connection(), **overrides})
    ctx = ConnectorContext("sf", clock=clock) if clock else ConnectorContext("sf")
    return SuccessFactorsConnector(cfg, ctx)


def pull(
    conn: SuccessFactorsConnector, cursor: str | None = None, watermark: datetime | None = None
) -> tuple[Pull, dict[str, Person], list[str]]:
    """Pull and map; returns the pull, people by id, and the keys of records marked removed."""
    result = conn.pull(
        PullRequest(cursor=cursor, watermark=watermark or datetime.now(UTC), full=cursor is None)
    )
    people: dict[str, Person] = {}
    removed: list[str] = []
    for raw in result.records:
        if raw.removed:
            removed.append(raw.key)
            continue
        person = person_from_row(MAPPING.apply(raw.data), raw.ref)
        assert person.id not in people
        people[person.id] = person
    return result, people, removed


def sf(employee_id: str | None) -> str | None:
    """The sandbox's SF userId for a canonical (employee id) reference."""
    return None if employee_id is None else "u" + employee_id
