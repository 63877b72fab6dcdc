"""The self-contained HTML page both tree views (org chart, OKR alignment) are drawn in.

The page must open from a file share or an e-mail attachment with no network, and must not
let a person's name run script: data travels as JSON inside ``<script type="application/json">``
with ``<``, ``>``, ``&`` and the JS line separators escaped, and the page script only ever
inserts text through ``textContent``. A strict Content-Security-Policy forbids any fetch.

A view builds a :class:`TreeData` (generic nodes + children) and calls :func:`render_page`;
the browser renders children lazily on expand, so 10,000+ nodes stay fast.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

_PLACEHOLDER = re.compile(r"/\*@(CSS|JS|DATA)@\*/|@(TITLE|HEADING)@")
_CSS_CLASS = re.compile(r"[^a-z0-9-]+")


@dataclass
class ProblemEntry:
    """One line of the page's problems panel; ``nodes`` are indexes of the nodes it concerns."""

    code: str
    label: str
    message: str
    resolution: str | None = None
    nodes: list[int] = field(default_factory=list)


@dataclass
class TreeData:
    """What the page script draws: flat nodes, child lists, top-level entries and problems.

    A node is ``[kind, main, sub, meta, badges, detail]``; ``badges`` is a list of
    ``[css_class, label]``; ``detail`` is muted text that search also looks at (ids, e-mail).
    ``parent[i]`` is the node a search walks up through to reveal ``i`` (-1 at the top).
    """

    title: str
    summary: str = ""
    nodes: list[list[Any]] = field(default_factory=list)
    children: dict[int, list[int]] = field(default_factory=dict)
    parent: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    problem_roots: list[int] = field(default_factory=list)
    problem_roots_title: str = "Not reachable from a root"
    problem_roots_note: str = ""
    problems: list[ProblemEntry] = field(default_factory=list)
    search_placeholder: str = "Search"
    expand_depth: int = 1

    def add(
        self,
        kind: str,
        main: str,
        sub: str = "",
        meta: str = "",
        badges: list[tuple[str, str]] | None = None,
        detail: str = "",
    ) -> int:
        """Append a node and return its index."""
        self.nodes.append(
            [kind, main, sub, meta, [[css_class(c), label] for c, label in badges or []], detail]
        )
        self.parent.append(-1)
        return len(self.nodes) - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "summary": self.summary,
            "nodes": self.nodes,
            "children": {str(k): v for k, v in self.children.items() if v},
            "parent": self.parent,
            "roots": self.roots,
            "problemRoots": self.problem_roots,
            "problemRootsTitle": self.problem_roots_title,
            "problemRootsNote": self.problem_roots_note,
            "problems": [
                {
                    "code": css_class(p.code),
                    "label": p.label,
                    "message": p.message,
                    "resolution": p.resolution,
                    "nodes": p.nodes,
                }
                for p in self.problems
            ],
            "searchPlaceholder": self.search_placeholder,
            "expandDepth": self.expand_depth,
        }


def problem_tops(unreachable: list[int], parent: list[int], preferred: set[int]) -> list[int]:
    """Top entries for nodes no root leads to: the ``preferred`` ones (e.g. cycle members),
    plus one node of any loop or dead end that would otherwise lead nowhere.

    Every unreachable node must lead (through ``parent``) to a top entry so search can reveal
    it; nodes hanging below a loop are shown under the member they belong to.
    """
    tops = [i for i in unreachable if i in preferred or parent[i] < 0]
    top_set = set(tops)
    settled = set(tops)
    for start in unreachable:
        walk: list[int] = []
        on_walk: set[int] = set()
        j = start
        while j >= 0 and j not in settled and j not in on_walk:
            walk.append(j)
            on_walk.add(j)
            j = parent[j]
        if j < 0 or j in on_walk:
            pick = walk[-1] if j < 0 else j
            if pick not in top_set:
                tops.append(pick)
                top_set.add(pick)
        settled.update(walk)
    return sorted(tops)


def css_class(code: str) -> str:
    """Problem codes become CSS class suffixes; keep only characters that are safe there."""
    return _CSS_CLASS.sub("-", code.lower()).strip("-") or "x"


def embed_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or U+2028."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _asset(name: str) -> str:
    return resources.files("okrsync.render").joinpath(name).read_text(encoding="utf-8")


def render_page(data: TreeData) -> str:
    """Fill the page template in one pass, so data can never be mistaken for a placeholder."""
    values = {
        "CSS": _asset("tree.css"),
        "JS": _asset("tree.js"),
        "DATA": embed_json(data.to_json()),
        "TITLE": html.escape(data.title),
        "HEADING": html.escape(data.title),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1) or m.group(2)], _asset("tree.html"))
