"""Reorg impact: people moves and what they do to OKR alignments."""

from __future__ import annotations

import json
from typing import Any

from okrsync.hierarchy import build_hierarchy
from okrsync.models import AlignmentStatus, OkrSet, Person, PersonStatus
from okrsync.okrs import okrs_from_document
from okrsync.reorg import Move, SpanChange, mark_alignments, reorg_impact


def p(pid: str, manager: str | None = None, **extra: Any) -> Person:
    return Person(id=pid, manager_id=manager, **extra)


BEFORE = [
    p("ceo"),
    p("vp1", "ceo"),
    p("vp2", "ceo"),
    p("m1", "vp1"),
    p("m2", "vp2"),
    p("a", "m1"),
    p("b", "m1"),
    p("c", "m2"),
]


def after(**changes: dict[str, Any] | None) -> list[Person]:
    """BEFORE with per-person updates; ``None`` removes the person."""
    out = []
    for person in BEFORE:
        if person.id in changes:
            update = changes[person.id]
            if update is None:
                continue
            person = person.model_copy(update=update)
        out.append(person)
    return out


def okrs() -> OkrSet:
    def obj(oid: str, owner: str, parent: str | None = None, kind: str = "cascade") -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": oid,
            "title": f"Objective {oid}",
            "owner": owner,
            "key_results": [{"id": f"K-{oid}", "title": "kr"}],
        }
        if parent:
            d["aligns_to"] = [{"to": parent, "kind": kind}]
        return d

    return okrs_from_document(
        {
            "objectives": [
                obj("CEO", "ceo"),
                obj("VP1", "vp1", "K-CEO"),
                obj("VP2", "vp2", "K-CEO"),
                obj("M1", "m1", "K-VP1"),
                obj("M2", "m2", "K-VP2"),
                obj("A", "a", "K-M1"),
                obj("B", "b", "K-M1", kind="align"),
                obj("C", "c", "K-VP1", kind="align"),  # c aligns across to another org
                obj("X", "c", "K-M1", kind="related"),
                {"id": "U", "title": "unit goal", "owner": {"unit": "D-1"}, "aligns_to": ["K-CEO"]},
            ]
        }
    )


def impacts(report: Any) -> dict[str, Any]:
    return {a.child_id: a for a in report.alignments}


def test_identical_snapshots_report_nothing() -> None:
    report = reorg_impact(BEFORE, BEFORE, okrs())
    assert not report.has_changes
    assert report.to_dict()["summary"] == {
        "moved": 0,
        "joined": 0,
        "left": 0,
        "new_managers": 0,
        "removed_managers": 0,
        "span_changes": 0,
        "alignments": 0,
        "ownerless_objectives": 0,
    }


def test_moves_joiners_leavers_and_spans() -> None:
    new = [*after(a={"manager_id": "m2"}, b=None, c={"status": PersonStatus.TERMINATED}), p("d", "vp1")]
    report = reorg_impact(BEFORE, new)
    assert report.moved == [Move("a", "m1", "m2")]
    assert report.joined == ["d"]
    assert report.left == ["b", "c"]
    assert report.removed_managers == ["m1"]
    assert report.new_managers == []
    assert SpanChange("vp1", 1, 2) in report.span_changes
    assert report.alignments == []  # no OKRs given


def test_new_manager_and_accepts_hierarchies() -> None:
    new = after(b={"manager_id": "a"})
    report = reorg_impact(build_hierarchy(BEFORE), build_hierarchy(new))
    assert report.new_managers == ["a"]
    assert report.moved == [Move("b", "m1", "a")]
    assert SpanChange("m1", 2, 1) in report.span_changes


def test_child_owner_left_breaks_the_edge_and_suggests_a_new_owner() -> None:
    report = reorg_impact(BEFORE, after(a={"status": PersonStatus.TERMINATED}), okrs())
    impact = impacts(report)["A"]
    assert impact.status == "broken"
    assert impact.suggested_owner_id == "m1"
    assert "re-own A under nearest active manager m1" in impact.suggestion
    assert [(o.objective_id, o.suggested_owner_id) for o in report.ownerless_objectives] == [("A", "m1")]


