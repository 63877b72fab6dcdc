"""Orchestration only: pull → map → check → diff → plan → policies → apply → commit.

The engine owns the order of things and the state store; connectors only move records
and the pure modules only compute. Two rules carry the safety guarantees:

* every policy is evaluated for every target before the first write, so a breached
  deletion threshold stops the run with nothing applied;
* snapshots and cursors are committed only after apply (the watermark is the run's start),
  so a crash leaves the previous state and a rerun converges, upserting by id.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from okrsync import connectors
from okrsync.config import JobConfig, OkrSyncConfig, Threshold
from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    GoalSource,
    GoalTarget,
    LearningTarget,
    OpKind,
    OpResult,
    OrgReader,
    OrgSource,
    OrgTarget,
    PullMode,
    PullRequest,
    RawRecord,
    http_stats,
    utcnow,
)
from okrsync.diff import COMPARED_FIELDS, diff_people
from okrsync.errors import ConfigError, HierarchyError, MappingError, OkrSyncError, PolicyViolation
from okrsync.hierarchy import Hierarchy, HierarchyPolicy, ProblemCode, build_hierarchy
from okrsync.io import FieldValueError, person_from_row
from okrsync.learning import LearningPlan
from okrsync.mapping import Mapping as FieldMapping
from okrsync.mapping import load_mapping
from okrsync.models import OkrSet, OrgSnapshot, Person, PersonStatus
from okrsync.plan import Plan, PlanPolicy, build_plan
from okrsync.report import Quarantined, RunReport, TargetReport
from okrsync.state import RecordEvent, StateStore

log = logging.getLogger("okrsync.engine")

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``: the CLI draws bars from it; total is None when unknown."""

# problems that are about a record's data (reported as failed records), not about policy choices
RECORD_PROBLEMS = frozenset(
    {
        ProblemCode.CYCLE,
        ProblemCode.SELF_MANAGER,
        ProblemCode.DANGLING_MANAGER,
        ProblemCode.DANGLING_DOTTED_MANAGER,
        ProblemCode.DUPLICATE_EMAIL,
        ProblemCode.DUPLICATE_ID,
    }
)


# the report's finer statuses, folded onto the state store's run statuses
STORE_STATUS = {"no_change": "ok", "hierarchy_stop": "policy_stop", "config_error": "error"}


ConnectorFactory = Callable[[ConnectorConfig, ConnectorContext], Connector]
"""Builds a connector from its config; inject one to wrap, instrument or fake connectors."""


def _registry_factory(config: ConnectorConfig, context: ConnectorContext) -> Connector:
    return connectors.load(config.type)(config, context)


def _no_progress(phase: str, done: int, total: int | None) -> None:
    pass


@dataclass
class SourceResult:
    """A pulled, mapped, de-duplicated source: the desired people before hierarchy policies."""

    snapshot: OrgSnapshot
    quarantined: list[Quarantined]
    mode: PullMode
    cursor: str | None
    pulled: int
    requests: int
    notices: list[str] = field(default_factory=list)
    previous: OrgSnapshot | None = None  # the committed source snapshot this pull was compared with


@dataclass
class PreparedRun:
    """Everything decided before the first write: the plans per target and the reasons to stop."""

    source: SourceResult
    hierarchy: Hierarchy
    desired: dict[str, Person]
    plans: dict[str, Plan]
    befores: dict[str, dict[str, Person]]
    reconciled: set[str]


