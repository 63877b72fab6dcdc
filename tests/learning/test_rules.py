"""Pure rules: audiences, inheritance through the cascade, one link per learner and item, stable ids."""

from __future__ import annotations

from datetime import date

import pytest

from okrsync.errors import ConfigError
from okrsync.hierarchy import build_hierarchy
from okrsync.learning import (
    LearningRule,
    LinkStatus,
    apply_evidence,
    build_links,
    catalogue_from_document,
    link_id,
    parse_rules,
    summarise,
    with_status,
)
from okrsync.models import LearningStatus, Person
from okrsync.okrs import okrs_from_document

PEOPLE = [
    Person(id="1"),
    Person(id="2", manager_id="1"),
    Person(id="3", manager_id="2"),
    Person(id="4", manager_id="1"),
]
DOC = {
    "cycle": {"id": "C", "name": "C", "start": "2025-01-01", "end": "2025-06-30"},
    "objectives": [
        {
            "id": "O1",
            "title": "Sell",
            "owner": "1",
            "level": "company",
            "key_results": [
                {"id": "K1", "title": "Deals", "tags": ["skill:Negotiation", "measure:learning"]},
                {"id": "K2", "title": "More deals", "tags": ["skill:negotiation"]},
            ],
        },
    ],
    "learning_links": [{"item_id": "I2", "learner_id": "4", "key_result_id": "K1", "objective_id": "O1"}],
}
ITEMS = catalogue_from_document(
    [
        {"provider": "p", "external_id": "I1", "title": "Neg", "skills": ["negotiation"]},
        {"provider": "p", "external_id": "I2", "title": "Other"},
    ]
)


def test_audiences_dedupe_and_stable_ids() -> None:
    okrs = okrs_from_document(DOC)
    h = build_hierarchy(PEOPLE)
    rules = [LearningRule(audience=("owner", "subtree"))]
    plan = build_links(okrs, h, rules, ITEMS)
    pairs = [(lk.learner_id, lk.item_id) for lk in plan.links]
    assert sorted(pairs) == [("1", "I1"), ("2", "I1"), ("3", "I1"), ("4", "I1"), ("4", "I2")]
    neg = next(lk for lk in plan.links if lk.learner_id == "1")
    assert neg.id == link_id("I1", "1", "O1", "K1") and neg.due == date(2025, 6, 30)
    assert "K1" in (neg.rationale or "") and "Also supports: key result K2" in (neg.rationale or "")
    assert build_links(okrs, h, rules, ITEMS).links == plan.links  # deterministic
    reports = build_links(okrs, h, [LearningRule(audience="reports")], ITEMS)
    assert sorted(lk.learner_id or "" for lk in reports.links if lk.item_id == "I1") == ["2", "4"]


def test_evidence_and_bad_rules() -> None:
    okrs = okrs_from_document(DOC)
    plan = build_links(okrs, build_hierarchy(PEOPLE), [LearningRule(key_results=("K1",))], ITEMS)
    done = {
        lk.id: LinkStatus(lk.id, LearningStatus.COMPLETED, 100) for lk in plan.links if lk.item_id == "I1"
    }
    ev = summarise(okrs, with_status(plan.links, done))
    k1 = next(e for e in ev if e.goal_id == "K1")
    assert (k1.assigned, k1.completed) == (2, 1)
    out = apply_evidence(okrs, ev)
    kr = next(k for k in out.key_results if k.id == "K1")
    assert "learning:1/2" in kr.tags and kr.current_value == 50
    with pytest.raises(ConfigError):
        parse_rules([{"audience": "everyone"}])
