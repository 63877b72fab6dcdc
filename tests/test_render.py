"""Org chart and alignment rendering: Mermaid, DOT, and the self-contained HTML pages."""

from __future__ import annotations

import json
import re
from typing import Any

from okrsync.cascade import CascadeOptions, cascade
from okrsync.hierarchy import Hierarchy, build_hierarchy
from okrsync.models import Person, PersonStatus
from okrsync.okrs import okrs_from_document
from okrsync.render import alignment_data, alignment_html, orgchart_data, orgchart_html, to_dot, to_mermaid
from okrsync.render._page import embed_json, problem_tops

EVIL = '</script><script>alert("x")</script><!-- &amp; \u2028'


def p(pid: str, manager: str | None = None, **extra: Any) -> Person:
    return Person(id=pid, manager_id=manager, **extra)


def org() -> Hierarchy:
    """ceo -> m (-> a, b), x; a loop l1 -> l2 -> l3 -> l1; d reports to a ghost; t terminated."""
    return build_hierarchy(
        [
            p("ceo", display_name="The CEO", title="Chief"),
            p("m", "ceo", display_name=EVIL, email="m@example.com", additional_manager_ids=("x",)),
            p("a", "m", given_name="Ann", family_name="Lee"),
            p("b", "m", email="b@example.com"),
            p("x", "ceo"),
            p("l1", "l2"),
            p("l2", "l3"),
            p("l3", "l1"),
            p("d", "ghost"),
            p("t", "ceo", status=PersonStatus.TERMINATED),
        ]
    )


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="okrsync-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def node_by_main(data: dict[str, Any], main: str) -> int:
    return next(i for i, n in enumerate(data["nodes"]) if n[1] == main)


# ------------------------------------------------------------------------------------------- HTML


def test_html_is_self_contained_and_names_cannot_break_out() -> None:
    page = orgchart_html(org(), title='Acme <b>"Org"</b>')
    assert page.count("<script") == 2  # the JSON data block and the page script, nothing else
    block = page.split('id="okrsync-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and "\\u003c/script\\u003e" in block
    assert "</script><script>alert" not in page
    assert "<!--" not in page.split("<body>", 1)[1]
    assert "<title>Acme &lt;b&gt;&quot;Org&quot;&lt;/b&gt;</title>" in page
    assert not re.search(r"\s(src|href)=", page)  # nothing to fetch
    assert "default-src 'none'" in page
    assert "innerHTML" not in page and "textContent" in page
    data = embedded(page)
    assert data["title"] == 'Acme <b>"Org"</b>'
    assert data["nodes"][node_by_main(data, EVIL)][1] == EVIL


def test_embed_json_escapes_everything_that_ends_a_script() -> None:
    text = embed_json({"v": EVIL})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"v": EVIL}


def test_orgchart_tree_counts_and_badges() -> None:
    data = orgchart_data(org()).to_json()
    ceo, m, a = (node_by_main(data, n) for n in ("The CEO", EVIL, "Ann Lee"))
    assert data["roots"][0] == ceo
    assert data["nodes"][ceo][3] == "3 direct · 5 total"  # m, x, t; plus a, b below m
    assert data["nodes"][m][3] == "2 direct · 2 total"
    assert data["nodes"][m][5] == "m · m@example.com"
    assert data["parent"][a] == m
    assert sorted(data["children"][str(m)]) == sorted([a, node_by_main(data, "b@example.com")])
    badges = {data["nodes"][i][1]: [b[1] for b in data["nodes"][i][4]] for i in range(len(data["nodes"]))}
    assert badges["The CEO"] == []  # the real top is not an "extra root"
    assert badges["d"] == ["manager missing"]
    assert badges["t"] == ["terminated"]
    assert badges["l1"] == badges["l2"] == badges["l3"] == ["cycle"]


