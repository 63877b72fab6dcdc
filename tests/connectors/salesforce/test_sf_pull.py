"""Salesforce as an org source, over HTTPS against the emulator, simple-salesforce unpatched.

Expected people come from the sandbox org (``expected_people()``), never from the emulator's
SOQL engine; logins, TLS trust, throttling, expired sessions and the daily API budget are
exercised through the connector's real transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import certifi
import pytest
from pydantic import ValidationError

from okrsync.connectors.salesforce import SalesforceConfig
from okrsync.connectors.salesforce.pull import soql_datetime
from okrsync.errors import ApiError, AuthenticationError, ConnectorError
from okrsync.sandbox import RunningEmulator, SandboxOrg, create_emulator, serve
from tests.connectors.salesforce.helpers import AS_OF, Clock, connector, emulator_of, pull, settings

StartEmulator = Callable[..., RunningEmulator]


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[SandboxOrg, RunningEmulator, Clock]]:
    clock = Clock()
    org = SandboxOrg(10_000, seed=11, as_of=AS_OF, clock=clock)
    with serve(create_emulator("salesforce", org, opportunities_per_rep=1)) as running:
        yield org, running, clock


@pytest.fixture
def small(start_emulator: StartEmulator) -> tuple[SandboxOrg, RunningEmulator]:
    org = SandboxOrg(300, seed=4, as_of=AS_OF, clock=Clock())
    return org, start_emulator("salesforce", org=org)


# ---------------------------------------------------------------- pulls
def test_full_pull_of_10000_users_matches_the_org(big: tuple[SandboxOrg, RunningEmulator, Clock]) -> None:
    org, running, clock = big
    conn = connector(running, clock=clock)
    result, people = pull(conn, watermark=clock())
    expected = {p.id: p for p in org.expected_people()}
    assert len(people) == len(expected) == 10_000
    assert set(people) == set(expected)  # ids are EmployeeNumbers, joinable with the HRIS
    for pid, want in expected.items():
        got = people[pid]
        assert got.manager_id == want.manager_id, pid  # via Manager.EmployeeNumber, same id space
        assert (got.email, got.title, got.department) == (want.email, want.title, want.department)
        assert (got.given_name, got.family_name, got.location) == (
            want.given_name,
            want.family_name,
            want.location,
        )
        assert got.is_active == (want.status.value == "active")
        assert got.external_ids["salesforce"] == org.salesforce_user_id(org.get(pid).index)
    assert result.cursor == soql_datetime(clock())
    assert result.requests == 6  # the login and 10,000 users at 2,000 a page
    assert any("API usage" in n for n in result.notices)
    conn.close()


def test_incremental_after_50_edits_returns_exactly_the_changed_users(
    big: tuple[SandboxOrg, RunningEmulator, Clock],
) -> None:
    org, running, clock = big
    conn = connector(running, clock=clock)
    first, _ = pull(conn, watermark=clock())
    version = org.version
    clock.now += timedelta(minutes=5)
    org.random_edits(50, seed=3)  # moves, terminations, renames and hires
    changed = {w.employee_id for w in org.changed_since(version)}
    assert len(changed) == 50
    second, people = pull(conn, cursor=first.cursor, watermark=clock() + timedelta(seconds=30))
    assert second.mode.value == "incremental"
    assert set(people) == changed
    expected = {p.id: p for p in org.expected_people()}
    for pid, person in people.items():
        assert person.manager_id == expected[pid].manager_id
        assert person.title == expected[pid].title
        assert person.is_active == (expected[pid].status.value == "active")
    third, nothing = pull(conn, cursor=second.cursor, watermark=clock() + timedelta(minutes=1))
    assert nothing == {} and third.requests == 1
    # the cursor is inclusive (whole seconds): a change in the watermark's own second is read again
    _, same = pull(conn, cursor=soql_datetime(clock()), watermark=clock() + timedelta(minutes=1))
    assert set(same) == changed
    conn.close()


def test_id_field_id_keys_people_by_user_id(small: tuple[SandboxOrg, RunningEmulator]) -> None:
    org, running = small
    conn = connector(running, id_field="Id")
    assert conn.config.mapping == "salesforce-ids"
    _, people = pull(conn)
    sf = {org.salesforce_user_id(w.index): w for w in org}
    assert set(people) == set(sf)
    for uid, person in people.items():
        w = sf[uid]
        assert person.manager_id == (None if w.manager is None else org.salesforce_user_id(w.manager))
        assert person.attributes["employee_number"] == w.employee_id


def test_every_request_waits_for_the_fleets_per_host_rate_limiter(
    small: tuple[SandboxOrg, RunningEmulator],
) -> None:
    """Fleet workers share Salesforce's org-wide limits: the connector asks the limiter first."""
    from urllib.parse import urlsplit

    from okrsync.connectors.base import ConnectorContext
    from okrsync.connectors.salesforce import SalesforceConnector

    class CountingLimiter:
        def __init__(self) -> None:
            self.hosts: list[str] = []

        def acquire(self, host: str) -> None:
            self.hosts.append(host)

    _, running = small
    limiter = CountingLimiter()
    context = ConnectorContext("salesforce", rate_limiter=limiter)
    conn = SalesforceConnector(SalesforceConfig(**settings(running)), context)
    before = sum(emulator_of(running).requests.values())  # the emulator is shared by the module
    result, people = pull(conn)
    served = sum(emulator_of(running).requests.values()) - before
    assert people and len(limiter.hosts) >= result.requests > 0
    assert len(limiter.hosts) == served  # login included: every request, none bypassing it
    assert set(limiter.hosts) == {urlsplit(running.url).netloc}


