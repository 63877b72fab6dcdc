"""What every org chart format needs from a :class:`Hierarchy`: labels, flags, reachability.

Mermaid, DOT and HTML must agree on who is flagged and why, so that logic lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from okrsync.hierarchy import Hierarchy
from okrsync.models import Person

# Short badge text per hierarchy problem code; unknown codes fall back to the code itself.
PROBLEM_LABELS: Mapping[str, str] = {
    "cycle": "cycle",
    "self_manager": "own manager",
    "dangling_manager": "manager missing",
    "dangling_dotted_manager": "dotted manager missing",
    "duplicate_id": "duplicate id",
    "duplicate_email": "duplicate e-mail",
    "multiple_roots": "extra root",
    "inactive_manager": "inactive manager",
    "out_of_scope_manager": "manager out of scope",
}


def person_label(person: Person) -> str:
    """The name a human recognises, falling back to e-mail and finally the id."""
    if person.display_name:
        return person.display_name
    full = " ".join(part for part in (person.given_name, person.family_name) if part)
    return full or person.email or person.user_name or person.id


def problem_label(code: str) -> str:
    return PROBLEM_LABELS.get(code, code.replace("_", " "))


@dataclass(frozen=True)
class OrgLayout:
    """People in display order (roots' subtrees depth-first, then the unreachable ones).

    ``unreachable`` people have no chain to a root (caught in, or below, a reporting cycle);
    ``cycle_roots`` are roots only because the hierarchy cut a reporting loop at them (policy
    ``cycles="break"`` or ``"stop"``). Charts show both apart from the real tree, under
    "Problems", so a loop is neither silently missing nor passed off as a second company.
    """

    order: tuple[str, ...]
    roots: tuple[str, ...]
    cycle_roots: tuple[str, ...]  # roots only because a reporting loop was cut at them
    unreachable: frozenset[str]
    totals: Mapping[str, int]  # people below each reachable person
    flags: Mapping[str, tuple[str, ...]]  # person id -> problem codes that concern them


def layout(h: Hierarchy) -> OrgLayout:
    """Walk the hierarchy once; iterative so a 10-level-deep 100k org cannot hit recursion limits."""
    people = h.people
    roots = [pid for pid in h.roots() if pid in people]
    known_roots = set(roots)
    roots += [pid for pid in people if h.manager_of(pid) is None and pid not in known_roots]
    order: list[str] = []
    seen: set[str] = set()
    stack = list(reversed(roots))
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        order.append(pid)
        stack.extend(reversed([c for c in h.direct_reports(pid) if c in people and c not in seen]))
    totals: dict[str, int] = {}
    for pid in reversed(order):
        totals[pid] = sum(1 + totals.get(c, 0) for c in h.direct_reports(pid) if c in totals)
    unreachable = [pid for pid in people if pid not in seen]
    flags: dict[str, list[str]] = {}
    main_root = max(roots, key=lambda r: totals.get(r, 0), default=None)
    for problem in h.problems:
        for pid in problem.person_ids:
            if str(problem.code) == "multiple_roots" and (pid == main_root or pid in flags):
                continue  # the real top of the company, or a root already explained by its own flag
            codes = flags.setdefault(pid, [])
            if str(problem.code) not in codes:
                codes.append(str(problem.code))
    cycle_members = {pid for p in h.problems if str(p.code) == "cycle" for pid in p.person_ids}
    return OrgLayout(
        order=tuple(order + sorted(unreachable)),
        roots=tuple(r for r in roots if r not in cycle_members),
        cycle_roots=tuple(r for r in roots if r in cycle_members),
        unreachable=frozenset(unreachable),
        totals=totals,
        flags={k: tuple(v) for k, v in flags.items()},
    )