def test_cycle_members_are_shown_apart_under_problems() -> None:
    data = orgchart_data(org()).to_json()
    l1 = node_by_main(data, "l1")
    assert l1 in data["problemRoots"] and l1 not in data["roots"]
    assert "3 people not reachable" in data["problemRootsTitle"]
    # the rest of the loop hangs below the member where it was cut, so it can be expanded
    below = data["children"][str(l1)]
    assert [data["nodes"][i][1] for i in below] == ["l3"]
    cycle = next(pr for pr in data["problems"] if pr["code"] == "cycle")
    assert sorted(data["nodes"][i][1] for i in cycle["nodes"]) == ["l1", "l2", "l3"]
    assert "3 not reachable from a root" in data["summary"]


def test_problem_tops_cover_every_unreachable_node() -> None:
    # 0 -> 1 -> 2 -> 0 is a loop nobody flagged; 3 hangs below 1; 4 is a flagged dead end
    parent = [2, 0, 1, 1, -1]
    tops = problem_tops([0, 1, 2, 3, 4], parent, preferred=set())
    assert 4 in tops and len(set(tops) & {0, 1, 2}) == 1
    assert problem_tops([0, 1, 2, 3], parent, preferred={1}) == [1]


def test_alignment_view_shows_objectives_key_results_and_rules() -> None:
    okrs = okrs_from_document(
        {
            "objectives": [
                {
                    "id": "O1",
                    "title": "Grow",
                    "owner": "ceo",
                    "level": "company",
                    "key_results": [{"id": "K1", "title": "ARR", "unit": "EUR", "target_value": 10}],
                },
                {"id": "L1", "title": "Loop 1", "owner": "x", "aligns_to": ["L2"]},
                {"id": "L2", "title": "Loop 2", "owner": "x", "aligns_to": ["L1"]},
            ]
        }
    )
    h = org()
    result = cascade(okrs, h, CascadeOptions(depth=2, title_template="Contribute to: {kr_title}")).okrs
    data = alignment_data(result, h.people).to_json()
    o1, k1 = node_by_main(data, "Grow"), node_by_main(data, "ARR")
    assert data["nodes"][k1][0] == "kr" and data["nodes"][k1][3] == "number: 0 → 10 EUR"
    assert data["parent"][k1] == o1 and o1 in data["roots"]
    children = [data["nodes"][i] for i in data["children"][str(k1)]]
    assert {c[2] for c in children} == {EVIL, "x"}  # owner names of the generated objectives
    assert all(["generated", "cascade:kr-to-reports@depth1"] in c[4] for c in children)
    loop = {node_by_main(data, "Loop 1"), node_by_main(data, "Loop 2")}
    assert set(data["problemRoots"]) & loop and not set(data["roots"]) & loop
    assert any(pr["code"] == "alignment-cycle" for pr in data["problems"])
    page = alignment_html(result, h.people)
    assert "</script><script>alert" not in page and embedded(page)["summary"].startswith(
        "7 objectives (4 generated)"
    )


# --------------------------------------------------------------------------------- Mermaid, DOT


def test_mermaid() -> None:
    text = to_mermaid(org())
    lines = text.splitlines()
    assert lines[0] == "graph TD"
    ids = {m.group(2): m.group(1) for m in re.finditer(r'^\s+(p\d+)\["([^<"]*)', text, re.M)}
    assert f"    {ids['The CEO']} --> {ids['Ann Lee']}" not in lines
    assert any(line.strip().endswith(f"--> {ids['Ann Lee']}") for line in lines)
    assert any("-.->" in line for line in lines)  # m's dotted line to x
    assert "classDef problem" in text and re.search(r"^\s+class p\d+(,p\d+)* problem$", text, re.M)
    assert "</script>" not in text and '"x"' not in text.split("graph TD", 1)[1].replace('["x"]', "")
    assert "#lt;/script#gt;" in text and "#quot;x#quot;" in text
    assert len(to_mermaid(org(), max_people=3).splitlines()) < len(lines)


def test_dot() -> None:
    text = to_dot(org(), name='my "org"')
    assert text.startswith('digraph "my \\"org\\"" {')
    assert '"ceo" -> "m";' in text
    assert '"x" -> "m" [style=dashed];' in text
    assert '\\"x\\"' in text  # the quotes inside the evil name are escaped
    assert re.search(r'"l1" \[label="l1\\n⚠ cycle", fillcolor="#fee4e2"', text)
    assert text.rstrip().endswith("}")
