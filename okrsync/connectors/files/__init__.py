"""Files connector: a people file (CSV or JSONL) as a source or as a target.

The simplest system okrsync talks to, and the one admins start with: an HRIS export to
bootstrap from, or a file target to inspect what a sync would write. As a target it
upserts by person id and rewrites the file atomically after every batch, so a crash
mid-apply leaves a consistent file and a rerun converges without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    GoalResult,
    Operation,
    OpKind,
    OpResult,
    Pull,
    PullMode,
    PullRequest,
    RawRecord,
)
from okrsync.errors import ConfigError
from okrsync.io import file_format, iter_rows, person_from_row, person_to_jsonl, write_lines, write_people
from okrsync.models import KeyResult, Objective, OkrSet, Person, PersonStatus
from okrsync.okrs import dump_okrs, load_okrs


class FilesConfig(ConnectorConfig):
    type: Literal["files"] = "files"
    path: str | None = Field(
        default=None, description="People file (.csv/.tsv or .jsonl); relative to the config file"
    )
    format: Literal["auto", "csv", "jsonl"] = "auto"
    batch_size: int = Field(default=5000, ge=1, description="Target: operations written per atomic rewrite")
    goals_path: str | None = Field(default=None, description="OKR file (.json/.yaml) for goals in and out")

    @model_validator(mode="after")
    def _something_to_read_or_write(self) -> FilesConfig:
        if self.path is None and self.goals_path is None:
            raise ValueError("set path (people) and/or goals_path (OKRs)")
        return self


class FilesConnector(Connector):
    """Reads and writes people files with canonical column names."""

    name = "files"
    Config = FilesConfig
    default_mapping = None  # canonical columns already; a job may still name a mapping

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, FilesConfig)
        self.cfg = config
        self.path = self._resolve(config.path or "")
        self.goals_path = self._resolve(config.goals_path) if config.goals_path else None
        self.batch_size = config.batch_size
        self._current: dict[str, Person] | None = None
        self._lines: dict[str, str] = {}  # JSONL: serialised once, so batch rewrites only encode what changed

    def _resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.context.base_dir / path

    def _need_people_file(self) -> None:
        if not self.cfg.path:
            raise ConfigError(f"connection {self.context.connection_name!r}: no people file (set path)")

    # ---- OrgSource ----
    def pull(self, request: PullRequest) -> Pull:
        """A file has no change feed: every pull is full (the engine diffs it)."""
        self._need_people_file()
        return Pull(records=self._records(), mode=PullMode.FULL, cursor=None, requests=0)

    def _records(self) -> Iterator[RawRecord]:
        for row in iter_rows(self.path, self.cfg.format):
            ref = f"{self.path.name}:{row.line}"
            if row.data is None:
                yield RawRecord(key=f"line {row.line}", data={"__error__": row.error}, ref=ref)
                continue
            key = str(row.data.get("id") or "").strip()
            yield RawRecord(key=key or f"line {row.line}", data=row.data, ref=ref)

    # ---- OrgReader ----
    def read_current(self, id_map: Mapping[str, str]) -> Iterable[Person]:
        return list(self._load().values())

    def _load(self) -> dict[str, Person]:
        if self._current is None:
            self._current = {}
            if self.path.exists():
                for row in iter_rows(self.path, self.cfg.format):
                    if row.data is not None:
                        person = person_from_row(row.data)
                        self._current[person.id] = person
                        self._lines.pop(person.id, None)
        return self._current

    # ---- OrgTarget ----
    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        self._need_people_file()
        current = self._load()
        results = []
        for op in ops:
            if op.kind in (OpKind.CREATE, OpKind.UPDATE):
                assert op.person is not None
                current[op.person_id] = op.person
            elif op.kind is OpKind.DISABLE:
                before = current.get(op.person_id) or op.person
                if before is not None:
                    current[op.person_id] = before.model_copy(update={"status": PersonStatus.TERMINATED})
            elif op.kind is OpKind.DELETE:
                current.pop(op.person_id, None)
            results.append(OpResult(op=op, ok=True))  # ids are the source's own: no id map needed
        for op in ops:
            self._lines.pop(op.person_id, None)
        if file_format(self.path, self.cfg.format) == "jsonl":
            write_lines(self.path, (self._line(pid, person) for pid, person in current.items()))
        else:
            write_people(self.path, current.values(), self.cfg.format)
        return results

    def _line(self, pid: str, person: Person) -> str:
        line = self._lines.get(pid)
        if line is None:
            line = self._lines[pid] = person_to_jsonl(person)
        return line

    # ---- GoalSource / GoalTarget ----
    def pull_goals(self) -> OkrSet:
        if self.goals_path is None:
            raise ConfigError(f"connection {self.context.connection_name!r}: no goals file (set goals_path)")
        return load_okrs(self.goals_path) if self.goals_path.exists() else OkrSet()

    def push_goals(
        self, objectives: Sequence[Objective], key_results: Sequence[KeyResult], id_map: Mapping[str, str]
    ) -> list[GoalResult]:
        """Upsert by id into the goals file; ``written`` only for items that really changed."""
        held = self.pull_goals()
        objs = {o.id: o for o in held.objectives}
        krs = {k.id: k for k in held.key_results}
        results = []
        for table, items in ((objs, objectives), (krs, key_results)):
            for item in items:
                changed = table.get(item.id) != item
                table[item.id] = item  # type: ignore[assignment]
                results.append(GoalResult(item_id=item.id, ok=True, target_id=item.id, written=changed))
        if any(r.written for r in results) and self.goals_path is not None:
            dump_okrs(
                held.model_copy(
                    update={"objectives": tuple(objs.values()), "key_results": tuple(krs.values())}
                ),
                self.goals_path,
            )
        return results
