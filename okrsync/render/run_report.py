"""A run report as a self-contained HTML page: what HR ops read the next morning.

Every value is escaped (names come from HR systems and can contain markup), and the page
loads nothing from the network.
"""

from __future__ import annotations

import html
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2733;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
.status{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;font-weight:600}
.ok,.no_change,.dry_run{background:#dcf5e3}.failed_records{background:#fff1c2}
.policy_stop,.hierarchy_stop,.error,.config_error{background:#ffd9d6}
table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #d7dde4;padding:.25rem .5rem;text-align:left}
th{background:#f3f5f8}code{background:#f3f5f8;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def run_report_html(report: dict[str, Any], *, limit: int = 500) -> str:
    """Render ``RunReport.to_dict()``; long lists are cut at ``limit`` rows with a count."""
    status = str(report.get("status", ""))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>okrsync run {_e(report.get('run_id'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Job {_e(report.get('job'))} — run {_e(report.get('run_id'))} "
        f"<span class='status {_e(status)}'>{_e(status)}</span></h1>",
        f"<p>{_e(report.get('started_at'))} → {_e(report.get('finished_at'))} · mode {_e(report.get('mode'))}"
        f"{' · dry run' if report.get('dry_run') else ''} · exit code {_e(report.get('exit_code'))}</p>",
    ]
    if report.get("blocked"):
        parts.append(f"<p><strong>Stopped before any write:</strong> {_e(report['blocked'])}</p>")
    parts.append("<h2>Source</h2>")
    parts.append(
        _table(
            ["records pulled", "people", "requests", "retries"],
            [
                [
                    report.get("pulled"),
                    report.get("people"),
                    report.get("source_requests"),
                    report.get("source_retries", 0),
                ]
            ],
        )
    )
    parts.append("<h2>Targets</h2>")
    rows = []
    for name, t in (report.get("targets") or {}).items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted((t.get("counts") or {}).items())) or "no changes"
        rows.append(
            [
                name,
                counts,
                t.get("written"),
                len(t.get("failed") or []),
                t.get("retries"),
                t.get("requests", 0),
                t.get("http_retries", 0),
            ]
        )
    parts.append(
        _table(["target", "planned", "written", "failed", "retries", "requests", "HTTP retries"], rows)
    )
    for name, t in (report.get("targets") or {}).items():
        failed = t.get("failed") or []
        if failed:
            parts.append(f"<h2>Failed in {_e(name)} ({len(failed)})</h2>")
            parts.append(
                _table(
                    ["person", "operation", "error"],
                    [[f["person_id"], f["operation"], f["error"]] for f in failed[:limit]],
                )
            )
        if t.get("would_remove"):
            parts.append(f"<h2>Would have been removed from {_e(name)} ({len(t['would_remove'])})</h2>")
            parts.append("<p>" + ", ".join(_e(x) for x in t["would_remove"][:limit]) + "</p>")
    quarantined = report.get("quarantined") or []
    parts.append(f"<h2>Quarantined records ({len(quarantined)})</h2>")
    parts.append(
        _table(
            ["record", "from", "field", "reason"],
            [[q["key"], q.get("ref"), q.get("field"), q["reason"]] for q in quarantined[:limit]],
        )
    )
    problems = report.get("problems") or []
    parts.append(f"<h2>Hierarchy problems ({len(problems)})</h2>")
    parts.append(
        _table(
            ["problem", "people", "what happened"],
            [
                [
                    p["code"],
                    ", ".join(p.get("person_ids", [])[:10]),
                    p["message"] + (f" → {p['resolution']}" if p.get("resolution") else ""),
                ]
                for p in problems[:limit]
            ],
        )
    )
    for name, g in (report.get("goals") or {}).items():
        parts.append(f"<h2>Goals → {_e(name)}</h2>")
        parts.append(_table(["pushed", "written", "failed"], [[g["pushed"], g["written"], len(g["failed"])]]))
    if report.get("notices"):
        parts.append(
            "<h2>Notices</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report["notices"]) + "</ul>"
        )
    if report.get("phases"):
        parts.append("<h2>Phases</h2>")
        parts.append(_table(["phase", "seconds"], [[k, v] for k, v in report["phases"].items()]))
    parts.append("</body></html>")
    return "\n".join(parts)
