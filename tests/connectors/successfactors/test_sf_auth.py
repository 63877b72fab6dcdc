"""SAML-bearer auth, token refresh on 403 LGN0006, Basic for sandboxes, typed SF errors, 429 waits."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from lxml import etree

from okrsync.connectors.successfactors.auth import build_assertion
from okrsync.errors import ApiError, AuthenticationError, RetriableApiError
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.sandbox.successfactors.auth import verify_assertion
from tests.connectors.successfactors.helpers import connector, pull

DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


@pytest.fixture
def run(start_emulator: Any) -> RunningEmulator:
    r: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(40, seed=2))
    return r


def _token(run: RunningEmulator, assertion: str) -> requests.Response:
    c = run.connection()
    form = {
        "company_id": c["company_id"],
        "client_id": c["client_id"],
        "grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "assertion": assertion,
    }
    return requests.post(f"{run.url}/oauth/token", data=form, timeout=30)


def test_assertion_has_the_documented_claims_and_validates_against_the_registered_certificate(
    run: RunningEmulator,
) -> None:
    conn = connector(run)
    encoded = conn.auth.assertion()  # type: ignore[union-attr]
    em: Any = run.emulator
    assert (
        verify_assertion(
            encoded,
            certificate_pem=em.keys.certificate_pem,
            client_id=em.client_id,
            recipient=f"{run.url}/oauth/token",
            now=datetime.now(UTC),
        )
        == em.api_user
    )
    doc = etree.fromstring(base64.b64decode(encoded))
    assert doc.findtext(f"{SAML}Issuer") == em.client_id
    assert doc[1].tag == f"{DS}Signature"  # right after Issuer, as SAML's schema orders it
    method = doc.find(f"{DS}Signature/{DS}SignedInfo/{DS}SignatureMethod")
    c14n = doc.find(f"{DS}Signature/{DS}SignedInfo/{DS}CanonicalizationMethod")
    assert method is not None and method.get("Algorithm", "").endswith("rsa-sha256")
    assert c14n is not None and c14n.get("Algorithm") == "http://www.w3.org/2001/10/xml-exc-c14n#"
    assert (
        doc.findtext(f"{SAML}Conditions/{SAML}AudienceRestriction/{SAML}Audience") == "www.successfactors.com"
    )
    assert doc.findtext(f"{SAML}AttributeStatement/{SAML}Attribute/{SAML}AttributeValue") == em.client_id
    assert _token(run, encoded).status_code == 200


def test_tampered_or_foreign_assertions_are_refused(run: RunningEmulator) -> None:
    conn = connector(run)
    raw = base64.b64decode(conn.auth.assertion())  # type: ignore[union-attr]
    em: Any = run.emulator
    tampered = raw.replace(f">{em.api_user}<".encode(), b">u100001<")
    assert tampered != raw
    r = _token(run, base64.b64encode(tampered).decode())
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
    # a key pair SF never registered: the connector reports an authentication error
    from tests.sandbox.test_successfactors import _other_key_pair

    key, cert = _other_key_pair()
    foreign = build_assertion(
        private_key_pem=key,
        certificate_pem=cert,
        client_id=em.client_id,
        user_id=em.api_user,
        token_url=f"{run.url}/oauth/token",
        now=datetime.now(UTC),
    )
    assert _token(run, foreign).status_code == 401
    with pytest.raises(AuthenticationError) as info:
        c = connector(run)
        c.auth._key = key  # type: ignore[union-attr]
        pull(c)
    assert "invalid_grant" in str(info.value) and "assertion" not in (info.value.url or "")


def test_token_is_cached_and_refreshed_once_on_403_lgn0006(start_emulator: Any) -> None:
    run: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(40, seed=2), faults="token_ttl=1")
    frozen = datetime.now(UTC)
    conn = connector(run, clock=lambda: frozen)  # a frozen clock: it never thinks its token expired
    pull(conn)
    assert conn.auth.fetched == 1  # type: ignore[union-attr]
    time.sleep(1.2)
    _, people, _ = pull(conn)
    assert people and conn.auth.fetched == 2  # type: ignore[union-attr]
    assert conn.client.stats.by_status.get(403) == 1


def test_basic_auth_works_for_sandboxes_with_a_deprecation_warning(run: RunningEmulator) -> None:
    em: Any = run.emulator
    with pytest.warns(DeprecationWarning, match="Basic authentication is deprecated"):
        conn = connector(run, auth="basic", password=em.basic_password)
    _, people, _ = pull(conn)
    assert len(people) >= 30
    with pytest.warns(DeprecationWarning):
        wrong = connector(run, auth="basic", password=em.basic_password, company_id="NOPE")
    with pytest.raises(ApiError) as info:
        pull(wrong)
    assert info.value.status == 403 and info.value.code == "LGN0008"


def test_sf_error_bodies_become_typed_errors_with_the_coe_code(run: RunningEmulator) -> None:
    conn = connector(run)
    with pytest.raises(ApiError) as info:
        conn.reader.get("User", {"$select": "nonsense"}, "bad select")
    assert info.value.status == 400 and info.value.code == "COE0021"
    assert "COE_PROPERTY_NOT_FOUND" in str(info.value)


def test_429_retry_after_is_honoured_reported_and_bounded(start_emulator: Any) -> None:
    run: RunningEmulator = start_emulator(
        "successfactors", org=SandboxOrg(300, seed=2), faults="429=0.3,retry_after=0.05,seed=5"
    )
    conn = connector(run, page_size=50, max_attempts=10)
    result, people, _ = pull(conn)
    assert len(people) >= 290 and conn.client.stats.by_status.get(429)
    assert any("Retry-After" in n for n in result.notices)
    slow: RunningEmulator = start_emulator(
        "successfactors", org=SandboxOrg(20, seed=2), faults="429=1,retry_after=300"
    )
    impatient = connector(slow, max_retry_after=5)
    started = time.monotonic()
    with pytest.raises(RetriableApiError) as info:
        pull(impatient)
    assert time.monotonic() - started < 5 and "exceeds the 5s allowed" in str(info.value)
