"""The HTML alignment view: objectives as a tree with their key results, owners and rules.

A cascade over a large org produces tens of thousands of objectives; reviewers need to see
what hangs under each company key result, who owns it and which rule generated it, and to
spot alignment loops and dangling references — hence the same lazy tree and problems panel
as the org chart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from okrsync.cascade import generated_by
from okrsync.models import AlignmentStatus, KeyResult, NodeKind, OkrSet, OwnerKind, Person
from okrsync.okrs import OkrProblem, validate_okrs
from okrsync.render._org import person_label
from okrsync.render._page import ProblemEntry, TreeData, problem_tops, render_page


def _number(value: float) -> str:
    """``12,000,000`` and ``0.5``, never ``1.2e+07``: targets are read by people."""
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _metric(kr: KeyResult) -> str:
    unit = f" {kr.unit}" if kr.unit else ""
    return f"{kr.metric_type.value}: {_number(kr.start_value)} → {_number(kr.target_value)}{unit}"


def alignment_data(
    okrs: OkrSet,
    people: Mapping[str, Person] | None = None,
    *,
    problems: list[OkrProblem] | None = None,
    title: str = "OKR alignment",
) -> TreeData:
    """Objectives under what they align to, key results under their objective.

    ``problems`` defaults to :func:`validate_okrs` without owner checks; pass your own
    (with known people) for a stricter panel.
    """
    people = people or {}
    if problems is None:
        problems = validate_okrs(okrs)

    def owner_name(kind: OwnerKind, owner_id: str) -> str:
        if kind is OwnerKind.ORG_UNIT:
            return f"unit {owner_id}"
        person = people.get(owner_id)
        return person_label(person) if person else owner_id

    data = TreeData(title=title, search_placeholder="Search objective, key result, owner or id")
    flagged: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in okrs.alignments:
        if e.status is not AlignmentStatus.ACTIVE:
            flagged[e.child_id].append((e.status.value, f"{e.status.value} → {e.parent_id}"))
    for p in problems:
        flagged[p.item_id].append((p.code.value, p.code.value.replace("_", " ")))

    index: dict[tuple[NodeKind, str], int] = {}
    for obj in okrs.objectives:
        if (NodeKind.OBJECTIVE, obj.id) in index:
            continue
        badges = list(flagged.get(obj.id, []))
        rule = generated_by(obj)
        if rule:
            badges.append(("generated", rule))
        detail = f"{obj.id} · {obj.level.value}"
        index[(NodeKind.OBJECTIVE, obj.id)] = data.add(
            "objective",
            obj.title,
            owner_name(obj.owner.kind, obj.owner.id),
            obj.status.value.replace("_", " "),
            badges,
            detail,
        )
    owner_of = {o.id: o.owner for o in okrs.objectives}
    for kr in okrs.key_results:
        if (NodeKind.KEY_RESULT, kr.id) in index:
            continue
        owner = kr.owner or owner_of.get(kr.objective_id)
        sub = owner_name(owner.kind, owner.id) if owner else ""
        index[(NodeKind.KEY_RESULT, kr.id)] = data.add(
            "kr", kr.title, sub, _metric(kr), list(flagged.get(kr.id, [])), kr.id
        )

    children: dict[int, list[int]] = defaultdict(list)
    for kr in okrs.key_results:
        i, j = index[(NodeKind.KEY_RESULT, kr.id)], index.get((NodeKind.OBJECTIVE, kr.objective_id))
        if j is not None and data.parent[i] < 0:
            children[j].append(i)
            data.parent[i] = j
    for e in okrs.alignments:
        child = index.get((e.child_kind, e.child_id))
        parent = index.get((e.parent_kind, e.parent_id))
        if child is None or parent is None:
            continue
        children[parent].append(child)
        if data.parent[child] < 0:
            data.parent[child] = parent
    data.children = dict(children)

    roots = [i for i in range(len(data.nodes)) if data.parent[i] < 0]
    reached = set(roots)
    stack = list(roots)
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in reached:
                reached.add(c)
                stack.append(c)
    unreachable = [i for i in range(len(data.nodes)) if i not in reached]
    looped = {
        index[(NodeKind.OBJECTIVE, p.item_id)]
        for p in problems
        if p.code.value == "alignment_cycle" and (NodeKind.OBJECTIVE, p.item_id) in index
    }
    data.roots = roots
    data.problem_roots = problem_tops(unreachable, data.parent, looped)
    data.problem_roots_title = f"Problems: {len(unreachable)} objectives and key results in alignment loops"
    data.problem_roots_note = "Each of these ends up aligned to itself; remove one alignment in each loop."
    by_id = {node_id: i for (_, node_id), i in index.items()}
    for p in problems:
        node = by_id.get(p.item_id)
        data.problems.append(
            ProblemEntry(
                code=p.code.value,
                label=p.code.value.replace("_", " "),
                message=f"{p.item_id}: {p.message}" if p.item_id not in p.message else p.message,
                nodes=[node] if node is not None else [],
            )
        )
    generated = sum(1 for o in okrs.objectives if generated_by(o))
    data.summary = (
        f"{len(okrs.objectives)} objectives ({generated} generated) · {len(okrs.key_results)} key results · "
        f"{len(okrs.alignments)} alignments · {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    )
    if okrs.cycle is not None:
        data.summary = f"{okrs.cycle.name} ({okrs.cycle.start} – {okrs.cycle.end}) · " + data.summary
    return data


def alignment_html(
    okrs: OkrSet,
    people: Mapping[str, Person] | None = None,
    *,
    problems: list[OkrProblem] | None = None,
    title: str = "OKR alignment",
) -> str:
    """A self-contained HTML page (no network) showing the alignment tree of ``okrs``."""
    return render_page(alignment_data(okrs, people, problems=problems, title=title))
