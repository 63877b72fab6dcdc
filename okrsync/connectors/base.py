"""Connector capabilities: small protocols a connector implements as it can.

A connector is a class with a ``name``, a pydantic ``Config`` model and a constructor taking
``(config, context)``. What it can do is the set of protocols below its instances satisfy,
so the engine asks ``isinstance(conn, OrgSource)`` instead of trusting a declared list.
Connectors never touch the state store: cursors and id maps come in as arguments and go
out as results, and the engine decides what to commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from okrsync.models import (
    KeyResult,
    LearningItem,
    LearningLink,
    Objective,
    OkrSet,
    OrgUnit,
    Person,
)


class ConnectorConfig(BaseModel):
    """Base of every connector's config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    mapping: str | None = Field(
        default=None, description="Built-in mapping name or path; default: the connector's."
    )


class HttpOptions(BaseModel):
    """Settings every HTTP connector shares; mix into a connector's Config."""

    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for a response.")
    ca_bundle: str | None = Field(
        default=None, description="PEM file of CAs to trust (really used: see api-notes §7)."
    )
    verify_tls: bool = Field(default=True, description="Never turn off outside a throwaway sandbox.")
    max_attempts: int = Field(default=6, ge=1, le=20, description="Attempts per request (retries + 1).")
    max_retry_seconds: float = Field(
        default=300.0, gt=0, description="Total time one request may spend in retries."
    )
    max_retry_after: float = Field(default=600.0, gt=0, description="Longest vendor Retry-After honoured.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight per connection.")

    def http_settings(self) -> Any:
        from okrsync.http import HttpSettings

        return HttpSettings(
            timeout=self.timeout,
            ca_bundle=self.ca_bundle,
            verify=self.verify_tls,
            max_attempts=self.max_attempts,
            max_retry_seconds=self.max_retry_seconds,
            max_retry_after=self.max_retry_after,
            concurrency=self.concurrency,
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ConnectorContext:
    """Everything a connector may need from outside, injectable for tests and embedding."""

    connection_name: str
    clock: Callable[[], datetime] = utcnow
    base_dir: Path = field(default_factory=Path.cwd)  # relative paths in a config are relative to its file
    rate_limiter: Any = None  # okrsync.http.RateLimiter shared by a fleet's workers; None = unlimited
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("okrsync.connector"))


@dataclass(frozen=True)
class RawRecord:
    """One record as the source returned it, before mapping.

    ``key`` is the source's stable id (used to name the record in errors even when mapping
    fails); ``removed`` marks an incremental deletion (``hard`` when it cannot be restored).
    """

    key: str
    data: Mapping[str, Any]
    ref: str | None = None
    removed: bool = False
    hard: bool = False


class PullMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass
class PullRequest:
    """What the engine asks of a source: ``cursor`` is the last committed one, ``watermark`` the run start."""

    cursor: str | None
    watermark: datetime
    full: bool = False


@dataclass
class Pull:
    """A pull in progress: iterate ``records`` once; ``cursor``/``notices`` are final afterwards.

    ``mode`` may turn from incremental to full while iterating (an expired delta token), so the
    engine reads it only after the records are exhausted.
    """

    records: Iterator[RawRecord]
    mode: PullMode = PullMode.FULL
    cursor: str | None = None
    units: list[OrgUnit] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    requests: int = 0


class OpKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DISABLE = "disable"
    DELETE = "delete"


@dataclass(frozen=True)
class Operation:
    """One write the plan asks a target for; ``changes`` maps field -> (old, new)."""

    kind: OpKind
    person_id: str
    person: Person | None
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class OpResult:
    """A target's verdict on one operation; ``target_id`` feeds the id map."""

    op: Operation
    ok: bool
    target_id: str | None = None
    error: str | None = None
    retries: int = 0


@runtime_checkable
class OrgSource(Protocol):
    """Yields people (and units) with an incremental cursor when the API has one."""

    def pull(self, request: PullRequest) -> Pull: ...


@runtime_checkable
class OrgTarget(Protocol):
    """Receives ordered person/manager operations and reports per-record results.

    A target may also declare ``managed_fields`` (canonical Person field names it holds and
    writes, e.g. ``("display_name", "title", "department", "manager_id", "status")``): the
    engine then compares only those, so fields the system does not store never cause writes.
    """

    batch_size: int

    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]: ...


