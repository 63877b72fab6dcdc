"""``okrsync org check|chart|impact`` and ``okrsync cascade``: thin click wrappers over the library.

Everything here is parsing options, reading files and printing; the logic lives in
:mod:`okrsync.hierarchy`, :mod:`okrsync.okrs`, :mod:`okrsync.cascade`, :mod:`okrsync.reorg` and
:mod:`okrsync.render`, so it can be tested and embedded without click. Exit codes follow
:mod:`okrsync.errors`: 0 clean, 2 bad input/configuration, 4 problems found.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from okrsync.cascade import CascadeOptions
from okrsync.cascade import cascade as generate_cascade
from okrsync.errors import ConfigError, HierarchyError, OkrSyncError, RecordsFailed, redact_text
from okrsync.hierarchy import Hierarchy, HierarchyPolicy, build_hierarchy
from okrsync.io import read_people
from okrsync.models import ObjectiveLevel
from okrsync.okrs import dump_okrs, load_okrs, validate_okrs
from okrsync.render import alignment_html, orgchart_html, to_dot, to_mermaid
from okrsync.reorg import reorg_impact

__all__ = ["cascade_cmd", "cascade_command", "org", "parse_policy"]

PROBLEMS_EXIT = RecordsFailed.exit_code  # 4: the run finished and found problems
_F = TypeVar("_F", bound=Callable[..., Any])

_people_option = click.option(
    "--people",
    "people_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="People file: CSV or JSONL with canonical Person field names.",
)
_policy_option = click.option(
    "--policy",
    "policy_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hierarchy policy, repeatable: inactive_manager=nearest_active|fallback:<id>|none|keep, "
    "out_of_scope_manager=..., cycles=break|stop, dangling=none|fallback:<id>.",
)


def _errors_to_exit(func: _F) -> _F:
    """Print an :class:`OkrSyncError` as one readable message and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OkrSyncError as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            raise click.exceptions.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def parse_policy(items: Sequence[str]) -> HierarchyPolicy:
    """``("cycles=stop", "inactive_manager=none")`` -> :class:`HierarchyPolicy` (ConfigError if bad)."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--policy {item!r}: expected KEY=VALUE, e.g. cycles=stop")
        values[key.strip()] = value.strip()
    return HierarchyPolicy.parse(values)


def _hierarchy(people_path: Path, policy_items: Sequence[str]) -> Hierarchy:
    policy = parse_policy(policy_items)
    return build_hierarchy(read_people(people_path), policy)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


@click.group("org")
def org() -> None:
    """Check, draw and compare the management hierarchy."""


@org.command("check")
@_people_option
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@_errors_to_exit
def check(people_path: Path, policy_items: tuple[str, ...], as_json: bool) -> None:
    """Validate reporting lines; exit 4 when problems were found."""
    h = _hierarchy(people_path, policy_items)
    report = h.report()
    if as_json:
        _echo_json(report)
    else:
        click.echo(
            f"{report['people']} people, {len(report['roots'])} root(s), max depth {report['max_depth']}, "
            f"{len(h.problems)} problem(s)"
        )
        if h.problems:
            rows = [
                (str(p.code), ", ".join(p.person_ids[:4]) + (" …" if len(p.person_ids) > 4 else ""), p)
                for p in h.problems
            ]
            width_code = max(len("CODE"), *(len(r[0]) for r in rows))
            width_people = min(32, max(len("PEOPLE"), *(len(r[1]) for r in rows)))
            click.echo(f"{'CODE':<{width_code}}  {'PEOPLE':<{width_people}}  MESSAGE")
            for code, who, problem in rows:
                click.echo(f"{code:<{width_code}}  {who:<{width_people}}  {problem.message}")
                if problem.resolution:
                    click.echo(f"{'':<{width_code}}  {'':<{width_people}}  -> {problem.resolution}")
    if h.problems:
        raise click.exceptions.Exit(PROBLEMS_EXIT)


@org.command("chart")
@_people_option
@_policy_option
@click.option(
    "--format", "fmt", type=click.Choice(["html", "mermaid", "dot"]), default="html", show_default=True
)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default: stdout)."
)
@click.option("--title", default="Org chart", show_default=True, help="Page / graph title.")
@_errors_to_exit
def chart(people_path: Path, policy_items: tuple[str, ...], fmt: str, out: Path | None, title: str) -> None:
    """Draw the org chart as self-contained HTML, Mermaid or Graphviz DOT."""
    h = _hierarchy(people_path, policy_items)
    if fmt == "html":
        text = orgchart_html(h, title=title)
    elif fmt == "mermaid":
        text = to_mermaid(h)
    else:
        text = to_dot(h, name=title)
    if out is None:
        click.echo(text, nl=False)
    else:
        _write(out, text)
        click.echo(f"wrote {fmt} org chart of {len(h.people)} people to {out}", err=True)


@org.command("impact")
@click.option(
    "--before", "before_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--after", "after_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--okrs", "okrs_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@_errors_to_exit
def impact(
    before_path: Path, after_path: Path, okrs_path: Path | None, policy_items: tuple[str, ...], as_json: bool
) -> None:
    """Compare two people files: moves, joiners, leavers, spans and broken/orphaned alignments."""
    policy = parse_policy(policy_items)
    okrs = load_okrs(okrs_path) if okrs_path else None
    report = reorg_impact(
        build_hierarchy(read_people(before_path), policy),
        build_hierarchy(read_people(after_path), policy),
        okrs,
    )
    if as_json:
        _echo_json(report.to_dict())
        return
    summary = report.to_dict()["summary"]
    click.echo(", ".join(f"{n} {key.replace('_', ' ')}" for key, n in summary.items()))
    for move in report.moved:
        click.echo(f"moved   {move.person_id}: {move.old_manager_id or '-'} -> {move.new_manager_id or '-'}")
    for a in report.alignments:
        click.echo(f"{a.status:<8}{a.child_id} -> {a.parent_id}: {a.reason}; {a.suggestion}")


@click.command("cascade")
@_people_option
@click.option(
    "--okrs",
    "okrs_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="OKR file (.yaml, .toml or .json) with the company/department objectives.",
)
@_policy_option
@click.option(
    "--depth", default=2, show_default=True, type=click.IntRange(min=0), help="Levels below the owner."
)
@click.option("--mode", type=click.Choice(["individual", "team"]), default="individual", show_default=True)
@click.option(
    "--title-template",
    default="{kr_title}",
    show_default=True,
    help="Title of generated objectives: {kr_title} {owner_name} {parent_title} {kr_id} {owner_id}.",
)
@click.option(
    "--share",
    type=click.Choice(["equal", "none"]),
    default="equal",
    show_default=True,
    help="Split additive KR targets evenly between recipients, or copy them.",
)
@click.option("--no-individuals", is_flag=True, help="Only people with reports get goals.")
@click.option("--include-contingent", is_flag=True, help="Give goals to contingent workers too.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the resulting OKR set (.json, .yaml or .yml).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the alignment view as a self-contained HTML page.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_errors_to_exit
def cascade_cmd(
    people_path: Path,
    okrs_path: Path,
    policy_items: tuple[str, ...],
    depth: int,
    mode: str,
    title_template: str,
    share: str,
    no_individuals: bool,
    include_contingent: bool,
    out: Path | None,
    html_out: Path | None,
    as_json: bool,
) -> None:
    """Generate the manager cascade of OKRs; exit 4 when the result has problems."""
    h = _hierarchy(people_path, policy_items)
    if h.has_blocking_problems:
        raise HierarchyError(
            "the hierarchy has reporting loops and the cycles policy is 'stop'; run 'okrsync org check'"
        )
    okrs = load_okrs(okrs_path)
    levels = {ObjectiveLevel.TEAM} if no_individuals else {ObjectiveLevel.TEAM, ObjectiveLevel.INDIVIDUAL}
    try:
        options = CascadeOptions(
            depth=depth,
            mode="team" if mode == "team" else "individual",
            levels=frozenset(levels),
            title_template=title_template,
            share="none" if share == "none" else "equal",
            skip_contingent=not include_contingent,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    result = generate_cascade(okrs, h, options)
    problems = validate_okrs(result.okrs, known_people=set(h.people))
    if out is not None:
        dump_okrs(result.okrs, out)
    if html_out is not None:
        _write(
            html_out,
            alignment_html(result.okrs, h.people, problems=problems, title=f"OKR cascade: {okrs_path.name}"),
        )
    summary = result.to_dict()
    summary["hierarchy_problems"] = len(h.problems)
    summary["problems"] = [p.to_dict() for p in problems]
    if as_json:
        _echo_json(summary)
    else:
        click.echo(
            f"generated {result.generated} objective(s); {len(result.okrs.objectives)} objectives, "
            f"{len(result.okrs.alignments)} alignments in total; {len(result.skipped)} skip(s); "
            f"{len(problems)} problem(s)"
        )
        for person_id, reason in result.skipped[:20]:
            click.echo(f"skipped {person_id}: {reason}")
        if len(result.skipped) > 20:
            click.echo(f"... and {len(result.skipped) - 20} more skips (see --json)")
        for p in problems:
            click.echo(f"{p.code.value}: {p.item_id} {p.field}: {p.message}")
    if problems:
        raise click.exceptions.Exit(PROBLEMS_EXIT)


# the name tests and embedders import; ``cascade_cmd`` is what okrsync.cli registers as "cascade"
cascade_command = cascade_cmd