class SyncEngine:
    """Runs configured jobs against a state store; one engine per process is enough."""

    def __init__(
        self,
        config: OkrSyncConfig,
        state: StateStore,
        *,
        clock: Callable[[], Any] = utcnow,
        progress: Progress | None = None,
        connector_factory: ConnectorFactory | None = None,
    ) -> None:
        self.config = config
        self.connector_factory = connector_factory or _registry_factory
        self.state = state
        self.clock = clock
        self.progress = progress or _no_progress
        self._connectors: dict[str, Connector] = {}

    # ---- connectors ----
    def connector(self, name: str) -> Connector:
        if name not in self._connectors:
            cfg = self.config.connection(name)
            ctx = ConnectorContext(
                connection_name=name,
                clock=self.clock,
                base_dir=self.config.base_dir,
                logger=logging.getLogger(f"okrsync.connector.{name}"),
            )
            self._connectors[name] = self.connector_factory(cfg, ctx)
        return self._connectors[name]

    def close(self) -> None:
        for conn in self._connectors.values():
            conn.close()
        self._connectors.clear()

    def _mapping_for(self, job: JobConfig | None, source: str) -> FieldMapping | None:
        conn = self.connector(source)
        name = (job.mapping if job else None) or conn.config.mapping or conn.default_mapping
        if name is None:
            return None
        if name.endswith(".toml") and not name.startswith("/"):
            name = str(self.config.resolve_path(name))
        return load_mapping(name)

    # ---- pull + map ----
    def pull(
        self,
        source: str,
        *,
        job: JobConfig | None = None,
        job_name: str | None = None,
        full: bool = False,
        watermark: Any = None,
    ) -> SourceResult:
        """Pull and map one source; with a job, incremental pulls are applied to its last snapshot."""
        conn = self.connector(source)
        if not isinstance(conn, OrgSource):
            raise ConfigError(
                f"connection {source!r} ({conn.config.type}) cannot be a source: it has no pull()"
            )
        mapping = self._mapping_for(job, source)
        previous = self.state.get_snapshot(job_name, "source") if job_name else None
        cursor = (
            None
            if (full or previous is None or job_name is None)
            else self.state.get_cursor(job_name, "source")
        )
        started = watermark or self.clock()
        pull = conn.pull(PullRequest(cursor=cursor, watermark=started, full=full or cursor is None))
        people: dict[str, Person] = {}
        refs: dict[str, str | None] = {}
        quarantined: list[Quarantined] = []
        removed: set[str] = set()
        pulled = 0
        for raw in pull.records:
            pulled += 1
            if pulled % 5000 == 0:
                self.progress("pull", pulled, None)
            if raw.removed:
                removed.add(raw.key)
                continue
            person, problems = _map_record(raw, mapping)
            if person is None:
                quarantined += problems
                continue
            if person.id in people:
                quarantined.append(
                    Quarantined(
                        person.id,
                        raw.ref,
                        "id",
                        f"duplicate id; first seen at {refs[person.id] or 'an earlier record'}"
                        "; this record was skipped",
                    )
                )
                continue
            people[person.id] = person
            refs[person.id] = raw.ref
        self.progress("pull", pulled, pulled)
        mode = pull.mode
        if mode is PullMode.INCREMENTAL and previous is not None:
            merged = previous.people_by_id()
            merged.update(people)
            for key in removed:
                merged.pop(key, None)
            people = merged
        elif previous is not None:
            # nothing is lost: a previously known person whose record is broken today is kept as it was
            before = previous.people_by_id()
            for q in quarantined:
                if q.key in before and q.key not in people:
                    people[q.key] = before[q.key]
        snapshot = OrgSnapshot(
            source=source, taken_at=started, people=tuple(people.values()), units=tuple(pull.units)
        )
        return SourceResult(
            snapshot, quarantined, mode, pull.cursor, pulled, pull.requests, list(pull.notices), previous
        )

    # ---- prepare (no writes) ----
    def prepare(
        self, job_name: str, *, full: bool = False, allow_deletes: bool = False, watermark: Any = None
    ) -> PreparedRun:
        job = self.config.job(job_name)
        for t in job.targets:
            if not isinstance(self.connector(t), OrgTarget):
                raise ConfigError(f"jobs.{job_name}.targets: connection {t!r} cannot be an org target")
        source = self.pull(job.source, job=job, job_name=job_name, full=full, watermark=watermark)
        try:
            policy = HierarchyPolicy.parse(job.hierarchy_policy())
        except ConfigError as exc:
            raise ConfigError(f"jobs.{job_name}: {exc.message}") from None
        people = list(source.snapshot.people)
        if not job.include_inactive:
            people = [p for p in people if p.is_active]
        scope = job.scope.matches if (job.scope.include or job.scope.exclude) else None
        hierarchy = build_hierarchy(people, policy, scope)
        desired = {p.id: p for p in hierarchy.resolved_people()}
        plans: dict[str, Plan] = {}
        befores: dict[str, dict[str, Person]] = {}
        reconciled: set[str] = set()
        for t in job.targets:
            conn = self.connector(t)
            previous = None if full else self.state.get_snapshot(job_name, f"target:{t}")
            if previous is None and isinstance(conn, OrgReader):
                before = {p.id: p for p in conn.read_current(self.state.get_id_map(t))}
                reconciled.add(t)
            else:
                before = previous.people_by_id() if previous else {}
            befores[t] = before
            limit = _threshold(job.max_deletes, len(before))
            fields = tuple(getattr(conn, "managed_fields", None) or COMPARED_FIELDS)
            plans[t] = build_plan(
                diff_people(before, desired, fields),
                hierarchy.order(),
                PlanPolicy(
                    max_removals=limit,
                    threshold_label=str(job.max_deletes),
                    allow_deletes=allow_deletes,
                    removal=job.removal,
                ),
                population=len(before),
            )
        return PreparedRun(source, hierarchy, desired, plans, befores, reconciled)

    # ---- sync ----
    def sync(
        self, job_name: str, *, dry_run: bool = False, full: bool = False, allow_deletes: bool = False
    ) -> RunReport:
        job = self.config.job(job_name)  # an unknown job is a config error before a run is recorded
        started = self.clock()
        report = RunReport(job=job_name, dry_run=dry_run, started_at=started.isoformat())
        run_id = self.state.begin_run(
            job_name, started_at=started, mode="full" if full else "auto", dry_run=dry_run
        )
        report.run_id = run_id
        try:
            source_before = self._http_stats(job.source)
            with self._phase(report, "pull+plan"):
                prepared = self.prepare(job_name, full=full, allow_deletes=allow_deletes, watermark=started)
            self._fill_report(report, prepared)
            report.source_retries = self._http_stats(job.source)["retries"] - source_before["retries"]
            self.state.record_events(run_id, _quarantine_events(prepared.source.quarantined, prepared))
            if prepared.hierarchy.has_blocking_problems:
                report.status = "hierarchy_stop"
                report.blocked = (
                    'reporting-line cycles found and the job\'s policy is cycles = "stop"; nothing written'
                )
                raise HierarchyError(report.blocked, job=job_name)
            blocked = {t: p.blocked for t, p in prepared.plans.items() if p.blocked}
            if blocked:
                report.status = "policy_stop"
                report.blocked = "; ".join(f"target {t}: {why}" for t, why in blocked.items())
                for t in blocked:
                    report.targets[t].would_remove = [op.person_id for op in prepared.plans[t].removals]
                raise PolicyViolation(report.blocked, job=job_name)
            if dry_run:
                report.status = "dry_run"
                return report
            with self._phase(report, "apply"):
                applied = {}
                for t in prepared.plans:
                    before = self._http_stats(t)
                    applied[t] = self._apply(run_id, t, prepared, report.targets[t])
                    after = self._http_stats(t)
                    report.targets[t].requests = after["requests"] - before["requests"]
                    report.targets[t].http_retries = after["retries"] - before["retries"]
            with self._phase(report, "commit"):
                self.state.commit(
                    run_id,
                    job_name,
                    snapshots=self._changed_snapshots(prepared, applied),
                    cursors={"source": prepared.source.cursor},
                )
            okrs: OkrSet | None = None  # read once: a goal_source is a pull, not a file read
            if job.has_okrs and job.goal_targets:
                with self._phase(report, "goals"):
                    okrs = self.okrs_for(job, prepared.hierarchy)
                    self._push_goals(run_id, job, okrs, prepared, report)
            if job.has_okrs and job.learning_targets:
                with self._phase(report, "learning"):
                    if okrs is None:
                        okrs = self.okrs_for(job, prepared.hierarchy)
                    self._push_learning(run_id, job, okrs, prepared, report)
            failed = any(t.failed for t in report.targets.values())
            failed = failed or any(g["failed"] for g in [*report.goals.values(), *report.learning.values()])
            record_problems = [p for p in prepared.hierarchy.problems if p.code in RECORD_PROBLEMS]
            if failed or report.quarantined or record_problems:
                report.status = "failed_records"
            elif not report.writes and not any(g["written"] for g in report.learning.values()):
                report.status = "no_change"
            return report
        except OkrSyncError as exc:
            if report.status == "ok":
                report.status = "config_error" if isinstance(exc, ConfigError) else "error"
                report.notices.append(str(exc))
            raise
        except BaseException as exc:
            report.status = "error"
            report.notices.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            report.finished_at = self.clock().isoformat()
            self.state.finish_run(run_id, STORE_STATUS.get(report.status, report.status), report.to_dict())

    def okrs_for(self, job: JobConfig, hierarchy: Hierarchy) -> OkrSet:
        """The job's OKRs — its file, or what its ``goal_source`` holds now — cascaded along the
        hierarchy when ``cascade_depth`` asks for it."""
        from okrsync.cascade import CascadeOptions, cascade
        from okrsync.okrs import load_okrs

        if job.goal_source is not None:
            okrs = self.pull_goals(job.goal_source)
        elif job.okrs is not None:
            okrs = load_okrs(self.config.resolve_path(job.okrs))
        else:
            raise ConfigError("this job has no okrs file and no goal_source")
        if job.cascade_depth:
            options = CascadeOptions(depth=job.cascade_depth, mode=job.cascade_mode)
            okrs = cascade(okrs, hierarchy, options).okrs
        return okrs

    def pull_goals(self, name: str) -> OkrSet:
        """The OKRs a goal-system connection holds (``GoalSource``), owners as person ids."""
        conn = self.connector(name)
        if not isinstance(conn, GoalSource):
            raise ConfigError(f"connection {name!r} ({conn.config.type}) cannot read goals (no pull_goals)")
        return conn.pull_goals()

    def _update_metrics(
        self, job: JobConfig, okrs: OkrSet, hierarchy: Hierarchy, report: RunReport
    ) -> OkrSet:
        """Key results whose ``data_source`` a metric source understands get their current value."""
        for name in job.metric_sources:
            conn = self.connector(name)
            update = getattr(conn, "update_key_results", None)
            if update is None:
                raise ConfigError(
                    f"connection {name!r} ({conn.config.type}) cannot compute key-result metrics"
                )
            okrs, results = update(okrs, hierarchy, self.state)
            report.metrics += [{"source": name, **r} for r in results]
        return okrs

    def _push_goals(
        self, run_id: int, job: JobConfig, okrs: OkrSet, prepared: PreparedRun, report: RunReport
    ) -> None:
        """Push objectives and key results; ids the targets assign are kept in state per target."""
        okrs = self._update_metrics(job, okrs, prepared.hierarchy, report)
        for name in job.goal_targets:
            conn = self.connector(name)
            if not isinstance(conn, GoalTarget):
                raise ConfigError(f"connection {name!r} ({conn.config.type}) cannot receive goals")
            system = f"{name}#goals"
            id_map = self.state.get_id_map(system)
            extra = {"alignments": okrs.alignments} if _accepts(conn.push_goals, "alignments") else {}
            notices = getattr(conn, "notices", None)
            seen = len(notices) if isinstance(notices, list) else 0
            results = conn.push_goals(okrs.objectives, okrs.key_results, id_map, **extra)
            if isinstance(notices, list):  # e.g. SuccessFactors: alignments it cannot store
                report.notices += [f"goals → {name}: {n}" for n in notices[seen:]]
            new_ids = [(r.item_id, r.target_id) for r in results if r.ok and r.target_id]
            self.state.put_ids(system, [(i, t) for i, t in new_ids if id_map.get(i) != t])
            events = [
                RecordEvent(person_id=r.item_id, operation="goal", target=name, ok=r.ok, error=r.error)
                for r in results
                if r.written or not r.ok
            ]
            self.state.record_events(run_id, events)
            report.goals[name] = {
                "pushed": len(results),
                "written": sum(1 for r in results if r.written),
                "failed": [
                    {"id": r.item_id, "error": r.error or "unknown error"} for r in results if not r.ok
                ],
            }

    def learning_plan(
        self, job: JobConfig, hierarchy: Hierarchy, okrs: OkrSet | None = None
    ) -> tuple[OkrSet, LearningPlan]:
        """The job's OKRs (cascaded; ``okrs`` when the caller already has them) and the learning
        links they, the catalogue and the rules ask for."""
        from okrsync.learning import build_links, parse_rules
        from okrsync.okrs import load_catalogue, read_learning_rules

        if okrs is None:
            okrs = self.okrs_for(job, hierarchy)
        catalogue = (
            load_catalogue(self.config.resolve_path(job.learning_catalogue)) if job.learning_catalogue else []
        )
        file_rules = read_learning_rules(self.config.resolve_path(job.okrs)) if job.okrs else []
        raw_rules = [*file_rules, *job.learning_rules]
        return okrs, build_links(okrs, hierarchy, parse_rules(raw_rules), catalogue)

    def _push_learning(
        self, run_id: int, job: JobConfig, okrs: OkrSet, prepared: PreparedRun, report: RunReport
    ) -> None:
        """Push learning links; link id → target reference kept in state under ``{target}#learning``."""
        _, plan = self.learning_plan(job, prepared.hierarchy, okrs)
        for name in job.learning_targets:
            conn = self.connector(name)
            if not isinstance(conn, LearningTarget):
                raise ConfigError(f"connection {name!r} ({conn.config.type}) cannot receive learning links")
            system = f"{name}#learning"
            id_map = self.state.get_id_map(system)
            results = conn.push_learning(plan.items, plan.links, id_map)
            self.state.put_ids(
                system,
                [
                    (r.item_id, r.target_id)
                    for r in results
                    if r.ok and r.target_id and id_map.get(r.item_id) != r.target_id
                ],
            )
            removed = [
                r.item_id
                for r in results
                if r.ok and r.written and r.target_id is None and r.item_id in id_map
            ]
            if removed:
                self.state.delete_ids(system, removed)  # type: ignore[attr-defined]
            self.state.record_events(
                run_id,
                [
                    RecordEvent(
                        person_id=r.item_id, operation="learning", target=name, ok=r.ok, error=r.error
                    )
                    for r in results
                    if r.written or not r.ok
                ],
            )
            report.learning[name] = {
                "links": len(plan.links),
                "written": sum(1 for r in results if r.written),
                "removed": len(removed),
                "failed": [
                    {"id": r.item_id, "error": r.error or "unknown error"} for r in results if not r.ok
                ],
            }

    def _changed_snapshots(
        self, prepared: PreparedRun, applied: Mapping[str, list[Person]]
    ) -> dict[str, OrgSnapshot]:
        """Only snapshots that differ from the committed ones: a quiet night commits just the cursor."""
        taken = prepared.source.snapshot.taken_at
        out: dict[str, OrgSnapshot] = {}
        previous = prepared.source.previous
        if previous is None or previous.people != prepared.source.snapshot.people:
            out["source"] = prepared.source.snapshot
        for t, people in applied.items():
            if prepared.plans[t].ops or t in prepared.reconciled or not prepared.befores[t]:
                out[f"target:{t}"] = OrgSnapshot(source=t, taken_at=taken, people=tuple(people))
        return out

    def _http_stats(self, name: str) -> dict[str, int]:
        """HTTP requests/retries of a connection's connector so far (zeros before it exists)."""
        conn = self._connectors.get(name)
        return {"requests": 0, "retries": 0} if conn is None else http_stats(conn)

    def _fill_report(self, report: RunReport, prepared: PreparedRun) -> None:
        src = prepared.source
        report.mode = src.mode.value
        report.pulled = src.pulled
        report.people = len(prepared.desired)
        report.source_requests = src.requests
        report.quarantined = list(src.quarantined)
        report.notices += src.notices
        report.problems = [p.to_dict() for p in prepared.hierarchy.problems]
        for t, plan in prepared.plans.items():
            report.targets[t] = TargetReport(
                name=t, counts=plan.counts(), reconciled_from_target=t in prepared.reconciled
            )

    def _apply(self, run_id: int, name: str, prepared: PreparedRun, treport: TargetReport) -> list[Person]:
        """Apply one target's plan in batches; returns the people the target now holds (as far as we know)."""
        conn = self.connector(name)
        assert isinstance(conn, OrgTarget)
        plan = prepared.plans[name]
        now_held = dict(prepared.befores[name])
        id_map = self.state.get_id_map(name) if plan.ops else {}
        size = max(1, int(getattr(conn, "batch_size", 100)))
        done = 0
        for start in range(0, len(plan.ops), size):
            batch = plan.ops[start : start + size]
            results = conn.apply(batch, id_map)
            new_ids = [
                (r.op.person_id, r.target_id)
                for r in results
                if r.ok and r.target_id and id_map.get(r.op.person_id) != r.target_id
            ]
            if new_ids:
                self.state.put_ids(name, new_ids)
                id_map.update((pid, tid) for pid, tid in new_ids if tid)
            self.state.record_events(run_id, (_op_event(name, r) for r in results))
            for r in results:
                treport.retries += r.retries
                if r.ok:
                    treport.written += 1
                    _hold(now_held, r)
                else:
                    treport.failed.append(
                        {
                            "person_id": r.op.person_id,
                            "operation": r.op.kind.value,
                            "error": r.error or "unknown error",
                        }
                    )
            done += len(batch)
            self.progress(f"apply {name}", done, len(plan.ops))
            self.state.heartbeat(run_id)
        # people unchanged by the plan are held as desired; failed ones keep their old version
        failed = {f["person_id"] for f in treport.failed}
        for pid, person in prepared.desired.items():
            if pid not in failed:
                now_held[pid] = person
        return list(now_held.values())

    @contextmanager
    def _phase(self, report: RunReport, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("job %s: %s started", report.job, name)
        try:
            yield
        finally:
            report.phases[name] = round(time.perf_counter() - t0, 3)
            log.info("job %s: %s took %.2fs", report.job, name, report.phases[name])


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether a connector method takes an optional keyword (goal targets that can write alignment)."""
    return name in inspect.signature(fn).parameters


def _threshold(threshold: Threshold, population: int) -> int | None:
    if population == 0:
        return None  # a first load removes nothing
    return threshold.limit(population)


def _hold(held: dict[str, Person], r: OpResult) -> None:
    op = r.op
    if op.kind is OpKind.DELETE:
        held.pop(op.person_id, None)
    elif op.kind is OpKind.DISABLE:
        before = held.get(op.person_id) or op.person
        if before is not None:
            held[op.person_id] = before.model_copy(update={"status": PersonStatus.TERMINATED})
    elif op.person is not None:
        held[op.person_id] = op.person


def _map_record(raw: RawRecord, mapping: FieldMapping | None) -> tuple[Person | None, list[Quarantined]]:
    """Map one raw record; a failure becomes quarantine entries naming key, ref, field and reason."""
    if "__error__" in raw.data:
        where = raw.data.get("__field__")
        return None, [
            Quarantined(raw.key, raw.ref, str(where) if where else None, str(raw.data["__error__"]))
        ]
    try:
        data: Mapping[str, Any] = mapping.apply(raw.data) if mapping is not None else raw.data
        if not str(data.get("id") or "").strip():
            return None, [Quarantined(raw.key, raw.ref, "id", "missing id; the record cannot be identified")]
        return person_from_row(data, raw.ref), []  # it copies what it validates
    except MappingError as exc:
        return None, [Quarantined(raw.key, raw.ref, getattr(exc, "field", None), exc.message)]
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or None
            value = err.get("input")
            shown = f" (got {value!r:.80})" if loc and not isinstance(value, dict) else ""
            out.append(Quarantined(raw.key, raw.ref, loc, err["msg"].removeprefix("Value error, ") + shown))
        return None, out
    except FieldValueError as exc:
        return None, [Quarantined(raw.key, raw.ref, exc.field, exc.reason)]
    except (ValueError, TypeError) as exc:
        return None, [Quarantined(raw.key, raw.ref, None, str(exc))]


def _quarantine_events(quarantined: list[Quarantined], prepared: PreparedRun) -> Iterator[RecordEvent]:
    for q in quarantined:
        yield RecordEvent(
            person_id=q.key,
            operation="quarantine",
            target=None,
            ok=False,
            error=f"{q.reason} ({q.ref})" if q.ref else q.reason,
            field=q.field,
        )
    for p in prepared.hierarchy.problems:
        for pid in p.person_ids[:50]:
            yield RecordEvent(
                person_id=pid,
                operation=f"problem:{p.code.value}",
                target=None,
                ok=False,
                error=p.message + (f" → {p.resolution}" if p.resolution else ""),
                field=p.field,
            )


def _op_event(target: str, r: OpResult) -> RecordEvent:
    changes = {k: [_plain(v[0]), _plain(v[1])] for k, v in r.op.changes.items()}
    return RecordEvent(
        person_id=r.op.person_id,
        operation=r.op.kind.value,
        target=target,
        ok=r.ok,
        changes=changes,
        error=r.error,
        retries=r.retries,
    )


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