@runtime_checkable
class OrgReader(Protocol):
    """A target that can show what it holds now, so a first run fixes a stale directory."""

    def read_current(self, id_map: Mapping[str, str]) -> Iterable[Person]: ...


@runtime_checkable
class GoalSource(Protocol):
    def pull_goals(self) -> OkrSet: ...


@dataclass(frozen=True)
class GoalResult:
    item_id: str
    ok: bool
    target_id: str | None = None
    written: bool = False
    error: str | None = None


@runtime_checkable
class GoalTarget(Protocol):
    """Receives objectives and key results; a target that can record alignment also takes
    ``alignments: Sequence[AlignmentEdge] = ()`` as a keyword, and the engine passes the cascade's edges."""

    def push_goals(
        self, objectives: Sequence[Objective], key_results: Sequence[KeyResult], id_map: Mapping[str, str]
    ) -> list[GoalResult]: ...


@runtime_checkable
class LearningTarget(Protocol):
    def push_learning(
        self, items: Sequence[LearningItem], links: Sequence[LearningLink], id_map: Mapping[str, str]
    ) -> list[GoalResult]: ...


@runtime_checkable
class MetricSource(Protocol):
    def evaluate(self, key_result: KeyResult, team: Sequence[Person], **window: Any) -> float: ...


CAPABILITIES: tuple[tuple[str, type], ...] = (
    ("OrgSource", OrgSource),
    ("OrgTarget", OrgTarget),
    ("OrgReader", OrgReader),
    ("GoalSource", GoalSource),
    ("GoalTarget", GoalTarget),
    ("LearningTarget", LearningTarget),
    ("MetricSource", MetricSource),
)


class Connector:
    """Optional base class: gives a connector its name, config and context attributes."""

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    default_mapping: ClassVar[str | None] = None

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    def close(self) -> None:
        """Release sessions and files; the engine calls it once per run."""

    def http_stats(self) -> dict[str, int]:
        """``{"requests": n, "retries": n}`` over the connection's lifetime (the engine takes deltas).

        Default: the sums over the :class:`~okrsync.http.HttpClient` instances this connector
        holds, directly or in its okrsync helper objects; override when the count lives elsewhere.
        """
        return http_stats_of_clients(self)

    @classmethod
    def capabilities(cls) -> list[str]:
        """Capability names, read from the class's methods so nothing has to be declared twice."""
        names = []
        for cap_name, proto in CAPABILITIES:
            members = [m for m in proto.__dict__ if not m.startswith("_") and m not in {"batch_size"}]
            members = [m for m in members if callable(getattr(proto, m, None))]
            if members and all(callable(getattr(cls, m, None)) for m in members):
                names.append(cap_name)
        return names


def http_stats_of_clients(obj: Any, depth: int = 3) -> dict[str, int]:
    """Requests and retries of every distinct ``HttpClient`` reachable from ``obj``'s attributes."""
    from okrsync.http import HttpClient

    found: dict[int, HttpClient] = {}
    seen: set[int] = set()

    def walk(o: Any, d: int) -> None:
        if isinstance(o, HttpClient):
            found[id(o)] = o
            return
        if d == 0 or id(o) in seen or not hasattr(o, "__dict__"):
            return
        seen.add(id(o))
        for v in vars(o).values():
            if isinstance(v, HttpClient) or (
                hasattr(v, "__dict__") and type(v).__module__.startswith("okrsync")
            ):
                walk(v, d - 1)

    walk(obj, depth)
    return {
        "requests": sum(c.stats.requests for c in found.values()),
        "retries": sum(c.stats.retries for c in found.values()),
    }


def http_stats(conn: Any) -> dict[str, int]:
    """A connector's :meth:`Connector.http_stats`, or the default walk for duck-typed connectors."""
    hook = getattr(conn, "http_stats", None)
    if callable(hook):
        stats = hook()
        return {"requests": int(stats.get("requests", 0)), "retries": int(stats.get("retries", 0))}
    return http_stats_of_clients(conn)
