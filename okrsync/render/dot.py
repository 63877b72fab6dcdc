"""Org charts as Graphviz DOT, for ``dot -Tsvg`` when a printable, laid-out picture is wanted."""

from __future__ import annotations

from okrsync.hierarchy import Hierarchy
from okrsync.render._org import layout, person_label, problem_label


def _quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines flattened."""
    text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(h: Hierarchy, *, dotted: bool = True, name: str = "org") -> str:
    """``digraph`` with manager -> report edges; flagged people filled red, dotted lines dashed."""
    lay = layout(h)
    lines = [
        f"digraph {_quote(name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  edge [color="#667085"];',
    ]
    for pid in lay.order:
        person = h.people[pid]
        label = person_label(person)
        if person.title:
            label += "\n" + person.title
        flags = lay.flags.get(pid, ())
        attrs = ""
        if flags:
            label += "\n⚠ " + ", ".join(problem_label(c) for c in flags)
            attrs = ', fillcolor="#fee4e2", color="#b42318"'
        # the label keeps its line breaks as DOT "\n" escapes
        quoted = "\\n".join(_quote(part)[1:-1] for part in label.split("\n"))
        lines.append(f'  {_quote(pid)} [label="{quoted}"{attrs}];')
    for pid in lay.order:
        manager = h.manager_of(pid)
        if manager is not None and manager in h.people:
            lines.append(f"  {_quote(manager)} -> {_quote(pid)};")
        if dotted:
            for extra in h.dotted_managers(pid):
                if extra in h.people:
                    lines.append(f"  {_quote(extra)} -> {_quote(pid)} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"
