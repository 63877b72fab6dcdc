"""What the engine sees of the state store: run rows, per-record events and the protocol.

Kept apart from the SQLite implementation so the engine (and a later PostgreSQL store) depend
on plain dataclasses and a :class:`typing.Protocol`, never on ``sqlite3``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from okrsync.models import OrgSnapshot

#: Every status a run row can have; ``running`` is the only one that holds the job's lock.
RUN_STATUSES = frozenset(
    {"running", "ok", "failed_records", "policy_stop", "error", "dry_run", "interrupted"}
)
#: Statuses ``finish_run`` accepts.
FINAL_STATUSES = RUN_STATUSES - {"running"}


@dataclasses.dataclass(frozen=True)
class RecordEvent:
    """What happened to one person in one run, for reports and "why did X change?".

    ``changes`` maps a field to ``[old, new]``; it is stored as JSON, so tuples come back as
    lists and dates as ISO strings. ``target`` is the connection name, ``None`` for events on
    the source side (quarantine, skip).
    """

    person_id: str
    operation: str
    target: str | None
    ok: bool
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    field: str | None = None
    retries: int = 0


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One row of run history. ``host``/``pid``/``heartbeat_at`` say who holds (held) the lock."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    mode: str
    dry_run: bool
    summary: dict[str, Any]
    host: str | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """Metadata of one stored snapshot, listed without decoding the (large) body."""

    id: int
    job: str
    key: str
    run_id: int | None
    source: str
    taken_at: datetime
    committed_at: datetime
    people: int
    units: int
    size: int  # bytes of the compressed body


@runtime_checkable
class StateStore(Protocol):
    """What the engine needs from durable state; one store serves many jobs.

    Writes that must survive a crash mid-apply (``put_ids``, ``record_events``) commit at once;
    the snapshot/cursor pair only moves in :meth:`commit`, after apply, in one transaction.
    """

    def begin_run(self, job: str, *, started_at: datetime, mode: str, dry_run: bool = False) -> int: ...

    def heartbeat(self, run_id: int) -> None: ...

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None: ...

    def get_snapshot(self, job: str, key: str) -> OrgSnapshot | None: ...

    def get_cursor(self, job: str, key: str) -> str | None: ...

    def commit(
        self,
        run_id: int,
        job: str,
        *,
        snapshots: Mapping[str, OrgSnapshot],
        cursors: Mapping[str, str | None],
    ) -> None: ...

    def get_id_map(self, system: str) -> dict[str, str]: ...

    def put_ids(self, system: str, pairs: Iterable[tuple[str, str]]) -> None: ...

    def record_events(self, run_id: int, events: Iterable[RecordEvent]) -> None: ...

    def runs(self, job: str | None = None, limit: int = 20) -> list[RunInfo]: ...

    def get_run(self, run_id: int) -> RunInfo | None: ...

    def events(
        self, run_id: int, *, only_failures: bool = False, limit: int | None = None
    ) -> list[RecordEvent]: ...

    def person_history(self, person_id: str, limit: int = 100) -> list[tuple[RunInfo, RecordEvent]]: ...

    def put_value(self, namespace: str, key: str, value: Any) -> None: ...

    def get_value(self, namespace: str, key: str) -> Any | None: ...

    def integrity_check(self) -> list[str]: ...

    def close(self) -> None: ...
