"""Learning links → Viva Learning on the Graph emulator, through a real engine job (1,000 people)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from okrsync.cascade import CascadeOptions, cascade
from okrsync.config import parse_config
from okrsync.connectors.entra.learning import EXT_ID
from okrsync.engine import SyncEngine
from okrsync.hierarchy import build_hierarchy
from okrsync.io import write_people
from okrsync.okrs import load_okrs
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.sandbox.graph import GraphEmulator
from okrsync.state import open_state

Start = Callable[..., RunningEmulator]
PROVIDER = "okrsync-sandbox"


def write_files(tmp: Path, ceo: str, extra_learner: str | None) -> None:
    okrs: dict[str, Any] = {
        "cycle": {"id": "2025-H1", "name": "H1 2025", "start": "2025-01-01", "end": "2025-06-30"},
        "objectives": [
            {
                "id": "OBJ-1",
                "title": "Win bigger deals",
                "owner": ceo,
                "level": "company",
                "key_results": [
                    {
                        "id": "KR-1",
                        "title": "Close 40 enterprise deals",
                        "target_value": 40,
                        "tags": ["skill:negotiation"],
                    }
                ],
            }
        ],
    }
    if extra_learner:
        okrs["learning_links"] = [
            {
                "item_id": "LI-PRICING",
                "learner_id": extra_learner,
                "objective_id": "OBJ-1",
                "key_result_id": "KR-1",
            }
        ]
    (tmp / "okrs.yaml").write_text(yaml.safe_dump(okrs))
    catalogue = [
        {
            "id": "LI-NEG-1",
            "provider": PROVIDER,
            "external_id": "NEG-101",
            "title": "Negotiation basics",
            "url": "https://learn.example.com/neg-101",
            "skills": ["Negotiation"],
            "duration": "PT45M",
        },
        {
            "id": "LI-NEG-2",
            "provider": PROVIDER,
            "external_id": "NEG-201",
            "title": "Negotiating enterprise deals",
            "url": "https://learn.example.com/neg-201",
            "skills": ["negotiation"],
            "duration": "PT2H",
        },
        {
            "id": "LI-PRICING",
            "provider": PROVIDER,
            "external_id": "PRC-1",
            "title": "Value pricing",
            "url": "https://learn.example.com/prc-1",
        },
    ]
    (tmp / "catalogue.yaml").write_text(yaml.safe_dump({"learning_items": catalogue}))


def test_cascade_links_to_viva_learning_are_idempotent_and_removable(
    start_emulator: Start, tmp_path: Path
) -> None:
    org = SandboxOrg(1000, seed=1)
    run = start_emulator("entra", org=org, directory="same")
    emulator = run.emulator
    assert isinstance(emulator, GraphEmulator)
    people = org.expected_people()
    write_people(tmp_path / "people.jsonl", people)
    ceo = next(p.id for p in people if p.manager_id is None)
    extra = next(p.id for p in people if p.manager_id is not None and p.is_active)
    write_files(tmp_path, ceo, extra)
    data = {
        "state": {"path": str(tmp_path / "state.db")},
        "connections": {"hr": {"type": "files", "path": "people.jsonl"}, "entra": run.connection()},
        "jobs": {
            "learn": {
                "source": "hr",
                "okrs": "okrs.yaml",
                "cascade_depth": 3,
                "learning_targets": ["entra"],
                "learning_catalogue": "catalogue.yaml",
                "learning_rules": [
                    {"name": "negotiation", "audience": "owner", "assignment_type": "required"}
                ],
            }
        },
    }
    state = open_state(str(tmp_path / "state.db"))

    def sync() -> dict[str, Any]:
        engine = SyncEngine(parse_config(data, base_dir=tmp_path), state)
        try:
            return engine.sync("learn").to_dict()
        finally:
            engine.close()

    activities = emulator.learning.activities[emulator.learning.sandbox_provider_id]
    # expected learners: the owners of KR-1 and of every KR the 3-level cascade made from it
    h = build_hierarchy(people)
    cascaded = cascade(load_okrs(tmp_path / "okrs.yaml"), h, CascadeOptions(depth=3)).okrs
    owners = {(kr.owner.id if kr.owner else ceo) for kr in cascaded.key_results}
    assert len(owners) > 200

    first = sync()
    assert first["status"] == "ok", first
    got = first["learning"]["entra"]
    assert not got["failed"]
    assert got["links"] == 2 * len(owners) + 1
    assert len(activities) == got["links"]
    pairs = {(a["learnerUserId"], a["learningContentId"]) for a in activities.values()}
    assert len(pairs) == len(activities)  # one assignment per learner and item
    contents = emulator.learning.contents[emulator.learning.sandbox_provider_id]
    assert {c["externalId"] for c in contents.values()} == {"NEG-101", "NEG-201", "PRC-1"}
    for a in activities.values():
        assert a["@odata.type"] == "#microsoft.graph.learningAssignment"
        assert a[EXT_ID].startswith("okrsync-LL-")
        assert "objective OBJ-1" in a["notes"]["content"] or "Objective CAS-" in a["notes"]["content"]
        assert "key result" in a["notes"]["content"]
        assert a["dueDateTime"] == {"dateTime": "2025-06-30T00:00:00", "timeZone": "UTC"}
    assert got["written"] == len(activities) + 3  # activities + three contents

    before = copy.deepcopy((activities, contents))
    second = sync()
    assert second["learning"]["entra"]["written"] == 0, second["learning"]
    assert second["status"] == "no_change"
    assert (activities, contents) == before  # nothing patched, posted or re-upserted
    assert len(activities) == got["links"]

    write_files(tmp_path, ceo, None)  # the explicit link goes away
    third = sync()
    assert third["learning"]["entra"]["removed"] == 1 and third["learning"]["entra"]["written"] == 1
    assert len(activities) == got["links"] - 1
    extra_oid = emulator.directory.live(extra)
    assert extra_oid is None or not any(
        a["learnerUserId"] == extra_oid.id and "PRC" in str(a["learningContentId"])
        for a in activities.values()
    )
    print(f"\nviva: {got['links']} links; first run wrote {got['written']}, second 0, third removed 1")

    # the provider reports progress on two assignments; `learning status` reads it back from Viva
    from okrsync.commands.learning import learning_status

    done, started = sorted(activities.values(), key=lambda a: a[EXT_ID])[:2]
    done.update(status="completed", completionPercentage=100, completedDateTime="2025-03-01T10:00:00Z")
    started.update(status="inProgress", completionPercentage=40)
    engine = SyncEngine(parse_config(data, base_dir=tmp_path), state)
    try:
        status = learning_status(engine, "learn")
    finally:
        engine.close()
    counts = status["targets"]["entra"]
    assert (counts["completed"], counts["inProgress"]) == (1, 1), counts
    assert counts["notStarted"] == len(activities) - 2 and counts["unknown"] == 0
    (finished,) = [v for v in status["by_link"].values() if v["status"] == "completed"]
    assert (finished["completion"], finished["completed_at"]) == (100.0, "2025-03-01T10:00:00Z")
    assert done[EXT_ID] == f"okrsync-{finished['link_id']}"  # the activity the provider finished
    assert sum(g["completed"] for g in status["goals"]) >= 1
