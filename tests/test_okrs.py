"""OKR files: the friendly shape in and out, parse errors that point at the field, validation codes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from okrsync.models import AlignmentKind, NodeKind, OkrSet, OwnerKind
from okrsync.okrs import (
    OkrFileError,
    OkrProblemCode,
    dump_okrs,
    load_okrs,
    okrs_from_document,
    okrs_to_document,
    render_okrs,
    validate_okrs,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "okrs.yaml"


def doc(**extra: Any) -> dict[str, Any]:
    """A small valid document; keyword arguments replace top-level keys."""
    base: dict[str, Any] = {
        "cycle": {"id": "C1", "name": "H1", "start": "2025-01-01", "end": "2025-06-30"},
        "objectives": [
            {
                "id": "O1",
                "title": "Grow",
                "owner": "1",
                "level": "company",
                "key_results": [
                    {"id": "K1", "title": "ARR", "weight": 60},
                    {"id": "K2", "title": "NRR", "weight": 40},
                ],
            },
            {"id": "O2", "title": "Sell", "owner": "2", "aligns_to": ["K1"]},
        ],
    }
    base.update(extra)
    return base


def codes(okrs: OkrSet, **kwargs: Any) -> list[str]:
    return [p.code.value for p in validate_okrs(okrs, **kwargs)]


# ------------------------------------------------------------------------------------------- reading


def test_example_file_loads_and_is_valid() -> None:
    okrs = load_okrs(EXAMPLE)
    assert okrs.cycle is not None and okrs.cycle.id == "2025-H1"
    assert [o.id for o in okrs.objectives] == ["OBJ-GROW", "OBJ-TRUST", "OBJ-SALES-EMEA"]
    assert okrs.objectives[2].owner.kind is OwnerKind.ORG_UNIT
    assert validate_okrs(okrs, known_people={"1001"}, known_units={"D-SALES-EMEA"}) == []


def test_friendly_shape_maps_to_canonical_models() -> None:
    okrs = okrs_from_document(doc())
    assert [(k.id, k.objective_id) for k in okrs.key_results] == [("K1", "O1"), ("K2", "O1")]
    (edge,) = okrs.alignments
    assert (edge.child_id, edge.parent_id, edge.parent_kind, edge.kind) == (
        "O2",
        "K1",
        NodeKind.KEY_RESULT,
        AlignmentKind.ALIGN,
    )
    assert okrs.objectives[0].owner.id == "1" and okrs.objectives[0].owner.kind is OwnerKind.PERSON


def test_owner_shorthands_and_integer_ids() -> None:
    d = {
        "objectives": [
            {"id": 7, "title": "a", "owner": 1001},
            {"id": "B", "title": "b", "owner": {"unit": "D-1"}},
            {"id": "C", "title": "c", "owner": {"person": 42}},
            {"id": "D", "title": "d", "owner": {"kind": "org_unit", "id": "D-2"}},
        ]
    }
    okrs = okrs_from_document(d)
    assert [(o.id, o.owner.kind.value, o.owner.id) for o in okrs.objectives] == [
        ("7", "person", "1001"),
        ("B", "org_unit", "D-1"),
        ("C", "person", "42"),
        ("D", "org_unit", "D-2"),
    ]


def test_aligns_to_mapping_form_and_explicit_node() -> None:
    d = doc()
    d["objectives"][1]["aligns_to"] = [
        {"to": "K1", "kind": "cascade", "weight": 0.5, "generated_by": "rule-x"},
        {"id": "O1", "kind": "related"},
    ]
    okrs = okrs_from_document(d)
    first, second = okrs.alignments
    assert (first.kind, first.weight, first.generated_by, first.parent_kind) == (
        AlignmentKind.CASCADE,
        0.5,
        "rule-x",
        NodeKind.KEY_RESULT,
    )
    assert (second.parent_id, second.parent_kind, second.kind) == (
        "O1",
        NodeKind.OBJECTIVE,
        AlignmentKind.RELATED,
    )


def test_key_results_can_align_and_sit_at_top_level() -> None:
    d = doc(key_results=[{"id": "K9", "objective_id": "O2", "title": "x", "aligns_to": ["K2"]}])
    okrs = okrs_from_document(d)
    assert okrs.key_results[-1].objective_id == "O2"
    assert any(e.child_id == "K9" and e.child_kind is NodeKind.KEY_RESULT for e in okrs.alignments)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    okrs = load_okrs(EXAMPLE)
    out = tmp_path / f"okrs{suffix}"
    dump_okrs(okrs, out)
    assert load_okrs(out) == okrs


def test_toml_file_with_same_content(tmp_path: Path) -> None:
    path = tmp_path / "okrs.toml"
    path.write_text(
        """
