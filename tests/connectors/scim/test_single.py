"""A service without /Bulk, behind a bearer token: ordered single requests, ETags, crash reruns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from okrsync.connectors.base import ConnectorContext, Operation, OpKind
from okrsync.connectors.scim import ScimConfig, ScimConnector
from okrsync.connectors.scim.client import ENTERPRISE
from okrsync.errors import AuthenticationError
from okrsync.models import Person
from okrsync.sandbox.orgs import SandboxOrg
from tests.connectors.scim.conftest import DEFAULT_SPC, ScimServer, StartServer
from tests.connectors.scim.helpers import Run, ScimJob, Sent, recorder

TOKEN = "s3cret-token-for-tests"
NO_BULK = {**DEFAULT_SPC, "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}}
N = 120


@dataclass
class Loaded:
    server: ScimServer
    people: list[Person]
    job: ScimJob
    first: Run


@pytest.fixture(scope="module")
def loaded(scim_servers: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    server = scim_servers(spc=NO_BULK, bearer_token=TOKEN)
    folder = tmp_path_factory.mktemp("scim-single")
    people = SandboxOrg(N, seed=21).expected_people()
    job = ScimJob(folder, server.base_url, extra=f'token = "{TOKEN}"')
    job.write_source(people)
    yield Loaded(server, people, job, job.run())
    server.stop()


def connector(server: ScimServer, **options: object) -> tuple[ScimConnector, list[Sent]]:
    conn = ScimConnector(
        ScimConfig(base_url=server.base_url, token=TOKEN, **options), ConnectorContext("scim")
    )
    sent: list[Sent] = []
    conn.client.http.session.hooks["response"].append(recorder(sent))
    return conn, sent


def server_users(loaded: Loaded) -> dict[str, dict]:
    conn, _ = connector(loaded.server)
    try:
        return {u["externalId"]: u for u in conn.client.iter_users()}
    finally:
        conn.close()


def test_without_bulk_users_are_created_one_by_one_managers_first(loaded: Loaded) -> None:
    run = loaded.first
    assert run.report.status == "ok" and run.report.targets["scim"].counts == {"create": N}
    posts = [s for s in run.sent if s.method == "POST"]
    assert len(posts) == N and all(s.url.endswith("/Users") and s.status == 201 for s in posts)
    assert len(run.after_discovery) == N + 1  # the read of the (empty) directory, then one POST each
    created: set[str] = set()
    for s in posts:
        manager = s.body.get(ENTERPRISE, {}).get("manager", {}).get("value")
        assert manager is None or manager in created, "a manager is created before their reports"
        created.add(s.response["id"])
    users = server_users(loaded)
    scim_to_pid = {u["id"]: pid for pid, u in users.items()}
    for p in loaded.people:
        manager = users[p.id].get(ENTERPRISE, {}).get("manager", {}).get("value")
        assert (scim_to_pid[manager] if manager else None) == p.manager_id


def test_wrong_token_is_an_authentication_error(loaded: Loaded) -> None:
    conn = ScimConnector(ScimConfig(base_url=loaded.server.base_url, token="wrong"), ConnectorContext("scim"))
    with pytest.raises(AuthenticationError):
        conn.read_current({})
    conn.close()


def test_full_reconcile_reads_back_what_was_written_and_writes_nothing(loaded: Loaded) -> None:
    run = loaded.job.run(full=True)
    assert run.report.targets["scim"].reconciled_from_target
    assert run.writes == [], [(s.method, s.body) for s in run.writes[:3]]
    # only pre-hires differ canonically (pushed as active=false, read back as terminated): no request
    counts = run.report.targets["scim"].counts
    assert counts.get("update", 0) == sum(p.status.value == "pre_hire" for p in loaded.people)
    assert set(counts) <= {"update"}


def test_a_lost_race_is_re_read_and_retried_once_with_if_match(loaded: Loaded) -> None:
    conn, sent = connector(loaded.server)
    person = loaded.people[5]
    id_map = {pid: u["id"] for pid, u in server_users(loaded).items()}
    list(conn.read_current(id_map))  # versions as of now
    # someone else changes the user in between
    other, _ = connector(loaded.server)
    other.client.patch_user(
        id_map[person.id], [{"op": "replace", "path": "nickName", "value": "Racer"}], None
    )
    other.close()
    changed = person.model_copy(update={"title": "Chief Race Officer"})
    op = Operation(OpKind.UPDATE, person.id, changed, {"title": (person.title, changed.title)}, 0)
    (result,) = conn.apply([op], id_map)
    conn.close()
    assert result.ok and result.retries == 1 and result.target_id == id_map[person.id]
    patches = [s for s in sent if s.method == "PATCH"]
    assert [s.status for s in patches] == [412, 204] or [s.status for s in patches] == [412, 200]
    assert patches[0].body["Operations"] == [
        {"op": "replace", "path": "title", "value": "Chief Race Officer"}
    ]
    user = server_users(loaded)[person.id]
    assert user["title"] == "Chief Race Officer" and user["nickName"] == "Racer"


def test_a_rerun_after_a_crash_finds_its_users_instead_of_duplicating_them(loaded: Loaded) -> None:
    """CREATE operations for people that exist (the crashed run created them): looked up, patched."""
    conn, sent = connector(loaded.server)
    sample = loaded.people[10:20]
    renamed = [p.model_copy(update={"title": f"Rerun {p.title}"}) for p in sample]
    ops = [Operation(OpKind.CREATE, p.id, p, {}, i) for i, p in enumerate(renamed)]
    results = conn.apply(ops, {})  # no id map: the state never heard of them
    conn.close()
    assert all(r.ok for r in results), [r.error for r in results]
    lookups = [s for s in sent if s.method == "GET" and "filter=" in s.url]
    assert len(lookups) == 1, "one or-filter finds all ten"
    assert not [s for s in sent if s.method == "POST"]
    patches = [s for s in sent if s.method == "PATCH"]
    assert len(patches) == 10
    assert all(
        s.body["Operations"]
        == [{"op": "replace", "path": "title", "value": s.body["Operations"][0]["value"]}]
        for s in patches
    )
    users = server_users(loaded)
    assert len(users) == N
    assert {r.target_id for r in results} == {users[p.id]["id"] for p in sample}
