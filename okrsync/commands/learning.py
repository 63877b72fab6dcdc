"""``okrsync learning status``: learning completion read back from the targets, per objective/KR.

The links are rebuilt exactly as the last sync pushed them (the job's OKR file, cascade,
catalogue and rules over the committed source snapshot: nothing is pulled from the HR source),
then each learning target is asked for their status: Viva Learning reads the learners' course
activities, an xAPI LRS the statements of each link's registration. ``--write-okrs FILE``
writes the evidence into a copy of the OKR set (see :func:`okrsync.learning.apply_evidence`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from okrsync.config import JobConfig
from okrsync.errors import ConfigError
from okrsync.hierarchy import Hierarchy, HierarchyPolicy, build_hierarchy
from okrsync.learning import LinkStatus, apply_evidence, summarise, with_status
from okrsync.models import LearningStatus

__all__ = ["learning", "learning_api", "learning_status"]

_RANK = {LearningStatus.NOT_STARTED: 0, LearningStatus.IN_PROGRESS: 1, LearningStatus.COMPLETED: 2}


def learning_api(conn: Any) -> Any:
    """What answers ``pull_learning_status`` for a connector (Entra delegates to Viva Learning)."""
    if callable(getattr(conn, "pull_learning_status", None)):
        return conn
    from okrsync.connectors.entra import EntraConnector

    if isinstance(conn, EntraConnector):
        from okrsync.connectors.entra.learning import viva

        return viva(conn)
    raise ConfigError(f"connection {conn.context.connection_name!r} cannot report learning status")


def _hierarchy(engine: Any, name: str, job: JobConfig) -> Hierarchy:
    snapshot = engine.state.get_snapshot(name, "source")
    if snapshot is None:
        raise ConfigError(f"job {name!r} has no committed snapshot yet: run `okrsync sync {name}` first")
    people = [p for p in snapshot.people if job.include_inactive or p.is_active]
    scope = job.scope.matches if (job.scope.include or job.scope.exclude) else None
    return build_hierarchy(people, HierarchyPolicy.parse(job.hierarchy_policy()), scope)


def learning_status(engine: Any, name: str, *, write_okrs: Path | None = None) -> dict[str, Any]:
    """Status per link, per target and per goal for one job (the library side of the command)."""
    from okrsync.okrs import dump_okrs

    job = engine.config.job(name)
    if not job.learning_targets:
        raise ConfigError(f"job {name!r} has no learning_targets")
    okrs, plan = engine.learning_plan(job, _hierarchy(engine, name, job))
    merged: dict[str, LinkStatus] = {}
    targets: dict[str, dict[str, int]] = {}
    for target in job.learning_targets:
        api = learning_api(engine.connector(target))
        found = api.pull_learning_status(plan.links, engine.state.get_id_map(f"{target}#learning"))
        counts = {s.value: 0 for s in LearningStatus}
        for st in found.values():
            counts[st.status.value] += 1
            best = merged.get(st.link_id)
            if best is None or (_RANK[st.status], st.completion) > (_RANK[best.status], best.completion):
                merged[st.link_id] = st
        counts["unknown"] = len(plan.links) - len(found)
        targets[target] = counts
    links = with_status(plan.links, merged)
    evidence = summarise(okrs, links)
    if write_okrs is not None:
        dump_okrs(apply_evidence(okrs, evidence), write_okrs)
    return {
        "job": name,
        "links": len(links),
        "targets": targets,
        "goals": [e.to_dict() for e in evidence],
        "by_link": {st.link_id: st.to_dict() for st in merged.values()},
    }


@click.group("learning")
def learning() -> None:
    """Learning links: completion evidence behind objectives and key results."""


@learning.command("status")
@click.option("--job", "job_name", help="Only this job (default: every job with learning_targets).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (includes every link).")
@click.option(
    "--write-okrs",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the OKR set with the evidence (KR tags / current_value) to this .yaml/.json file.",
)
@click.pass_obj
def status_cmd(obj: Any, job_name: str | None, as_json: bool, write_okrs: Path | None) -> None:
    """Completion per objective and key result, read back from the learning targets."""
    from okrsync.engine import SyncEngine

    config = obj.config()
    names = [job_name] if job_name else [n for n, j in config.jobs.items() if j.learning_targets]
    if not names:
        raise ConfigError("no job has learning_targets")
    engine = SyncEngine(config, obj.state())
    try:
        out = [learning_status(engine, n, write_okrs=write_okrs) for n in names]
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(out if len(out) > 1 else out[0], indent=2, ensure_ascii=False))
        return
    for res in out:
        click.echo(f"job {res['job']!r}: {res['links']} learning links")
        for target, counts in res["targets"].items():
            click.echo(
                f"  {target}: {counts['completed']} completed, {counts['inProgress']} in progress, "
                f"{counts['notStarted']} not started, {counts['unknown']} not found"
            )
        goals = res["goals"]
        if goals:
            width = max(len(g["id"]) for g in goals)
            click.echo(f"  {'GOAL':<{width}}  KIND        DONE/ALL  AVG%  TITLE")
            for g in goals[:200]:
                click.echo(
                    f"  {g['id']:<{width}}  {g['kind']:<10}  {g['completed']:>4}/{g['assigned']:<3}  "
                    f"{g['completion']:>4.0f}  {g['title'][:60]}"
                )