[cycle]
id = "C1"
name = "H1"
start = 2025-01-01
end = 2025-06-30

[[objectives]]
id = "O1"
title = "Grow"
owner = "1"
level = "company"

[[objectives.key_results]]
id = "K1"
title = "ARR"
weight = 100

[[objectives]]
id = "O2"
title = "Sell"
owner = { unit = "D-S" }
aligns_to = ["K1"]
""",
        encoding="utf-8",
    )
    okrs = load_okrs(path)
    assert okrs.cycle is not None and okrs.cycle.start == date(2025, 1, 1)
    assert okrs.alignments[0].parent_kind is NodeKind.KEY_RESULT
    assert validate_okrs(okrs) == []


def test_canonical_model_dump_is_accepted_as_input() -> None:
    okrs = load_okrs(EXAMPLE)
    assert okrs_from_document(json.loads(okrs.model_dump_json())) == okrs


def test_dump_is_friendly_and_omits_defaults() -> None:
    text = render_okrs(okrs_from_document(doc()), "yaml")
    data = yaml.safe_load(text)
    o1, o2 = data["objectives"]
    assert o1["owner"] == "1" and "objective_id" not in o1["key_results"][0]
    assert o2["aligns_to"] == ["K1"]
    assert "status" not in o1 and "progress" not in o1


def test_dump_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(OkrFileError, match=r"\.toml"):
        dump_okrs(OkrSet(), tmp_path / "x.toml")


def test_edges_whose_child_is_missing_survive_a_round_trip() -> None:
    d = doc(alignments=[{"child_id": "GHOST", "parent_id": "K1", "kind": "related"}])
    okrs = okrs_from_document(d)
    again = okrs_from_document(okrs_to_document(okrs))
    assert again == okrs
    assert [p.code for p in validate_okrs(again)] == [OkrProblemCode.MISSING_ALIGNMENT_SOURCE]


# ------------------------------------------------------------------------------------ parse errors


def test_parse_error_names_file_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    d = doc()
    d["objectives"][0]["key_results"][1]["target_value"] = "lots"
    d["objectives"][1]["level"] = "galaxy"
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    with pytest.raises(OkrFileError) as info:
        load_okrs(path)
    err = info.value
    assert str(path) in str(err) and "2 problems" in str(err)
    assert any(
        "objectives[0] (id O1).key_results[1] (id K2): field 'target_value'" in p and "'lots'" in p
        for p in err.problems
    )
    assert any("objectives[1] (id O2): field 'level'" in p for p in err.problems)
    assert err.exit_code == 2


def test_missing_required_field_and_unknown_key_are_reported() -> None:
    d = doc()
    del d["objectives"][0]["title"]
    d["objectives"][1]["colour"] = "blue"
    with pytest.raises(OkrFileError) as info:
        okrs_from_document(d, source="okrs.yaml")
    text = "\n".join(info.value.problems)
    assert "objectives[0] (id O1): field 'title': Field required" in text
    assert "objectives[1] (id O2): field 'colour': Extra inputs are not permitted" in text


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (["not", "a", "mapping"], "top level must be a mapping"),
        ({"objective": []}, "unknown top-level key(s) objective"),
        ({"objectives": {"id": "x"}}, "objectives: must be a list"),
        ({"objectives": ["O1"]}, "objectives[0]: must be a mapping"),
        (
            {
                "objectives": [
                    {
                        "id": "O1",
                        "title": "t",
                        "owner": "1",
                        "key_results": [{"id": "K", "title": "k", "objective_id": "O9"}],
                    }
                ]
            },
            "is 'O9' but the key result is nested under 'O1'",
        ),
        (
            {"objectives": [{"id": "O1", "title": "t", "owner": "1", "aligns_to": [{"kind": "align"}]}]},
            "field 'to'",
        ),
        ({"alignments": [{"child_id": "a"}]}, "alignments[0] (a -> ?): field 'parent_id': Field required"),
    ],
)
def test_shape_errors(document: Any, needle: str) -> None:
    with pytest.raises(OkrFileError) as info:
        okrs_from_document(document, source="f.yaml")
    assert needle in str(info.value)


def test_syntax_errors_and_unsupported_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(OkrFileError, match=r"bad\.json: not valid JSON"):
        load_okrs(bad)
    other = tmp_path / "okrs.txt"
    other.write_text("", encoding="utf-8")
    with pytest.raises(OkrFileError, match="unsupported OKR file type"):
        load_okrs(other)
    with pytest.raises(OkrFileError, match="cannot read"):
        load_okrs(tmp_path / "missing.yaml")


def test_empty_file_is_an_empty_set(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_okrs(path) == OkrSet()


# -------------------------------------------------------------------------------------- validation


def test_valid_document_has_no_problems() -> None:
    assert validate_okrs(okrs_from_document(doc()), known_people={"1", "2"}) == []


def test_duplicate_ids() -> None:
    d = doc(
        key_results=[{"id": "O2", "objective_id": "O1", "title": "clash"}],
        learning_items=[
            {"id": "L", "provider": "p", "external_id": "1", "title": "t"},
            {"id": "L", "provider": "p", "external_id": "2", "title": "t"},
        ],
        alignments=[{"child_id": "O2", "parent_id": "K1", "parent_kind": "key_result"}],
    )
    d["objectives"][1]["weight"] = None
    problems = [p for p in validate_okrs(okrs_from_document(d)) if p.code is OkrProblemCode.DUPLICATE_ID]
    assert {p.item_id for p in problems} == {"O2", "L", "O2->K1"}


def test_unknown_owners_only_checked_against_given_sets() -> None:
    d = doc()
    d["objectives"][1]["owner"] = {"unit": "D-X"}
    d["objectives"][0]["key_results"][0]["owner"] = "99"
    d["learning_items"] = [{"id": "L", "provider": "p", "external_id": "1", "title": "t"}]
    d["learning_links"] = [{"id": "LL", "item_id": "L", "learner_id": "77"}]
    okrs = okrs_from_document(d)
    assert codes(okrs) == []
    problems = validate_okrs(okrs, known_people={"1"}, known_units={"D-Y"})
    assert [(p.code, p.item_id, p.field) for p in problems] == [
        (OkrProblemCode.UNKNOWN_OWNER, "O2", "owner"),
        (OkrProblemCode.UNKNOWN_OWNER, "K1", "owner"),
        (OkrProblemCode.UNKNOWN_OWNER, "LL", "learner_id"),
    ]


def test_alignment_cycle_reports_the_loop_in_order() -> None:
    d = {
        "objectives": [
            {
                "id": "A",
                "title": "a",
                "owner": "1",
                "aligns_to": ["KB"],
                "key_results": [{"id": "KA", "title": "x"}],
            },
            {
                "id": "B",
                "title": "b",
                "owner": "1",
                "aligns_to": ["KA"],
                "key_results": [{"id": "KB", "title": "y"}],
            },
            {"id": "C", "title": "c", "owner": "1", "aligns_to": ["C"]},
        ]
    }
    problems = [p for p in validate_okrs(okrs_from_document(d)) if p.code is OkrProblemCode.ALIGNMENT_CYCLE]
    messages = sorted(p.message for p in problems)
    assert len(problems) == 2
    assert any("A -> KB -> B -> KA -> A" in m for m in messages)
    assert any("C -> C" in m for m in messages)


def test_missing_objective_target_source_and_reference() -> None:
    d = doc(
        key_results=[{"id": "K9", "objective_id": "NOPE", "title": "x"}],
        alignments=[{"child_id": "O2", "parent_id": "NOWHERE"}],
        learning_items=[{"id": "L", "provider": "p", "external_id": "1", "title": "t"}],
        learning_links=[
            {"id": "LL1", "item_id": "MISSING"},
            {"id": "LL2", "item_id": "L", "objective_id": "O404", "key_result_id": "K404"},
        ],
    )
    problems = validate_okrs(okrs_from_document(d))
    got = {(p.code, p.item_id, p.field) for p in problems}
    assert (OkrProblemCode.MISSING_OBJECTIVE, "K9", "objective_id") in got
    assert (OkrProblemCode.MISSING_ALIGNMENT_TARGET, "O2->NOWHERE", "parent_id") in got
    assert (OkrProblemCode.MISSING_REFERENCE, "LL1", "item_id") in got
    assert (OkrProblemCode.MISSING_REFERENCE, "LL2", "objective_id") in got
    assert (OkrProblemCode.MISSING_REFERENCE, "LL2", "key_result_id") in got


def test_dates_outside_cycle_and_start_after_due() -> None:
    d = doc()
    d["objectives"][0].update(start="2024-12-01", due="2025-06-30")
    d["objectives"][1].update(start="2025-05-01", due="2025-04-01")
    d["learning_items"] = [{"id": "L", "provider": "p", "external_id": "1", "title": "t"}]
    d["learning_links"] = [{"id": "LL", "item_id": "L", "due": "2025-09-01"}]
    problems = validate_okrs(okrs_from_document(d))
    got = [(p.code, p.item_id, p.field) for p in problems]
    assert (OkrProblemCode.DATE_OUTSIDE_CYCLE, "O1", "start") in got
    assert (OkrProblemCode.START_AFTER_DUE, "O2", "start") in got
    assert (OkrProblemCode.DATE_OUTSIDE_CYCLE, "LL", "due") in got
    assert not any(p.item_id == "O1" and p.field == "due" for p in problems)


def test_unknown_cycle() -> None:
    d = doc()
    d["objectives"][1]["cycle_id"] = "C2"
    assert codes(okrs_from_document(d)) == ["unknown_cycle"]
    d.pop("cycle")
    assert codes(okrs_from_document(d)) == ["unknown_cycle"]


@pytest.mark.parametrize(
    ("weights", "ok"),
    [
        ((60, 40), True),
        ((0.6, 0.4), True),
        ((100,), True),
        ((1,), True),
        ((33.3333, 33.3333, 33.3334), True),
        ((60, 30), False),
        ((0.5, 0.4), False),
        ((60, None), False),
        ((None, None), True),
    ],
)
def test_key_result_weights_percent_or_fraction(weights: tuple[float | None, ...], ok: bool) -> None:
    krs = [{"id": f"K{i}", "title": "k", "weight": w} for i, w in enumerate(weights)]
    d = {"objectives": [{"id": "O", "title": "o", "owner": "1", "key_results": krs}]}
    problems = validate_okrs(okrs_from_document(d))
    assert (problems == []) is ok
    if not ok:
        assert problems[0].code is OkrProblemCode.WEIGHTS_DONT_SUM and problems[0].item_id == "O"


def test_weight_message_says_which_convention_was_detected() -> None:
    d = {
        "objectives": [
            {
                "id": "O",
                "title": "o",
                "owner": "1",
                "key_results": [
                    {"id": "K1", "title": "k", "weight": 0.5},
                    {"id": "K2", "title": "k", "weight": 0.2},
                ],
            }
        ]
    }
    (problem,) = validate_okrs(okrs_from_document(d))
    assert "sum to 0.7, expected 1 (fractions of 1.0)" in problem.message


def test_objective_weights_sum_per_owner() -> None:
    d = {
        "objectives": [
            {"id": "A", "title": "a", "owner": "1", "weight": 50},
            {"id": "B", "title": "b", "owner": "1", "weight": 30},
            {"id": "C", "title": "c", "owner": "2", "weight": 100},
        ]
    }
    problems = validate_okrs(okrs_from_document(d))
    assert [(p.code, p.item_id, p.field) for p in problems] == [
        (OkrProblemCode.WEIGHTS_DONT_SUM, "A", "weight")
    ]
    assert "owner person '1'" in problems[0].message


def test_problem_to_dict_is_json_able() -> None:
    d = doc(alignments=[{"child_id": "O2", "parent_id": "NOWHERE"}])
    (problem,) = validate_okrs(okrs_from_document(d))
    assert json.loads(json.dumps(problem.to_dict()))["code"] == "missing_alignment_target"
