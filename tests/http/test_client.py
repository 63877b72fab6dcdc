"""The shared HTTP client against a real local server with injected faults, and edge cases."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from okrsync.errors import ApiError, AuthenticationError, PaginationError, RetriableApiError
from okrsync.http import HttpClient, HttpSettings, next_link_pages, offset_limit_pages, parse_retry_after
from okrsync.sandbox import Emulator, FaultSpec, SandboxOrg, serve
from okrsync.sandbox.server import Response


class Echo(Emulator):
    system = "echo"

    def __init__(self, org: SandboxOrg, *, faults: FaultSpec | None = None) -> None:
        super().__init__(org, faults=faults)
        self.route(
            "GET", r"/items/(\d+)", lambda r: Response.json({"n": int(r.match.group(1)) if r.match else 0})
        )


class EchoTLS(Echo):
    tls = True


ORG = SandboxOrg(5, seed=1)
FAST = HttpSettings(backoff_base=0.001, backoff_max=0.01, max_attempts=30)


def test_every_fault_kind_is_survived_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    spec = FaultSpec.parse(
        "429=0.15,500=0.05,503=0.05,reset=0.05,truncate=0.05,slow=0.05,slow_seconds=0.01,retry_after=0,seed=4"
    )
    sleeps: list[float] = []
    with serve(Echo(ORG, faults=spec)) as running, caplog.at_level(logging.WARNING, "okrsync.http"):
        client = HttpClient("echo", FAST, sleep=sleeps.append)
        values = [
            client.json("GET", f"{running.url}/items/{i}", operation="get item")["n"] for i in range(200)
        ]
        injected = dict(running.emulator.faults.injected)
    assert values == list(range(200)), "every request eventually got its own answer"
    assert {"429", "500", "503", "reset", "truncate"} <= set(injected)
    failures = sum(v for k, v in injected.items() if k != "slow")
    assert client.stats.retries == failures, "one retry per injected failure, each counted"
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == failures
    assert all(s >= 0 for s in sleeps)


@responses.activate
def test_retry_after_is_honoured_seconds_and_http_date() -> None:
    url = "https://api.example/x"
    responses.get(url, status=429, headers={"Retry-After": "7"}, json={"error": {"code": "TooManyRequests"}})
    responses.get(url, status=503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})
    responses.get(url, json={"ok": True})
    sleeps: list[float] = []
    client = HttpClient(
        "t", HttpSettings(max_retry_after=10**9, max_retry_seconds=10**9), sleep=sleeps.append
    )
    assert client.json("GET", url, operation="op") == {"ok": True}
    assert sleeps[0] == 7.0 and sleeps[1] == 0.0, "a date in the past means retry now"
    assert parse_retry_after("garbage") is None and parse_retry_after("0") == 0.0


@responses.activate
def test_retry_budget_exhaustion_is_a_clear_error() -> None:
    url = "https://api.example/busy?access_token=supersecret"
    responses.get(
        url,
        status=503,
        json={"error": {"code": "ServiceUnavailable", "message": "maintenance"}},
        headers={"request-id": "r-1"},
    )
    client = HttpClient("graph", HttpSettings(max_attempts=3), sleep=lambda s: None)
    with pytest.raises(RetriableApiError) as err:
        client.request("GET", url, operation="list users")
    text = str(err.value)
    assert "retry budget exhausted after 3 attempts" in text
    assert "list users" in text and "503" in text and "r-1" in text and "ServiceUnavailable" in text
    assert "supersecret" not in text
    assert len(responses.calls) == 3


@responses.activate
def test_too_long_retry_after_is_an_error_not_a_nap() -> None:
    responses.get("https://api.example/x", status=429, headers={"Retry-After": "3600"})
    client = HttpClient(
        "sf", HttpSettings(max_retry_after=300), sleep=lambda s: pytest.fail("must not sleep")
    )
    with pytest.raises(RetriableApiError, match="Retry-After 3600s exceeds the 300s allowed"):
        client.request("GET", "https://api.example/x", operation="op")


class FakeToken:
    def __init__(self) -> None:
        self.n = 0

    def header(self) -> str:
        return f"Bearer token-{self.n}"

    def invalidate(self) -> None:
        self.n += 1


@responses.activate
def test_expired_token_is_refreshed_once() -> None:
    url = "https://api.example/me"
    responses.get(url, status=401, json={"error": {"code": "InvalidAuthenticationToken"}})
    responses.get(url, json={"id": 1})
    token = FakeToken()
    client = HttpClient("t", auth=token, sleep=lambda s: None)
    assert client.json("GET", url, operation="me") == {"id": 1}
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        "Bearer token-0",
        "Bearer token-1",
    ]
    responses.get(url, status=401, json={"error": {"code": "InvalidAuthenticationToken", "message": "bad"}})
    responses.get(url, status=401, json={"error": {"code": "InvalidAuthenticationToken", "message": "bad"}})
    with pytest.raises(AuthenticationError, match="InvalidAuthenticationToken"):
        client.request("GET", url, operation="me")


@responses.activate
def test_client_errors_are_not_retried() -> None:
    responses.get(
        "https://api.example/x", status=400, json=[{"errorCode": "INVALID_FIELD", "message": "No such"}]
    )
    client = HttpClient("sf", sleep=lambda s: pytest.fail("must not retry a 400"))
    with pytest.raises(ApiError) as err:
        client.request("GET", "https://api.example/x", operation="query")
    assert err.value.code == "INVALID_FIELD" and err.value.status == 400
    assert not isinstance(err.value, RetriableApiError)


def test_configured_ca_bundle_wins_over_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with serve(EchoTLS(ORG)) as running:
        naive = requests.Session()
        naive.verify = running.ca_path  # what most code does; the environment silently overrides it
        with pytest.raises(requests.exceptions.SSLError):
            naive.get(f"{running.url}/items/1", timeout=5)
        client = HttpClient("echo", HttpSettings(ca_bundle=running.ca_path))
        assert client.json("GET", f"{running.url}/items/1", operation="get")["n"] == 1
        unverified = HttpClient("echo", HttpSettings(max_attempts=1))
        with pytest.raises(RetriableApiError, match="SSLError"):
            unverified.request("GET", f"{running.url}/items/1", operation="get")


def test_next_link_loop_guard() -> None:
    pages = {"a": {"value": [1], "@odata.nextLink": "b"}, "b": {"value": [2], "@odata.nextLink": "a"}}
    it = next_link_pages(lambda u, p: pages[u], "a")
    assert next(it)["value"] == [1] and next(it)["value"] == [2]
    with pytest.raises(PaginationError, match="same nextLink twice"):
        next(it)


def test_offset_limit_stops_on_a_short_page_not_on_total() -> None:
    data = list(range(250))

    def fetch(url: str, params: dict | None) -> dict:
        assert params is not None
        return {"total": 999, "data": data[params["offset"] : params["offset"] + params["limit"]]}

    assert [len(p) for p in offset_limit_pages(fetch, "u", limit=100)] == [100, 100, 50]
