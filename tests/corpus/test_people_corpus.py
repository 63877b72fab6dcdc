"""Hostile people files: each case names its refused records precisely and syncs the rest."""

from __future__ import annotations

import csv
import shutil
import tomllib
from pathlib import Path

import pytest

from okrsync.config import parse_config
from okrsync.engine import SyncEngine
from okrsync.io import read_people, write_people
from okrsync.state import open_state
from tests.reliability.summary import record

HERE = Path(__file__).parent
CASES = tomllib.loads((HERE / "expectations.toml").read_text(encoding="utf-8"))
FILES = {p.stem: p for p in (HERE / "people").iterdir()}


def test_every_case_has_a_file_and_every_file_a_case() -> None:
    assert set(CASES) == set(FILES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case: str, tmp_path: Path) -> None:
    expected = CASES[case]
    source = tmp_path / f"source{FILES[case].suffix}"
    shutil.copy(FILES[case], source)
    config = parse_config(
        {
            "connections": {
                "s": {"type": "files", "path": source.name},
                "t": {"type": "files", "path": "t.jsonl"},
            },
            "jobs": {"j": {"source": "s", "targets": ["t"]}},
        },
        base_dir=tmp_path,
    )
    state = open_state(str(tmp_path / "state.db"))
    try:
        report = SyncEngine(config, state).sync("j")
    finally:
        state.close()

    assert report.status == expected["status"], report.lines()
    synced = read_people(tmp_path / "t.jsonl") if (tmp_path / "t.jsonl").exists() else []
    assert sorted(p.id for p in synced) == sorted(expected["synced"]), "valid records sync, nothing is lost"
    got = [(q.key, q.field or "", q.reason) for q in report.quarantined]
    assert len(got) == len(expected.get("quarantined", [])), got
    for (key, field, fragment), (gkey, gfield, reason) in zip(
        expected.get("quarantined", []), got, strict=True
    ):
        assert key in ("*", gkey) and gfield == field and fragment in reason, (gkey, gfield, reason)
    problems = [(p["code"], p["person_ids"][0]) for p in report.problems]
    for code, first in expected.get("problems", []):
        assert (code, first) in problems, problems
    for pid, attrs in expected.get("attributes", {}).items():
        assert next(p for p in synced if p.id == pid).attributes == attrs

    if "csv_must_not_start_cells_with" in expected:  # the export a spreadsheet will open
        out = tmp_path / "export.csv"
        write_people(out, synced)
        with out.open(newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if c[:1] in expected["csv_must_not_start_cells_with"]]
    record("corpus_cases")  # counted into the reliability summary once the case has passed
