"""Auth, TLS trust, config validation and $batch edge cases (``responses`` where the sandbox cannot)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from pydantic import ValidationError

from okrsync.config import parse_config
from okrsync.connectors.base import ConnectorContext, Operation, OpKind
from okrsync.connectors.entra import EntraConfig, EntraConnector
from okrsync.connectors.entra.auth import describe_msal_error
from okrsync.connectors.entra.graph import BatchItem
from okrsync.errors import AuthenticationError, ConfigError
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator, SandboxOrg

from .helpers import connector, pull

Start = Callable[..., RunningEmulator]
GRAPH = "https://graph.example.test"


# ---------------------------------------------------------------- auth and TLS against the sandbox
def test_certificate_credential_and_configured_ca_win_over_the_environment(
    start_emulator: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "other-ca.pem"
    bogus.write_text("not a CA\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))  # would break every request if it were used
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bogus))
    run = start_emulator("entra", org=SandboxOrg(50, seed=31))
    conn = connector(run, credential="certificate")
    assert conn.cfg.uses_certificate
    _, people, _ = pull(conn)
    assert len(people) == 50
    conn.close()


def test_msal_error_becomes_authentication_error_without_the_secret(start_emulator: Start) -> None:
    run = start_emulator("entra", org=SandboxOrg(20, seed=32))
    conn = connector(run, client_secret="definitely-wrong-secret-value")
    with pytest.raises(AuthenticationError) as info:
        pull(conn)
    err = info.value
    assert err.code == "AADSTS7000215"
    assert "invalid_client" in str(err) and "AADSTS7000215" in str(err)
    assert "definitely-wrong-secret-value" not in str(err)
    assert run.connection()["client_secret"] not in str(err)
    conn.close()


def test_describe_msal_error_keeps_the_first_line_and_code() -> None:
    message, code = describe_msal_error(
        {
            "error": "invalid_client",
            "error_description": "AADSTS700027: Client assertion failed.\r\nTrace ID: x\r\nTimestamp: y",
            "error_codes": [700027],
            "correlation_id": "c-1",
        }
    )
    assert code == "AADSTS700027"
    assert message == (
        "token request refused: invalid_client: AADSTS700027: Client assertion failed. (correlation id c-1)"
    )


# ---------------------------------------------------------------- config validation
def base_settings(**overrides: Any) -> dict[str, Any]:
    return {"type": "entra", "tenant_id": "t", "client_id": "c", "client_secret": "s", **overrides}


def test_config_validation_catches_mistakes_before_any_request() -> None:
    with pytest.raises(ValidationError, match="client_secret, or certificate_path"):
        EntraConfig(type="entra", tenant_id="t", client_id="c")
    with pytest.raises(ValidationError, match="https://"):
        EntraConfig(**base_settings(graph_url="http://graph.microsoft.com"))
    with pytest.raises(ValidationError, match="999"):
        EntraConfig(**base_settings(page_size=1000))
    cfg = EntraConfig(
        **base_settings(
            graph_url="https://graph.microsoft.us/v1.0/", login_url="https://login.microsoftonline.us"
        )
    )
    assert cfg.graph_base == "https://graph.microsoft.us/v1.0"
    assert cfg.token_scope == "https://graph.microsoft.us/.default"
    assert cfg.microsoft_login_host
    with pytest.raises(ConfigError) as info:
        parse_config({"connections": {"e": base_settings(anchor="objectGuid", colour="blue")}})
    text = str(info.value)
    assert "connections.e.anchor" in text and "connections.e.colour" in text


def test_managed_fields_follow_the_push_mapping() -> None:
    conn = EntraConnector(EntraConfig(**base_settings()), ConnectorContext("e"))
    assert conn.managed_fields == (
        "department",
        "display_name",
        "family_name",
        "given_name",
        "location",
        "manager_id",
        "status",
        "title",
        "worker_type",
    )
    assert "email" not in conn.managed_fields  # mail/UPN are create-only by default
    assert {"OrgSource", "OrgTarget", "OrgReader"} <= set(conn.capabilities())


# ---------------------------------------------------------------- $batch item retries (responses)
class StaticAuth:
    def header(self) -> str:
        return "Bearer test"

    def invalidate(self) -> None:
        pass


def offline_connector(**overrides: Any) -> tuple[EntraConnector, list[float]]:
    conn = EntraConnector(
        EntraConfig(**base_settings(graph_url=GRAPH, concurrency=1, **overrides)), ConnectorContext("e")
    )
    sleeps: list[float] = []
    conn.graph.http.auth = StaticAuth()
    conn.graph.http.sleep = sleeps.append
    return conn, sleeps


@responses.activate
def test_throttled_batch_items_are_resubmitted_alone_after_their_retry_after() -> None:
    conn, sleeps = offline_connector()
    calls: list[list[dict[str, Any]]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        items = json.loads(request.body)["requests"]
        calls.append(items)
        out = []
        for item in items:
            throttled = len(calls) == 1 and item["url"].endswith("/u2")
            out.append(
                {
                    "id": item["id"],
                    "status": 429,
                    "headers": {"Retry-After": "7"},
                    "body": {"error": {"code": "TooManyRequests"}},
                }
                if throttled
                else {"id": item["id"], "status": 204, "headers": {}}
            )
        return 200, {}, json.dumps({"responses": out[::-1]})  # any order: matched by id

    responses.add_callback(responses.POST, f"{GRAPH}/v1.0/$batch", callback=answer)
    results = conn.graph.batch([BatchItem("PATCH", f"/users/u{i}", {"jobTitle": "x"}) for i in range(3)])
    assert [r.status for r in results] == [204, 204, 204]
    assert [r.retries for r in results] == [0, 0, 1]
    assert [len(c) for c in calls] == [3, 1] and calls[1][0]["url"] == "/users/u2"
    assert sleeps == [7.0]
    assert conn.graph.http.stats.retries == 1


@responses.activate
def test_exhausted_item_retries_fail_only_that_record() -> None:
    conn, sleeps = offline_connector(max_attempts=3)
    conn._target.object_ids.update({"1": "oid-1", "2": "oid-2"})

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        out = []
        for item in json.loads(request.body)["requests"]:
            bad = "oid-2" in item["url"]
            out.append(
                {
                    "id": item["id"],
                    "status": 503 if bad else 204,
                    "headers": {"Retry-After": "1"} if bad else {},
                }
            )
        return 200, {}, json.dumps({"responses": out})

    responses.add_callback(responses.POST, f"{GRAPH}/v1.0/$batch", callback=answer)
    ops = [
        Operation(OpKind.UPDATE, pid, Person(id=pid, title="New"), {"title": ("Old", "New")})
        for pid in ("1", "2")
    ]
    first, second = conn.apply(ops, {})
    assert first.ok and first.target_id == "oid-1" and first.retries == 0
    assert not second.ok and second.retries == 2
    assert second.error is not None and "retry budget exhausted after 3 attempts" in second.error
    assert sleeps == [1.0, 1.0]
    sent = [json.loads(c.request.body)["requests"] for c in responses.calls]
    assert sent[0][0]["body"] == {"jobTitle": "New"}  # only what differs


@responses.activate
def test_unchanged_graph_values_cost_no_request() -> None:
    conn, _ = offline_connector()
    conn._target.object_ids["1"] = "oid-1"
    # pre-hire held as "terminated" (disabled): accountEnabled is false both ways; nothing to send
    op = Operation(
        OpKind.UPDATE, "1", Person(id="1", status="pre_hire"), {"status": ("terminated", "pre_hire")}
    )
    (result,) = conn.apply([op], {})
    assert result.ok and result.target_id == "oid-1"
    assert len(responses.calls) == 0


def test_an_expired_token_is_renewed_once_mid_run(start_emulator: Start) -> None:
    import time

    run = start_emulator("entra", org=SandboxOrg(30, seed=33), faults="token_ttl=0.5")
    conn = connector(run)
    first, _, _ = pull(conn)
    time.sleep(0.7)  # the token is expired: msal renews it, or Graph's 401 makes the client renew it once
    second, _, _ = pull(conn, first.cursor)
    assert second.mode.value == "incremental" and second.requests == 1 + conn.graph.http.stats.by_status.get(
        401, 0
    )
    assert conn.graph.auth.acquired >= 2
    conn.close()
