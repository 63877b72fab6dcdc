"""Org charts as Mermaid ``graph TD`` text, for Markdown pages, wikis and pull requests.

Node ids are generated (``p0``, ``p1`` …) because person ids may hold characters Mermaid
treats as syntax; labels are entity-escaped for the same reason. Flagged people get the
``problem`` class so a reviewer sees them in red.
"""

from __future__ import annotations

from okrsync.hierarchy import Hierarchy
from okrsync.render._org import layout, person_label, problem_label

_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}


def _escape(text: str) -> str:
    text = " ".join(text.split())
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def to_mermaid(h: Hierarchy, *, dotted: bool = True, max_people: int | None = None) -> str:
    """``graph TD`` with manager -> report edges; dotted lines as ``-.->`` when ``dotted``.

    ``max_people`` keeps the first N people in display order (roots' subtrees first), since
    Mermaid renderers choke long before 10,000 nodes.
    """
    lay = layout(h)
    order = lay.order if max_people is None else lay.order[:max_people]
    ids = {pid: f"p{i}" for i, pid in enumerate(order)}
    lines = ["graph TD"]
    problem_nodes: list[str] = []
    for pid in order:
        person = h.people[pid]
        parts = [_escape(person_label(person))]
        if person.title:
            parts.append(_escape(person.title))
        flags = lay.flags.get(pid, ())
        if flags:
            parts.append("⚠ " + _escape(", ".join(problem_label(c) for c in flags)))
            problem_nodes.append(ids[pid])
        lines.append(f'    {ids[pid]}["{"<br/>".join(parts)}"]')
    for pid in order:
        manager = h.manager_of(pid)
        if manager in ids:
            lines.append(f"    {ids[manager]} --> {ids[pid]}")
        if dotted:
            for extra in h.dotted_managers(pid):
                if extra in ids:
                    lines.append(f"    {ids[extra]} -.-> {ids[pid]}")
    if problem_nodes:
        lines.append("    classDef problem fill:#fee4e2,stroke:#b42318,color:#7a271a")
        lines.append(f"    class {','.join(problem_nodes)} problem")
    return "\n".join(lines) + "\n"
