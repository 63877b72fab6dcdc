"""The interactive HTML org chart: a collapsible, searchable tree with problems flagged."""

from __future__ import annotations

from okrsync.hierarchy import Hierarchy
from okrsync.models import PersonStatus
from okrsync.render._org import layout, person_label, problem_label
from okrsync.render._page import ProblemEntry, TreeData, problem_tops, render_page

_UNREACHABLE_NOTE = (
    "No chain of managers leads from a real root to these people: they are caught in a reporting "
    "cycle (shown from the person where the loop was cut), or report into someone who is. "
    "Fix the manager of one person in each cycle."
)


def orgchart_data(h: Hierarchy, *, title: str = "Org chart") -> TreeData:
    """The generic tree the page draws, one node per person (see :class:`TreeData`)."""
    lay = layout(h)
    data = TreeData(title=title, search_placeholder="Search name, e-mail or id  (Enter = next match)")
    index: dict[str, int] = {}
    for pid in lay.order:
        person = h.people[pid]
        direct = len(h.direct_reports(pid))
        if pid in lay.unreachable:
            meta = f"{direct} direct" if direct else ""
        else:
            meta = f"{direct} direct · {lay.totals.get(pid, 0)} total" if direct else ""
        badges = [(code, problem_label(code)) for code in lay.flags.get(pid, ())]
        if person.status is not PersonStatus.ACTIVE:
            badges.append(("status", person.status.value.replace("_", " ")))
        detail = " · ".join(part for part in (pid, person.email) if part)
        index[pid] = data.add("person", person_label(person), person.title or "", meta, badges, detail)
    for pid, i in index.items():
        manager = h.manager_of(pid)
        if manager is not None and manager in index:
            data.parent[i] = index[manager]
        data.children[i] = [index[c] for c in h.direct_reports(pid) if c in index]
    data.roots = [index[pid] for pid in lay.roots]
    data.problem_roots = [index[pid] for pid in lay.cycle_roots] + problem_tops(
        [index[p] for p in sorted(lay.unreachable)],
        data.parent,
        {index[p] for p in lay.unreachable if "cycle" in lay.flags.get(p, ())},
    )
    stuck = sum(1 + lay.totals.get(pid, 0) for pid in lay.cycle_roots) + len(lay.unreachable)
    data.problem_roots_title = f"Problems: {stuck} people not reachable from a root"
    data.problem_roots_note = _UNREACHABLE_NOTE
    for problem in h.problems:
        code = str(problem.code)
        data.problems.append(
            ProblemEntry(
                code=code,
                label=problem_label(code),
                message=problem.message,
                resolution=problem.resolution,
                nodes=[index[p] for p in problem.person_ids if p in index],
            )
        )
    n_problems = len(h.problems)
    summary = [
        f"{len(index)} people",
        f"{len(lay.roots)} root{'s' if len(lay.roots) != 1 else ''}",
        f"{n_problems} problem{'s' if n_problems != 1 else ''}",
    ]
    if stuck:
        summary.append(f"{stuck} not reachable from a root")
    data.summary = " · ".join(summary)
    return data


def orgchart_html(h: Hierarchy, *, title: str = "Org chart") -> str:
    """A self-contained HTML page (no network) showing ``h`` as an interactive tree."""
    return render_page(orgchart_data(h, title=title))