def test_parent_owner_left_breaks_children_and_suggests_the_new_managers_objective() -> None:
    # m1 leaves; a and b are re-pointed to vp1 by the inactive-manager policy
    report = reorg_impact(BEFORE, after(m1={"status": PersonStatus.TERMINATED}), okrs())
    found = impacts(report)
    assert found["A"].status == "broken" and found["B"].status == "broken"
    assert found["A"].suggested_parent_id == "VP1"
    assert "align to the new manager's objective VP1" in found["A"].suggestion
    assert found["M1"].status == "broken"  # its own owner left
    assert found["X"].status == "broken"  # related edges still break when the parent's owner leaves


def test_moved_person_orphans_cascade_edges() -> None:
    report = reorg_impact(BEFORE, after(a={"manager_id": "m2"}), okrs())
    impact = impacts(report)["A"]
    assert impact.status == "orphaned"
    assert "a no longer reports into m1's organisation (now reports to m2)" in impact.reason
    assert impact.suggested_parent_id == "M2" and impact.suggested_owner_id == "m2"


def test_align_edges_are_flagged_only_when_they_were_inside_before() -> None:
    # b's bottom-up alignment to m1 was inside m1's org; c's alignment to vp1 never was
    report = reorg_impact(BEFORE, after(b={"manager_id": "m2"}, c={"manager_id": "m1"}), okrs())
    found = impacts(report)
    assert found["B"].status == "orphaned"
    assert "C" not in found  # c now reports into vp1's org: fine either way
    assert "X" not in found  # related edges are cross-functional by design


def test_no_objective_up_the_chain_suggests_asking_the_manager() -> None:
    plain = okrs_from_document(
        {
            "objectives": [
                {"id": "M1", "title": "m1", "owner": "m1", "key_results": [{"id": "K", "title": "k"}]},
                {"id": "A", "title": "a", "owner": "a", "aligns_to": [{"to": "K", "kind": "cascade"}]},
            ]
        }
    )
    report = reorg_impact(BEFORE, after(a={"manager_id": "m2"}), plain)
    impact = impacts(report)["A"]
    assert impact.suggested_parent_id is None
    assert impact.suggestion == "ask m2 to set an objective to align to, or remove the alignment"


def test_key_result_owner_wins_over_objective_owner() -> None:
    doc = {
        "objectives": [
            {
                "id": "M1",
                "title": "m1",
                "owner": "m1",
                "key_results": [{"id": "K", "title": "k", "owner": "b"}],
            },
            {"id": "A", "title": "a", "owner": "a", "aligns_to": [{"to": "K", "kind": "cascade"}]},
        ]
    }
    report = reorg_impact(BEFORE, after(b={"status": PersonStatus.TERMINATED}), okrs_from_document(doc))
    assert impacts(report)["A"].reason == "K is owned by b, who has left"


def test_unit_owned_objectives_are_ignored() -> None:
    report = reorg_impact(BEFORE, after(ceo={"display_name": "New"}, vp1=None), okrs())
    assert "U" not in impacts(report)


def test_report_is_json_able_and_marks_edges() -> None:
    goals = okrs()
    report = reorg_impact(BEFORE, after(a={"manager_id": "m2"}, b={"status": PersonStatus.TERMINATED}), goals)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"]["alignments"] == 2
    assert {a["child_id"]: a["status"] for a in data["alignments"]} == {"A": "orphaned", "B": "broken"}
    marked = mark_alignments(goals, report)
    statuses = {e.child_id: e.status for e in marked.alignments}
    assert statuses["A"] is AlignmentStatus.ORPHANED and statuses["B"] is AlignmentStatus.BROKEN
    assert statuses["M1"] is AlignmentStatus.ACTIVE
