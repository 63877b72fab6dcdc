"""The HTML org chart in a real browser: tree drawn, search from the URL, cycle flagged.

Headless Chromium loads the page from a file (no network: the page's CSP forbids it anyway),
runs the search given in ``#q=...`` and dumps the resulting DOM, which is what a person would
see. Skipped when Chromium is not installed (CI installs it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from okrsync.hierarchy import build_hierarchy
from okrsync.models import Person, PersonStatus
from okrsync.render import orgchart_html
from tests.conftest import require_or_skip

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.browser]


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    require_or_skip(
        CHROMIUM.exists(), "headless Chromium not installed at /usr/bin/chromium", "OKRSYNC_REQUIRE_BROWSER"
    )


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
]


def org_500() -> list[Person]:
    """Five-way tree of 500 people; P0420 -> P0421 -> P0422 -> P0420 is a reporting loop."""
    people = []
    for i in range(500):
        manager = None if i == 0 else f"P{(i - 1) // 5:04d}"
        people.append(
            Person(
                id=f"P{i:04d}",
                manager_id=manager,
                display_name=f"Person {i:03d}",
                email=f"person{i:03d}@example.com",
                title="Chief Executive" if i == 0 else "Engineer",
                status=PersonStatus.TERMINATED if i == 7 else PersonStatus.ACTIVE,
            )
        )
    loop = {420: "P0421", 421: "P0422", 422: "P0420"}
    for i, manager in loop.items():
        people[i] = people[i].model_copy(update={"manager_id": manager})
    people[33] = people[33].model_copy(update={"display_name": "</script><b>Bobby</b>"})
    return people


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chart") / "chart.html"
    path.write_text(orgchart_html(build_hierarchy(org_500()), title="Acme org"), encoding="utf-8")
    return path


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Uncaught" not in result.stderr, result.stderr[-2000:]
    return result


def dump(tmp_path: Path, chart: Path, query: str | None = None) -> str:
    url = chart.as_uri() + (f"#q={quote(query)}" if query else "")
    return chromium(tmp_path, "--dump-dom", url).stdout


def rows_with(dom: str, cls: str) -> list[str]:
    return re.findall(rf'<div class="row {cls}">(.*?)</div>', dom)


def test_tree_is_drawn_with_counts_and_problem_panel(tmp_path: Path, chart: Path) -> None:
    dom = dump(tmp_path, chart)
    tree = dom.split('id="tree"', 1)[1].split('id="problem-tree-section"', 1)[0]
    assert '<span class="main">Person 000</span>' in tree
    assert '<span class="main">Person 001</span>' in tree  # roots open one level
    assert re.search(r'<span class="meta">5 direct · 49\d total</span>', tree)
    assert '<span id="problem-count">(' in dom
    assert '<span class="badge badge-cycle">cycle</span><span class="msg">reporting loop' in dom


def test_markup_in_a_name_stays_text(tmp_path: Path, chart: Path) -> None:
    dom = dump(tmp_path, chart, "bobby")
    (match,) = rows_with(dom, "match")
    assert '<span class="main">&lt;/script&gt;&lt;b&gt;Bobby&lt;/b&gt;</span>' in match
    assert "<b>Bobby</b>" not in dom


def test_cycle_is_visible_in_the_problems_section(tmp_path: Path, chart: Path) -> None:
    dom = dump(tmp_path, chart)
    section = re.search(r'<section id="problem-tree-section"([^>]*)>(.*?)</section>', dom, re.S)
    assert section and "hidden" not in section.group(1)
    body = section.group(2)
    assert "Problems: 3 people not reachable from a root" in body
    for name in ("Person 420", "Person 421", "Person 422"):
        assert f'<span class="main">{name}</span>' in body
    assert body.count('class="badge badge-cycle"') == 3


def test_search_from_url_highlights_and_expands_ancestors(tmp_path: Path, chart: Path) -> None:
    dom = dump(tmp_path, chart, "person317@")
    assert '<span id="match-count" aria-live="polite">1 match</span>' in dom
    (match,) = rows_with(dom, "match")
    assert '<span class="main">Person 317</span>' in match
    # 317 -> 63 -> 12 -> 2 -> 0: every ancestor had to be opened to show it
    for ancestor in ("Person 063", "Person 012", "Person 002"):
        assert re.search(
            rf'<li class="node kind-person open" data-i="\d+"><div class="row">.*?{ancestor}<', dom
        )


def test_search_by_id_finds_cycle_members_in_the_problems_section(tmp_path: Path, chart: Path) -> None:
    dom = dump(tmp_path, chart, "P042")
    count = re.search(r'<span id="match-count" aria-live="polite">(\d+) matches</span>', dom)
    assert count and int(count.group(1)) == 10  # P0420..P0429
    problems = dom.split('id="problem-tree"', 1)[1]
    assert len(rows_with(problems, "match")) == 3


def test_screenshot_renders(tmp_path: Path, chart: Path) -> None:
    shot = tmp_path / "chart.png"
    chromium(tmp_path, "--window-size=1400,1000", f"--screenshot={shot}", chart.as_uri() + "#q=person%20042")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