# ---------------------------------------------------------------- logins and TLS
@pytest.mark.parametrize("via", ["login_url", "domain"])
@pytest.mark.parametrize("auth", ["password", "jwt", "client_credentials"])
def test_every_login_flow(small: tuple[SandboxOrg, RunningEmulator], auth: str, via: str) -> None:
    org, running = small
    conn = connector(running, auth, via=via)
    _, people = pull(conn)
    assert len(people) == len(org)
    assert conn.client.auth.logins == 1
    conn.close()


def test_the_configured_ca_bundle_wins_over_the_environment(
    small: tuple[SandboxOrg, RunningEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, running = small
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # does not know the sandbox CA
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nor would a proxy from the environment work
    _, people = pull(connector(running))
    assert people
    with pytest.raises(ConnectorError, match="SSL"):  # and a wrong bundle is really used, too
        pull(connector(running, ca_bundle=certifi.where(), max_attempts=1))


def test_bad_credentials_are_an_authentication_error(small: tuple[SandboxOrg, RunningEmulator]) -> None:
    _, running = small
    with pytest.raises(AuthenticationError, match="INVALID_LOGIN") as info:
        pull(connector(running, password="wrong"))
    assert "wrong" not in str(info.value)
    with pytest.raises(AuthenticationError, match="invalid_client"):
        pull(connector(running, "client_credentials", consumer_secret="nope"))


def test_config_names_what_a_login_needs() -> None:
    with pytest.raises(ValidationError, match="private_key_path"):
        SalesforceConfig(type="salesforce", auth="jwt", username="u", consumer_key="k")
    with pytest.raises(ValidationError, match="https"):
        SalesforceConfig(
            type="salesforce",
            auth="password",
            username="u",
            password="p",
            security_token="t",
            login_url="http://x",
        )
    with pytest.raises(ValidationError, match="My Domain"):
        SalesforceConfig(type="salesforce", auth="client_credentials", consumer_key="k", consumer_secret="s")
    with pytest.raises(ValidationError, match="extra"):
        SalesforceConfig(
            type="salesforce", auth="password", username="u", password="p", security_token="t", x=1
        )


# ---------------------------------------------------------------- transport: throttling, sessions, limits
def test_concurrency_throttling_is_retried_with_backoff(start_emulator: StartEmulator) -> None:
    org = SandboxOrg(600, seed=4, as_of=AS_OF)
    running = start_emulator("salesforce", org=org, faults="429=0.25,seed=2")
    conn = connector(running, page_size=200)
    _, people = pull(conn)  # login + 3 pages, each may meet 403 ConcurrentPerOrgLongTxn
    assert len(people) == 600
    assert emulator_of(running).faults.injected["429"] >= 1
    assert conn.client.http.stats.retries == emulator_of(running).faults.injected["429"]
    assert all("attempt" in line for line in conn.client.http.stats.retry_log)


def test_an_expired_session_logs_in_again_once(start_emulator: StartEmulator) -> None:
    org = SandboxOrg(50, seed=4, as_of=AS_OF)
    running = start_emulator("salesforce", org=org, faults="token_ttl=0.3")
    for via in ("login_url", "domain"):
        conn = connector(running, via=via)
        pull(conn)
        import time

        time.sleep(0.5)
        _, people = pull(conn)  # 401 INVALID_SESSION_ID -> one new login -> the same request again
        assert len(people) == 50
        assert conn.client.auth.logins == 2


def test_stops_before_the_daily_limit_with_a_clear_message(start_emulator: StartEmulator) -> None:
    running = start_emulator("salesforce", org=SandboxOrg(20, seed=4, as_of=AS_OF), daily_limit=40)
    conn = connector(running, api_reserve="10%")
    sent = 0
    with pytest.raises(ApiError, match="stopping before Salesforce's daily API limit") as info:
        while sent < 200:
            conn.client.query("SELECT COUNT() FROM User")
            sent += 1
    assert info.value.code == "API_RESERVE_REACHED"
    assert "36/40" in str(info.value) and "api_reserve = 10%" in str(info.value)
    em = emulator_of(running)
    assert em.api_requests == 36  # 4 requests kept for other integrations; no 403 was ever answered
    assert all(status != 403 for *_, status in em.request_log)


def test_the_daily_limit_itself_is_a_clear_stop(start_emulator: StartEmulator) -> None:
    running = start_emulator("salesforce", org=SandboxOrg(20, seed=4, as_of=AS_OF), daily_limit=3)
    first = connector(running, api_reserve="0")
    with pytest.raises(ApiError):
        for _ in range(10):
            first.client.query("SELECT COUNT() FROM User")
    fresh = connector(running, api_reserve="0")  # has not seen Sforce-Limit-Info yet
    with pytest.raises(ApiError, match="daily API request limit is exhausted") as info:
        fresh.client.query("SELECT COUNT() FROM User")
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED"


def test_a_refused_query_is_an_api_error_with_the_vendor_code(
    small: tuple[SandboxOrg, RunningEmulator],
) -> None:
    _, running = small
    conn = connector(running)
    with pytest.raises(ApiError) as info:
        conn.client.query("SELECT NoSuchField FROM User")
    assert info.value.code == "INVALID_FIELD"
    assert info.value.status == 400
    assert "Bearer" not in str(info.value)
    assert conn.api_usage.startswith("1/")  # the login is not an API request; the refusal was


def test_settings_helper_passes_only_known_keys(small: tuple[SandboxOrg, RunningEmulator]) -> None:
    _, running = small
    cfg = SalesforceConfig(**settings(running, "jwt"))
    assert cfg.auth == "jwt" and cfg.login_url and cfg.ca_bundle
