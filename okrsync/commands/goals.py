"""``okrsync goals pull CONNECTION --out FILE``: the OKRs a goal system holds, as an OKR file.

The file round-trips: it is what a job's ``okrs`` reads, so goals can move from SuccessFactors
or Workday into files (reviewed, versioned, edited) and from there into any goal target. A job
can also read them directly with ``goal_source`` instead of ``okrs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["goals"]


@click.group("goals")
def goals() -> None:
    """Goals in goal systems (SuccessFactors, Workday): read them out."""


@goals.command("pull")
@click.argument("connection")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the OKR set to this .yaml/.yml/.json file (what a job's okrs reads).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts (and --out) as JSON.")
@click.pass_obj
def pull_cmd(obj: Any, connection: str, out: Path | None, as_json: bool) -> None:
    """Read every objective and key result CONNECTION holds, owners as person ids."""
    from okrsync.engine import SyncEngine
    from okrsync.okrs import dump_okrs

    engine = SyncEngine(obj.config(), obj.state())
    try:
        okrs = engine.pull_goals(connection)
    finally:
        engine.close()
    if out is not None:
        dump_okrs(okrs, out)
    owners = {o.owner.id for o in okrs.objectives}
    summary = {
        "connection": connection,
        "objectives": len(okrs.objectives),
        "keyResults": len(okrs.key_results),
        "alignments": len(okrs.alignments),
        "owners": len(owners),
        "out": str(out) if out else None,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"{connection}: {summary['objectives']} objectives, {summary['keyResults']} key results "
        f"of {summary['owners']} owners" + (f" → {out}" if out else "")
    )
