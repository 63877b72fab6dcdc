"""REST and RaaS pulls over real HTTP: full pulls match the org, before and after 50 edits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from okrsync.connectors.base import PullMode, PullRequest
from okrsync.connectors.workday.raas import iter_report_entries
from okrsync.errors import ApiError, AuthenticationError
from okrsync.models import PersonStatus
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.workday.helpers import SOAP_FIELDS, connector, edit, mismatches, pull

Start = Callable[..., RunningEmulator]


def not_listed(p: Any) -> bool:
    return bool(p.status is PersonStatus.PRE_HIRE)  # REST /workers does not list pre-hires


def test_rest_full_pull_and_after_edits(start_emulator: Start) -> None:
    org = SandboxOrg(10_000, seed=6)
    run = start_emulator("workday", org=org)
    conn = connector(run, "rest", concurrency=16)
    paths: list[str] = []
    original = conn._rest_http().session.request

    def request(method: str, url: str, **kw: Any) -> Any:
        paths.append(urlsplit(url).path)
        return original(method, url, **kw)

    conn._rest_http().session.request = request  # type: ignore[method-assign]
    result, people = pull(conn)
    assert result.mode is PullMode.FULL
    assert mismatches(people, org.expected_people(), skip=not_listed) == []
    orgs = [p for p in paths if "/supervisoryOrganizations/" in p]
    assert len(orgs) == len(set(orgs))  # cached per organization, not per worker
    assert len(orgs) <= sum(1 for w in org if any(x.manager == w.index for x in org)) + 1
    details = [p for p in paths if "/workers/" in p]
    assert len(details) == len(set(details)) == len(people)
    assert sum(p.endswith("/workers") for p in paths) == len(people) // 100 + 1  # stops on the short page
    assert result.requests == len(paths)  # the token request goes through the plain client

    ids = edit(org, 50)
    again, people = pull(conn)
    conn.close()
    assert again.mode is PullMode.FULL  # no change feed: full pulls, the engine diffs them
    assert mismatches(people, org.expected_people(), skip=not_listed) == []
    assert people[ids["converted"]].external_ids["workday_wid"] == org.get(ids["converted"]).wid


def test_rest_refused_refresh_token(start_emulator: Start) -> None:
    run = start_emulator("workday", org=SandboxOrg(20, seed=1))
    conn = connector(run, "rest", refresh_token="not-the-token")
    with pytest.raises(AuthenticationError) as denied:
        pull(conn)
    assert "not-the-token" not in str(denied.value)


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_raas_full_pull_and_after_edits(start_emulator: Start, auth: str) -> None:
    org = SandboxOrg(10_000 if auth == "basic" else 200, seed=7)
    run = start_emulator("workday", org=org)
    extra: dict[str, Any] = {"raas_auth": auth}
    if auth == "bearer":
        rest = run.emulator.connection("rest")  # type: ignore[attr-defined]
        extra |= {k: rest[k] for k in ("client_id", "client_secret", "refresh_token")}
    conn = connector(run, "raas", **extra)
    result, people = pull(conn)
    assert result.mode is PullMode.FULL and result.requests == 1
    assert mismatches(people, org.expected_people(), SOAP_FIELDS) == []
    ids = edit(org, 50)
    _, people = pull(conn)
    conn.close()
    assert mismatches(people, org.expected_people(), SOAP_FIELDS) == []
    converted = people[ids["converted"]]
    assert (
        converted.status == "active"
        and converted.external_ids["workday_wid"] == org.get(ids["converted"]).wid
    )


def test_raas_aliases_and_prompts(start_emulator: Start, tmp_path: Any) -> None:
    run = start_emulator(
        "workday", org=SandboxOrg(100, seed=2), raas_aliases={"Employee_ID": "Worker", "Email": "Work_Email"}
    )
    (tmp_path / "acme.toml").write_text(
        '[mapping]\nname = "acme"\nextends = "workday-raas"\n[fields]\n'
        'id = { expr = "to_string(Worker)" }\nemail = "Work_Email"\nuser_name = "Work_Email"\n'
    )
    conn = connector(
        run,
        "raas",
        mapping=str(tmp_path / "acme.toml"),
        report_keys={"id": "Worker"},
        prompts={"Effective_as_of_Date": "2030-01-01"},
    )
    from okrsync.mapping import load_mapping

    records = list(conn.pull(PullRequest(None, datetime.now(UTC))).records)
    mapping = load_mapping(str(tmp_path / "acme.toml"))
    people = [mapping.apply(r.data) for r in records]
    assert len(people) == 100 and all(p["email"].endswith("@example.com") for p in people)
    assert all(p["status"] != "pre_hire" for p in people)  # every hire date has passed by 2030
    conn.close()
    bad = connector(run, "raas", prompts={"Not_A_Prompt": "x"})
    with pytest.raises(ApiError):
        pull(bad)


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_report_entries_are_streamed_chunk_by_chunk(size: int) -> None:
    report = {
        "Report_Entry": [
            {"Employee_ID": str(i), "Name": 'Zoë "Q" , ] {', "Managers": [1, 2]} for i in range(300)
        ]
    }
    body = json.dumps(report, ensure_ascii=False).encode()
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_report_entries(chunks)) == report["Report_Entry"]
    with pytest.raises(ApiError, match="truncated"):
        list(iter_report_entries([body[: len(body) // 2]]))
    assert list(iter_report_entries([b'{"Report_Entry": []}'])) == []
