"""Org charts and alignment views people can look at: Mermaid, Graphviz DOT, self-contained HTML.

Every format shows the same flags (cycles, missing or inactive managers) so a problem seen in
``okrsync org check`` is visible in whichever picture someone opens.
"""

from okrsync.render.alignment import alignment_data, alignment_html
from okrsync.render.dot import to_dot
from okrsync.render.mermaid import to_mermaid
from okrsync.render.orgchart import orgchart_data, orgchart_html

__all__ = [
    "alignment_data",
    "alignment_html",
    "orgchart_data",
    "orgchart_html",
    "to_dot",
    "to_mermaid",
]
