"""Shared helpers: a Salesforce connector pointed at a running emulator, pulls mapped like the engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from okrsync.connectors.base import ConnectorContext, Pull, PullRequest
from okrsync.connectors.salesforce import SalesforceConfig, SalesforceConnector
from okrsync.io import person_from_row
from okrsync.mapping import load_mapping
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator
from okrsync.sandbox.salesforce import SalesforceEmulator

AS_OF = date(2024, 5, 15)
AUTH_KEYS = (
    "username",
    "password",
    "security_token",
    "consumer_key",
    "consumer_secret",
    "private_key_path",
    "ca_bundle",
)


class Clock:
    """A settable clock shared by the org (record timestamps) and the connector (watermarks)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 15, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def settings(
    run: RunningEmulator, auth: str = "password", *, via: str = "login_url", **overrides: Any
) -> dict[str, Any]:
    """``[connections.salesforce]`` settings for the emulator, reached ``via`` login_url or domain."""
    conn = run.connection()
    out: dict[str, Any] = {k: conn[k] for k in AUTH_KEYS}
    out.update(type="salesforce", auth=auth, max_retry_seconds=30.0)
    out[via] = conn[via]
    out.update(overrides)
    return out


def connector(
    run: RunningEmulator,
    auth: str = "password",
    *,
    clock: Callable[[], datetime] | None = None,
    via: str = "login_url",
    **overrides: Any,
) -> SalesforceConnector:
    cfg = SalesforceConfig(**settings(run, auth, via=via, **overrides))
    ctx = ConnectorContext("salesforce", clock=clock) if clock else ConnectorContext("salesforce")
    return SalesforceConnector(cfg, ctx)


def pull(
    conn: SalesforceConnector, cursor: str | None = None, watermark: datetime | None = None
) -> tuple[Pull, dict[str, Person]]:
    """Pull and map with the connector's own mapping, as the engine does."""
    mapping = load_mapping(conn.config.mapping or "salesforce")
    result = conn.pull(
        PullRequest(cursor=cursor, watermark=watermark or datetime.now(UTC), full=cursor is None)
    )
    people: dict[str, Person] = {}
    for raw in result.records:
        person = person_from_row(mapping.apply(raw.data), raw.ref)
        assert person.id not in people, person.id
        people[person.id] = person
    return result, people


def emulator_of(run: RunningEmulator) -> SalesforceEmulator:
    em = run.emulator
    assert isinstance(em, SalesforceEmulator)
    return em


def writes(em: SalesforceEmulator) -> list[tuple[str, str, int]]:
    """(method, path, status) of every write the emulator served (its request log)."""
    return [
        (m, p, s)
        for _, m, p, s in em.request_log
        if m in ("PATCH", "POST", "DELETE") and "/services/data" in p
    ]
