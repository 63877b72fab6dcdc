"""What a run did, in a shape the CLI prints, ``--json`` emits and the state store keeps."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from okrsync.errors import ConfigError, HierarchyError, PolicyViolation, RecordsFailed

STATUS_EXIT = {
    "ok": 0,
    "dry_run": 0,
    "no_change": 0,
    "failed_records": RecordsFailed.exit_code,
    "policy_stop": PolicyViolation.exit_code,
    "hierarchy_stop": HierarchyError.exit_code,
    "config_error": ConfigError.exit_code,
    "error": 1,
}


@dataclass(frozen=True)
class Quarantined:
    """A source record that could not be used: named by key, where it came from, field and reason."""

    key: str
    ref: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f" ({self.ref})" if self.ref else ""
        fld = f" field {self.field!r}:" if self.field else ""
        return f"record {self.key!r}{where}:{fld} {self.reason}"


@dataclass
class TargetReport:
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    written: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    requests: int = 0  # HTTP requests to the target during apply (its connector's HttpClients)
    http_retries: int = 0  # HTTP requests re-sent during apply (429, 5xx, resets)
    reconciled_from_target: bool = False
    would_remove: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    job: str
    mode: str = "full"
    dry_run: bool = False
    run_id: int | None = None
    status: str = "ok"
    started_at: str = ""
    finished_at: str = ""
    pulled: int = 0
    people: int = 0
    source_requests: int = 0
    source_retries: int = 0  # HTTP requests the source connector re-sent (429, 5xx, resets)
    quarantined: list[Quarantined] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, TargetReport] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    blocked: str | None = None
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)  # goal target -> pushed/written/failed
    learning: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # learning target -> links/written/failed
    metrics: list[dict[str, Any]] = field(default_factory=list)  # key results evaluated from business systems

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT.get(self.status, 1)

    @property
    def writes(self) -> int:
        return sum(t.written for t in self.targets.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quarantined"] = [asdict(q) for q in self.quarantined]
        data["exit_code"] = self.exit_code
        data["writes"] = self.writes
        return data

    def lines(self) -> list[str]:
        """A short human summary, for the terminal and the morning e-mail."""
        head = f"job {self.job!r} run {self.run_id}: {self.status}" + (" (dry run)" if self.dry_run else "")
        out = [
            head,
            f"  source: {self.pulled} records pulled ({self.mode}), {self.people} people"
            f", {self.source_requests} requests"
            + (f", {self.source_retries} retries" if self.source_retries else ""),
        ]
        if self.quarantined:
            out.append(f"  quarantined: {len(self.quarantined)} record(s)")
            out += [f"    - {q}" for q in self.quarantined[:20]]
            if len(self.quarantined) > 20:
                out.append(f"    … and {len(self.quarantined) - 20} more (okrsync runs show {self.run_id})")
        if self.problems:
            out.append(f"  hierarchy: {len(self.problems)} problem(s)")
            for p in self.problems[:20]:
                res = f" → {p['resolution']}" if p.get("resolution") else ""
                out.append(f"    - {p['code']}: {p['message']}{res}")
        for t in self.targets.values():
            counts = ", ".join(f"{k} {v}" for k, v in sorted(t.counts.items())) or "nothing to do"
            verb = "would write" if self.dry_run else "wrote"
            amount = sum(t.counts.values()) if self.dry_run else t.written
            out.append(
                f"  target {t.name}: {counts}; {verb} {amount}"
                + (f", {len(t.failed)} failed" if t.failed else "")
                + (f", {t.retries} retries" if t.retries else "")
                + (f"; {t.requests} requests" if t.requests else "")
                + (f", {t.http_retries} HTTP retries" if t.http_retries else "")
            )
            out += [f"    - {f['person_id']}: {f['operation']} failed: {f['error']}" for f in t.failed[:20]]
        for name, g in self.goals.items():
            failed = f", {len(g['failed'])} failed" if g["failed"] else ""
            out.append(
                f"  goals → {name}: {g['pushed']} objectives/key results, {g['written']} written{failed}"
            )
            out += [f"    - {f['id']}: {f['error']}" for f in g["failed"][:20]]
        for name, g in self.learning.items():
            failed = f", {len(g['failed'])} failed" if g["failed"] else ""
            out.append(
                f"  learning → {name}: {g['links']} links, {g['written']} written, "
                f"{g['removed']} removed{failed}"
            )
            out += [f"    - {f['id']}: {f['error']}" for f in g["failed"][:20]]
        out += [f"  note: {n}" for n in self.notices]
        if self.blocked:
            out.append(f"  STOPPED: {self.blocked}")
        if self.phases:
            out.append("  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items()))
        return out


def write_run_report(report: RunReport, directory: Path) -> tuple[Path, Path]:
    """``run-<id>.json`` and ``run-<id>.html`` in ``directory``; returns both paths."""
    from okrsync.render.run_report import run_report_html

    directory.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    stem = directory / f"run-{report.run_id if report.run_id is not None else 'unknown'}"
    json_path, html_path = stem.with_suffix(".json"), stem.with_suffix(".html")
    json_path.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(run_report_html(data), encoding="utf-8")
    return json_path, html_path
