"""Fidelity of the SuccessFactors emulator, proven with independent clients.

pyodata (SAP's own OData v2 client) must load the emulator's ``$metadata``, page through
``User`` by following ``__next`` and read expanded navigations; plain ``requests`` checks the
wire details a connector depends on (active-only default, ``/Date()/`` values, ``__count`` as a
string, effective-dated EmpJob, upsert results inside a 200, goal CRUD, error bodies, 429).
The SAML assertion is built here with signxml, independently of the emulator's verifier.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyodata
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import methods
from signxml.signer import XMLSigner

from okrsync.sandbox import FaultSpec, RunningEmulator, SandboxOrg, create_emulator, serve

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ALL_STATUSES = "status in 't','f','T','F','e','d'"
DATE = re.compile(r"^/Date\(-?\d+\)/$")
DATE_OFFSET = re.compile(r"^/Date\(-?\d+\+0000\)/$")


# ---------------------------------------------------------------- helpers
def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_test_assertion(
    key_pem: bytes,
    cert_pem: bytes,
    *,
    client_id: str,
    user_id: str,
    token_url: str,
    audience: str = "www.successfactors.com",
    api_key: str | None = None,
    now: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=10),
) -> str:
    """A base64 SAML 2.0 bearer assertion signed the way SF's documentation asks (RSA-SHA256, exc-c14n)."""
    now = now or datetime.now(UTC)
    s = f"{{{SAML}}}"
    root = etree.Element(
        s + "Assertion",
        nsmap={"saml2": SAML},
        ID="_" + uuid.uuid4().hex,
        IssueInstant=_iso(now),
        Version="2.0",
    )
    etree.SubElement(root, s + "Issuer").text = client_id
    subject = etree.SubElement(root, s + "Subject")
    name_id = etree.SubElement(
        subject, s + "NameID", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    )
    name_id.text = user_id
    confirmation = etree.SubElement(
        subject, s + "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"
    )
    etree.SubElement(
        confirmation, s + "SubjectConfirmationData", NotOnOrAfter=_iso(now + lifetime), Recipient=token_url
    )
    conditions = etree.SubElement(
        root, s + "Conditions", NotBefore=_iso(now - timedelta(minutes=1)), NotOnOrAfter=_iso(now + lifetime)
    )
    restriction = etree.SubElement(conditions, s + "AudienceRestriction")
    etree.SubElement(restriction, s + "Audience").text = audience
    authn = etree.SubElement(
        root, s + "AuthnStatement", AuthnInstant=_iso(now), SessionIndex=uuid.uuid4().hex
    )
    context = etree.SubElement(authn, s + "AuthnContext")
    etree.SubElement(
        context, s + "AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    attrs = etree.SubElement(root, s + "AttributeStatement")
    attr = etree.SubElement(attrs, s + "Attribute", Name="api_key")
    etree.SubElement(attr, s + "AttributeValue").text = api_key if api_key is not None else client_id
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    signed = signer.sign(root, key=key_pem, cert=cert_pem.decode())
    return base64.b64encode(etree.tostring(signed)).decode()


def _other_key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _basic(run: RunningEmulator) -> requests.Session:
    em = run.emulator
    session = requests.Session()
    session.trust_env = False
    session.auth = (f"{em.api_user}@{em.company_id}", em.basic_password)  # type: ignore[attr-defined]
    return session


def _get(session: requests.Session, url: str, **params: str) -> Any:
    r = session.get(url, params={"$format": "json", **params}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["d"]


def _all_pages(session: requests.Session, url: str, **params: str) -> tuple[list[dict[str, Any]], int]:
    body = _get(session, url, **params)
    rows, pages = list(body["results"]), 1
    while body.get("__next"):
        r = session.get(body["__next"], timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()["d"]
        rows.extend(body["results"])
        pages += 1
    return rows, pages


def _key_pem(run: RunningEmulator) -> tuple[bytes, bytes]:
    conn = run.connection()
    with open(conn["private_key_path"], "rb") as k, open(conn["certificate_path"], "rb") as c:
        return k.read(), c.read()


def _token(run: RunningEmulator, assertion: str, **overrides: str) -> requests.Response:
    conn = run.connection()
    form = {
        "company_id": conn["company_id"],
        "client_id": conn["client_id"],
        "grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "assertion": assertion,
        **overrides,
    }
    return requests.post(f"{run.url}/oauth/token", data=form, timeout=30)


@pytest.fixture(scope="module")
def big() -> Iterator[RunningEmulator]:
    """A read-only 2,000-worker tenant shared by the paging tests."""
    with serve(create_emulator("successfactors", SandboxOrg(2000, seed=3), faults=FaultSpec())) as run:
        yield run


@pytest.fixture
def sf(start_emulator: Any) -> RunningEmulator:
    run: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(150, seed=5))
    return run


# ---------------------------------------------------------------- independent client: pyodata
def test_pyodata_loads_metadata_and_follows_next_across_all_user_pages(big: RunningEmulator) -> None:
    client = pyodata.Client(big.url + "/odata/v2", _basic(big))
    assert {"User", "EmpJob", "Goal_1", "GoalMilestone_1"} <= {s.name for s in client.schema.entity_sets}
    page = client.entity_sets.User.get_entities().count(inline=True).execute()
    org = big.emulator.org
    active = {org.sf_user_id(w.index) for w in org if w.status == "active"}
    assert page.total_count == len(active) and len(page) == 1000 and page.next_url
    seen, pages = [u.userId for u in page], 1
    while page.next_url:  # pyodata 1.12 follows __next through QueryRequest.next_url()
        page = client.entity_sets.User.get_entities().next_url(page.next_url).execute()
        seen += [u.userId for u in page]
        pages += 1
    assert pages == 2 and len(seen) == len(set(seen)) and set(seen) == active


def test_pyodata_reads_expanded_manager_and_typed_values(big: RunningEmulator) -> None:
    client = pyodata.Client(big.url + "/odata/v2", _basic(big))
    org = big.emulator.org
    w = next(w for w in org if w.manager is not None and w.status == "active" and w.dotted)
    user = (
        client.entity_sets.User.get_entity(org.sf_user_id(w.index)).expand("manager,matrixManager").execute()
    )
    assert user.manager.userId == org.sf_user_id(w.manager)  # type: ignore[arg-type]
    assert [m.userId for m in user.matrixManager] == [org.sf_user_id(d) for d in w.dotted]
    assert user.hireDate.date() == w.hire_date and user.empId == w.employee_id
    assert user.lastModifiedDateTime == w.last_modified.replace(
        microsecond=w.last_modified.microsecond // 1000 * 1000
    )
    ceo = client.entity_sets.User.get_entity(org.sf_user_id(0)).expand("manager").execute()
    assert ceo.manager is None  # SF answers "manager": null when there is none


def test_scoped_metadata_loads_in_pyodata_and_leaves_out_other_sets(sf: RunningEmulator) -> None:
    r = _basic(sf).get(f"{sf.url}/odata/v2/User,EmpJob/$metadata", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    client = pyodata.Client(sf.url + "/odata/v2", _basic(sf), metadata=r.content)
    assert {s.name for s in client.schema.entity_sets} == {"User", "EmpJob"}
    doc = etree.fromstring(r.content, etree.XMLParser(resolve_entities=False, no_network=True))
    prop = doc.find(".//{*}EntityType[@Name='User']/{*}Property[@Name='status']")
    assert prop is not None and prop.get("{http://www.successfactors.com/edm/sap}filterable") == "true"
    full = pyodata.Client(sf.url + "/odata/v2", _basic(sf))
    goal = full.schema.entity_type("Goal_1")
    assert [p.name for p in goal.key_proprties] == ["id"] and goal.proprty("id").typ.name == "Edm.Int64"
    # SAP's published GoalMilestone_1 (PerformanceandGoalsPMGM), exactly: no target/actual/%
    assert {p.name for p in full.schema.entity_type("GoalMilestone_1").proprties()} == {
        "id",
        "objId",
        "description",
        "start",
        "due",
        "index",
        "flag",
        "modifier",
        "lastModified",
    }
    assert {p.name for p in goal.proprties()} == {
        *("id", "name", "metric", "category", "userId", "type", "state", "stateLabel", "status"),
        *("done", "start", "due", "weight", "flag", "guid", "currentOwner", "planId", "numbering"),
        *("modifier", "link", "lastModified", "desc"),  # desc: a template field the sandbox defines
    }


def test_goal_metadata_flags_follow_saps_published_schema(sf: RunningEmulator) -> None:
    r = _basic(sf).get(f"{sf.url}/odata/v2/Goal_1,GoalMilestone_1/$metadata", timeout=30)
    doc = etree.fromstring(r.content, etree.XMLParser(resolve_entities=False, no_network=True))
    sap = "{http://www.successfactors.com/edm/sap}"

    def prop(entity: str, name: str) -> Any:
        el = doc.find(f".//{{*}}EntityType[@Name='{entity}']/{{*}}Property[@Name='{name}']")
        assert el is not None, (entity, name)
        return el

    assert not doc.xpath("//*[local-name()='Property'][contains(translate(@Name,'ALIGN','align'),'align')]")
    assert not doc.xpath("//*[local-name()='Property'][@Name='parentId']")
    for name in ("name", "userId", "type"):  # creatable and updatable, nothing required
        el = prop("Goal_1", name)
        assert (el.get(f"{sap}creatable"), el.get(f"{sap}updatable")) == ("true", "true"), name
        assert el.get(f"{sap}required") == "false" and el.get("Nullable") == "true"
        assert el.get("MaxLength") is None  # SAP declares none; the 500-character name limit is enforced
    assert prop("Goal_1", "id").get("Nullable") == "false"
    for name in ("guid", "currentOwner", "planId"):
        assert prop("Goal_1", name).get(f"{sap}creatable") == "false", name
    assert prop("Goal_1", "stateLabel").get(f"{sap}updatable") == "false"
    labels = {n: prop("GoalMilestone_1", n).get(f"{sap}label") for n in ("description", "start", "due")}
    assert labels == {"description": "Milestone", "start": "Target Date", "due": "Actual Date"}
    assert prop("GoalMilestone_1", "objId").get(f"{sap}filterable") == "false"


def test_pyodata_goal_crud(sf: RunningEmulator) -> None:
    client = pyodata.Client(sf.url + "/odata/v2", _basic(sf))
    goals = client.entity_sets.Goal_1
    created = (
        goals.create_entity()
        .set(userId="u100002", name="Grow ARR", metric="+10%", category="Goals")
        .execute()
    )
    assert created.id > 0 and created.type == "user"
    goals.update_entity(created.id, method="MERGE").set(name="Grow ARR 12%").execute()
    assert goals.get_entity(created.id).execute().name == "Grow ARR 12%"
    goals.delete_entity(created.id).execute()
    with pytest.raises(pyodata.exceptions.HttpError):
        goals.get_entity(created.id).execute()


# ---------------------------------------------------------------- auth
def test_saml_bearer_assertion_signed_with_the_registered_key_gets_a_token(sf: RunningEmulator) -> None:
    key, cert = _key_pem(sf)
    conn = sf.connection()
    assert conn["auth"] == "saml" and conn["user_id"] == "sfapi" and conn["base_url"] == sf.url
    assertion = build_test_assertion(
        key, cert, client_id=conn["client_id"], user_id=conn["user_id"], token_url=f"{sf.url}/oauth/token"
    )
    r = _token(sf, assertion)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86399
    users = requests.get(
        f"{sf.url}/odata/v2/User",
        params={"$format": "json", "$top": "1"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=30,
    )
    assert users.status_code == 200 and len(users.json()["d"]["results"]) == 1


def test_tampered_foreign_or_wrong_claims_assertions_are_refused(sf: RunningEmulator) -> None:
    key, cert = _key_pem(sf)
    conn = sf.connection()
    url = f"{sf.url}/oauth/token"

    def make(**kw: Any) -> str:
        args: dict[str, Any] = {"client_id": conn["client_id"], "user_id": "sfapi", "token_url": url}
        args.update(kw)
        return build_test_assertion(
            kw.pop("key", key),
            kw.pop("cert", cert),
            **{k: v for k, v in args.items() if k not in {"key", "cert"}},
        )

    assert _token(sf, make()).status_code == 200  # the control: everything below differs in one respect
    good = base64.b64decode(make())
    tampered = [
        good.replace(b">sfapi<", b">u100001<"),  # NameID swapped after signing
        good.replace(b"www.successfactors.com", b"www.successfactors.con"),  # one byte of the Audience
    ]
    assert all(t != good for t in tampered)
    other_key, other_cert = _other_key_pair()
    refused = [base64.b64encode(t).decode() for t in tampered] + [
        make(key=other_key, cert=other_cert),  # signed by a key SF never registered
        make(audience="example.com"),
        make(token_url=f"{sf.url}/elsewhere"),
        make(api_key="not-the-client"),
        make(user_id="nobody"),
        make(now=datetime.now(UTC) - timedelta(hours=2)),  # expired
        base64.b64encode(b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>').decode(),
    ]
    for k, assertion in enumerate(refused):
        r = _token(sf, assertion)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "invalid_grant"
        if k < 3:
            assert "signature does not verify" in r.json()["error_description"]
    assert _token(sf, make(), company_id="OTHER").status_code == 401
    assert _token(sf, make(), grant_type="client_credentials").status_code == 400


def test_basic_auth_and_login_error_codes(sf: RunningEmulator) -> None:
    url = f"{sf.url}/odata/v2/User"
    assert _basic(sf).get(url, params={"$top": "1"}, timeout=30).status_code == 200
    missing = requests.get(url, timeout=30)
    assert missing.status_code == 401 and "WWW-Authenticate" in missing.headers
    assert missing.json()["error"]["message"]["value"].startswith("[LGN0003]")
    wrong = requests.get(url, auth=("sfapi@SANDBOX", "nope"), timeout=30)
    assert wrong.status_code == 401 and "[LGN0015]" in wrong.json()["error"]["message"]["value"]
    company = requests.get(url, auth=("sfapi@ACME", "nope"), timeout=30)
    assert company.status_code == 403 and company.json()["error"]["code"] == "COMPANY_NOT_FOUND"
    bogus = requests.get(url, headers={"Authorization": "Bearer not-issued"}, timeout=30)
    assert bogus.status_code == 403 and bogus.json()["error"]["code"] == "TOKEN_INVALID"


def test_expired_token_answers_lgn0006(start_emulator: Any) -> None:
    run = start_emulator("successfactors", org=SandboxOrg(20, seed=2), faults="token_ttl=0.2")
    key, cert = _key_pem(run)
    conn = run.connection()
    body = _token(
        run,
        build_test_assertion(
            key, cert, client_id=conn["client_id"], user_id="u100001", token_url=f"{run.url}/oauth/token"
        ),
    ).json()
    assert body["expires_in"] == 0
    time.sleep(0.3)
    r = requests.get(
        f"{run.url}/odata/v2/User", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=30
    )
    assert r.status_code == 403 and r.json()["error"]["message"]["value"].startswith("[LGN0006]")


# ---------------------------------------------------------------- User reads with requests
def test_default_is_active_only_and_status_in_returns_everyone(sf: RunningEmulator) -> None:
    org = sf.emulator.org
    s = _basic(sf)
    url = f"{sf.url}/odata/v2/User"
    active = _get(s, url, **{"$select": "userId,status", "$inlinecount": "allpages"})
    everyone = _get(
        s, url, **{"$select": "userId,status", "$filter": ALL_STATUSES, "$inlinecount": "allpages"}
    )
    assert active["__count"] == str(sum(w.status == "active" for w in org)) and isinstance(
        active["__count"], str
    )
    assert {u["status"] for u in active["results"]} == {"t"}
    assert len(everyone["results"]) == len(org) and {u["status"] for u in everyone["results"]} == {"t", "f"}
    pre_hire = next(w for w in org if w.status == "pre_hire")
    gone = next(w for w in org if w.status == "terminated")
    for w in (pre_hire, gone):  # key lookups answer whatever the status
        assert _get(s, f"{url}('{org.sf_user_id(w.index)}')")["status"] == "f"


def test_values_shapes_select_and_deferred_navigation(sf: RunningEmulator) -> None:
    s = _basic(sf)
    org = sf.emulator.org
    w = org.workers[5]
    user = _get(s, f"{sf.url}/odata/v2/User('{org.sf_user_id(5)}')")
    assert DATE.match(user["hireDate"]) and DATE_OFFSET.match(user["lastModifiedDateTime"])
    assert user["custom01"] == w.cost_center and user["email"] == w.email and user["empId"] == w.employee_id
    assert user["__metadata"] == {"uri": f"{sf.url}/odata/v2/User('u100006')", "type": "SFOData.User"}
    assert user["hr"] == {"__deferred": {"uri": f"{sf.url}/odata/v2/User('u100006')/hr"}}
    picked = _get(
        s,
        f"{sf.url}/odata/v2/User",
        **{
            "$select": "userId,manager/userId,hr/userId",
            "$expand": "manager,hr",
            "$filter": "userId eq 'u100006'",
        },
    )
    row = picked["results"][0]
    assert set(row) == {"__metadata", "userId", "manager", "hr"}
    assert row["manager"]["userId"] == org.sf_user_id(w.manager)  # type: ignore[arg-type]
    hr = org.workers[int(row["hr"]["userId"][1:]) - 100001]
    assert hr.department == "People" or (hr.index == 0 and not any(x.department == "People" for x in org))
    reports = _get(s, f"{sf.url}/odata/v2/User('u100001')/directReports", **{"$select": "userId"})
    assert {r["userId"] for r in reports["results"]} == {
        org.sf_user_id(x.index) for x in org if x.manager == 0
    }


def test_filters_orderby_and_nav_paths(sf: RunningEmulator) -> None:
    s = _basic(sf)
    org = sf.emulator.org
    url = f"{sf.url}/odata/v2/User"

    def ids(flt: str, **extra: str) -> list[str]:
        return [
            u["userId"] for u in _get(s, url, **{"$select": "userId", "$filter": flt, **extra})["results"]
        ]

    eng = {org.sf_user_id(w.index) for w in org if w.department == "Engineering" and w.active}
    assert set(ids("department eq 'Engineering'")) == eng
    assert set(ids("department ne 'Engineering' and (location eq 'Berlin' or location eq 'Paris')")) == {
        org.sf_user_id(w.index)
        for w in org
        if w.active and w.department != "Engineering" and w.location in {"Berlin", "Paris"}
    }
    cutoff = date(2020, 1, 1)
    assert set(ids("hireDate lt datetime'2020-01-01T00:00:00'")) == {
        org.sf_user_id(w.index) for w in org if w.active and w.hire_date < cutoff
    }
    assert set(ids("manager/userId eq 'u100001'")) == {
        org.sf_user_id(w.index) for w in org if w.active and w.manager == 0
    }
    ordered = _get(s, url, **{"$select": "lastName", "$orderby": "lastName desc", "$top": "20"})["results"]
    names = [u["lastName"] for u in ordered]
    assert names == sorted(names, reverse=True)
    for bad in ({"$filter": "xyz eq 1"}, {"$select": "userId,xyz"}, {"$orderby": "xyz"}, {"$expand": "xyz"}):
        r = s.get(url, params={"$format": "json", **bad}, timeout=30)
        assert r.status_code == 400
        assert r.json() == {
            "error": {
                "code": "COE_PROPERTY_NOT_FOUND",
                "message": {
                    "lang": "en-US",
                    "value": "[COE0021]Invalid property names: User/xyz. "
                    "Please check the property names in $metadata.",
                },
            }
        }


def test_last_modified_filter_returns_exactly_the_edited_users(sf: RunningEmulator) -> None:
    org = sf.emulator.org
    watermark = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert all(w.last_modified < watermark for w in org)
    edits = org.random_edits(8, seed=11)
    edited = {org.sf_user_id(w.index) for w in org if w.last_modified > watermark}
    assert len(edited) == len(edits)
    flt = f"lastModifiedDateTime gt datetimeoffset'{watermark:%Y-%m-%dT%H:%M:%SZ}' and {ALL_STATUSES}"
    got = _get(_basic(sf), f"{sf.url}/odata/v2/User", **{"$select": "userId", "$filter": flt})["results"]
    assert {u["userId"] for u in got} == edited


def test_custom_page_size_cursor_and_snapshot_paging(big: RunningEmulator) -> None:
    s = _basic(big)
    url = f"{big.url}/odata/v2/User"
    rows, pages = _all_pages(
        s, url, **{"$select": "userId", "customPageSize": "300", "$filter": ALL_STATUSES}
    )
    assert pages == 7 and len({r["userId"] for r in rows}) == 2000
    first = _get(s, url, **{"$select": "userId", "customPageSize": "300"})
    assert first["__next"].startswith(f"{big.url}/odata/v2/User?") and "$skiptoken=" in first["__next"]
    snap, pages = _all_pages(
        s,
        url,
        **{"$select": "userId", "paging": "snapshot", "customPageSize": "500", "$inlinecount": "allpages"},
    )
    assert pages == 4 and len({r["userId"] for r in snap}) == len(snap)
    capped, _ = _all_pages(
        s, url, **{"$select": "userId", "$top": "25", "$skip": "10", "customPageSize": "10"}
    )
    assert [r["userId"] for r in capped] == [
        r["userId"] for r in rows if r["userId"] in {c["userId"] for c in capped}
    ] and len(capped) == 25


def test_snapshot_paging_freezes_the_set_while_cursor_paging_sees_new_hires(sf: RunningEmulator) -> None:
    s = _basic(sf)
    org = sf.emulator.org
    url = f"{sf.url}/odata/v2/User"
    snap = _get(s, url, **{"$select": "userId", "paging": "snapshot", "customPageSize": "50"})
    cursor = _get(s, url, **{"$select": "userId", "customPageSize": "50"})
    before = sum(w.active for w in org)
    for _ in range(3):
        org.hire(org.employee_id(0), hire_date=date(2020, 1, 1))
    snap_rows, cursor_rows = list(snap["results"]), list(cursor["results"])
    for body, rows in ((snap, snap_rows), (cursor, cursor_rows)):
        while body.get("__next"):
            body = s.get(body["__next"], timeout=30).json()["d"]
            rows.extend(body["results"])
    assert len(snap_rows) == before and len(cursor_rows) == before + 3


# ---------------------------------------------------------------- EmpJob
def test_empjob_effective_dating(sf: RunningEmulator) -> None:
    s = _basic(sf)
    org = sf.emulator.org
    url = f"{sf.url}/odata/v2/EmpJob"
    today = datetime.now(UTC).date()
    future = next(w for w in org if w.status == "pre_hire")
    gone = next(w for w in org if w.status == "terminated")
    mover = next(w for w in org if w.active and w.manager not in (None, 0, 1) and w.index > 2)
    old_manager = org.sf_user_id(mover.manager)  # type: ignore[arg-type]
    org.move(mover.employee_id, org.employee_id(1))

    def jobs(**params: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for row in _all_pages(s, url, **params)[0]:
            out.setdefault(row["userId"], []).append(row)
        return out

    now = jobs()
    assert org.sf_user_id(future.index) not in now  # future hire: no slice valid today
    assert all(len(v) == 1 for v in now.values()) and len(now) == len(org) - sum(
        w.status == "pre_hire" for w in org
    )
    assert now[org.sf_user_id(mover.index)][0]["managerId"] == "u100002"
    assert now[org.sf_user_id(gone.index)][0]["emplStatus"] == "T"
    assert now[org.sf_user_id(0)][0]["managerId"] == "NO_MANAGER"
    yesterday = jobs(asOfDate=(today - timedelta(days=1)).isoformat())
    assert yesterday[org.sf_user_id(mover.index)][0]["managerId"] == old_manager
    assert (
        jobs(asOfDate=future.hire_date.isoformat())[org.sf_user_id(future.index)][0]["eventReason"]
        == "HIRNEW"
    )
    on_last_day = jobs(asOfDate=gone.termination_date.isoformat())  # type: ignore[union-attr]
    assert on_last_day[org.sf_user_id(gone.index)][0]["emplStatus"] == "A"
    everything = jobs(fromDate="1900-01-01", toDate="9999-12-31")
    assert len(everything[org.sf_user_id(future.index)]) == 1
    moved = everything[org.sf_user_id(mover.index)]
    assert [j["managerId"] for j in moved] == [old_manager, "u100002"]
    ms = 86_400_000
    start_ms = int(moved[1]["startDate"][6:-2])
    assert (
        moved[0]["endDate"] == f"/Date({start_ms - ms})/" and moved[1]["endDate"] == "/Date(253402214400000)/"
    )
    assert DATE_OFFSET.match(moved[1]["lastModifiedDateTime"]) and moved[1]["seqNumber"] == "1"
    assert [j["emplStatus"] for j in everything[org.sf_user_id(gone.index)]] == ["A", "T"]
    window = jobs(fromDate=today.isoformat(), toDate=today.isoformat())
    assert org.sf_user_id(future.index) not in window and len(window[org.sf_user_id(mover.index)]) == 1
    key = moved[1]["__metadata"]["uri"].split("/odata/v2/")[1]
    assert _get(s, f"{sf.url}/odata/v2/{key}")["managerId"] == "u100002"


def test_dangling_manager_is_an_id_that_matches_no_user(start_emulator: Any) -> None:
    run = start_emulator("successfactors", org=SandboxOrg(60, seed=4, defects=["dangling_manager"]))
    org = run.emulator.org
    w = next(w for w in org if w.manager is not None and w.manager >= len(org))
    s = _basic(run)
    user = _get(s, f"{run.url}/odata/v2/User('{org.sf_user_id(w.index)}')", **{"$expand": "manager"})
    assert user["manager"]["userId"] == org.sf_user_id(w.manager)
    r = s.get(f"{run.url}/odata/v2/User('{org.sf_user_id(w.manager)}')", timeout=30)
    assert r.status_code == 404
    job = _get(s, f"{run.url}/odata/v2/EmpJob", **{"$filter": f"userId eq '{org.sf_user_id(w.index)}'"})
    assert job["results"][0]["managerId"] == org.sf_user_id(w.manager)


# ---------------------------------------------------------------- upsert
def test_upsert_reports_per_record_errors_inside_a_200_and_changes_the_org(sf: RunningEmulator) -> None:
    s = _basic(sf)
    org = sf.emulator.org
    w = next(w for w in org if w.active and w.manager not in (None, 0, 1) and w.index > 2)
    start = datetime.combine(datetime.now(UTC).date(), datetime.min.time())
    records = [
        {
            "__metadata": {"uri": f"User('{org.sf_user_id(w.index)}')", "type": "SFOData.User"},
            "title": "Principal",
            "manager": {"__metadata": {"uri": "User('u100002')"}},
        },
        {"__metadata": {"uri": "User('nobody')"}, "title": "x"},
        {"__metadata": {"uri": "User('u100004')"}, "manager": {"__metadata": {"uri": "User('ghost')"}}},
        {"__metadata": {"uri": "User('u100005')"}, "shoeSize": "44"},
        {
            "__metadata": {
                "uri": f"EmpJob(seqNumber=1L,startDate=datetime'{start:%Y-%m-%dT%H:%M:%S}',userId='u100006')",
                "type": "SFOData.EmpJob",
            },
            "jobTitle": "Staff Engineer",
        },
    ]
    r = s.post(f"{sf.url}/odata/v2/upsert", params={"$format": "json"}, json=records, timeout=30)
    assert r.status_code == 200, r.text
    results = r.json()["d"]
    assert [x["status"] for x in results] == ["OK", "ERROR", "ERROR", "ERROR", "OK"]
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4]
    assert results[0] == {
        "key": f"User/userId={org.sf_user_id(w.index)}",
        "status": "OK",
        "editStatus": "UPSERTED",
        "message": None,
        "index": 0,
        "httpCode": 204,
        "inlineResults": None,
    }
    assert all(x["message"] for x in results[1:4]) and "shoeSize" in results[3]["message"]
    after = _get(s, f"{sf.url}/odata/v2/User('{org.sf_user_id(w.index)}')", **{"$expand": "manager"})
    assert after["manager"]["userId"] == "u100002" and after["title"] == "Principal"
    assert org.workers[w.index].manager == 1 and org.workers[5].title == "Staff Engineer"
    single = s.post(
        f"{sf.url}/odata/v2/upsert?$format=json",
        json={"__metadata": {"uri": "User('u100004')"}, "department": "Legal"},
        timeout=30,
    )
    assert single.json()["d"][0]["status"] == "OK" and org.workers[3].department == "Legal"


def test_cached_collection_pages_follow_every_edit_and_write(sf: RunningEmulator) -> None:
    """Pages are rendered once per result (bench/sf_pull.py), but an edit or write is seen at once."""
    s = _basic(sf)
    em: Any = sf.emulator
    org = em.org
    params = {"$filter": "status in 't','f'", "$expand": "manager", "$select": "userId,title,manager/userId"}
    first, _ = _all_pages(s, f"{sf.url}/odata/v2/User", customPageSize="40", **params)
    again, _ = _all_pages(s, f"{sf.url}/odata/v2/User", customPageSize="40", **params)
    assert again == first and len(em.engine._results) == 1  # the second read came from the cache

    w = next(w for w in org if w.active and w.manager not in (None, 0) and w.index > 2)
    uid = org.sf_user_id(w.index)
    org.move(w.employee_id, org.employee_id(0))
    org.rename(org.employee_id(4), title="Chief Cartographer")
    after = {u["userId"]: u for u in _all_pages(s, f"{sf.url}/odata/v2/User", **params)[0]}
    assert after[uid]["manager"]["userId"] == org.sf_user_id(0)
    assert after[org.sf_user_id(4)]["title"] == "Chief Cartographer"

    today = datetime.combine(datetime.now(UTC).date(), datetime.min.time())
    day = f"{today:%Y-%m-%d}"
    jobs_params = {"$select": "userId,jobTitle", "fromDate": day, "toDate": day}

    def titles() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for j in _all_pages(s, f"{sf.url}/odata/v2/EmpJob", **jobs_params)[0]:
            out.setdefault(j["userId"], []).append(j["jobTitle"])
        return out

    assert "Staff Engineer" not in titles()["u100006"]
    key = f"EmpJob(seqNumber=1L,startDate=datetime'{today:%Y-%m-%dT%H:%M:%S}',userId='u100006')"
    r = s.post(
        f"{sf.url}/odata/v2/upsert?$format=json",
        json={"__metadata": {"uri": key, "type": "SFOData.EmpJob"}, "jobTitle": "Staff Engineer"},
        timeout=30,
    )
    assert r.json()["d"][0]["status"] == "OK", r.text
    assert "Staff Engineer" in titles()["u100006"]  # an OData write is seen too


# ---------------------------------------------------------------- goals
def test_goal_and_milestone_crud(sf: RunningEmulator) -> None:
    s = _basic(sf)
    base = f"{sf.url}/odata/v2"
    goal = {
        "userId": "u100002",
        "type": "user",
        "name": "Ship v2",
        "metric": "GA by Q3",
        "category": "Goals",
        "start": "/Date(1735689600000)/",
        "due": "/Date(1767139200000)/",
    }
    r = s.post(f"{base}/Goal_1?$format=json", json=goal, timeout=30)
    assert r.status_code == 201, r.text
    created = r.json()["d"]
    gid = int(created["id"])
    assert (
        created["__metadata"]["uri"] == f"{base}/Goal_1({gid}L)" and created["due"] == "/Date(1767139200000)/"
    )
    s.post(f"{base}/Goal_1?$format=json", json={**goal, "userId": "u100003", "name": "Other"}, timeout=30)
    mine = _get(s, f"{base}/Goal_1", **{"$filter": "userId eq 'u100002'"})["results"]
    assert [g["name"] for g in mine] == ["Ship v2"]
    merge = s.post(
        f"{base}/Goal_1({gid}L)",
        json={"done": 40.0, "state": "On Track"},
        headers={"X-HTTP-Method": "MERGE"},
        timeout=30,
    )
    assert merge.status_code == 204
    assert s.patch(f"{base}/Goal_1({gid}L)", json={"weight": 25}, timeout=30).status_code == 204
    got = _get(s, f"{base}/Goal_1({gid}L)")
    assert (got["done"], got["state"], got["weight"], got["name"]) == (40.0, "On Track", 25.0, "Ship v2")
    # the server keeps stateLabel, currentOwner, planId and guid; a body cannot set them
    assert (got["stateLabel"], got["currentOwner"], got["planId"]) == ("On Track", "u100002", "1")
    assert uuid.UUID(got["guid"]) and got["flag"] == 0
    # userId is updatable in SAP's schema: a goal can change hands
    moved = s.patch(f"{base}/Goal_1({gid}L)", json={"userId": "u100004"}, timeout=30)
    assert moved.status_code == 204 and _get(s, f"{base}/Goal_1({gid}L)")["currentOwner"] == "u100004"
    put = s.put(f"{base}/Goal_1({gid}L)", json={"name": "Ship v2.1", "userId": "u100002"}, timeout=30)
    after_put = _get(s, f"{base}/Goal_1({gid}L)")
    assert put.status_code == 204 and after_put["metric"] is None and after_put["guid"] == got["guid"]
    ms = s.post(
        f"{base}/GoalMilestone_1",
        json={"objId": str(gid), "description": "Beta", "start": "/Date(1751328000000)/"},
        timeout=30,
    )
    assert ms.status_code == 201, ms.text
    mid = ms.json()["d"]["id"]
    second = s.post(f"{base}/GoalMilestone_1", json={"objId": str(gid), "description": "GA"}, timeout=30)
    assert second.status_code == 201, second.text
    expanded = _get(s, f"{base}/Goal_1({gid}L)", **{"$expand": "milestones"})
    got_ms = expanded["milestones"]["results"]
    assert [(m["description"], m["index"]) for m in got_ms] == [("Beta", 0), ("GA", 1)]
    assert got_ms[0]["start"] == "/Date(1751328000000)/" and got_ms[0]["due"] is None
    assert (
        s.post(
            f"{base}/GoalMilestone_1({mid}L)",
            json={"due": "/Date(1752000000000)/"},  # "Actual Date": when it was reached
            headers={"X-HTTP-Method": "MERGE"},
            timeout=30,
        ).status_code
        == 204
    )
    # fields SF does not have are refused like any unknown property (COE0021)
    for body in (
        {"objId": str(gid), "target": "x"},
        {"objId": str(gid), "actual": "1", "percentComplete": 5},
    ):
        bad = s.post(f"{base}/GoalMilestone_1", json=body, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND", body
        assert "GoalMilestone_1/" + next(k for k in body if k != "objId") in bad.text
    bad_merge = s.patch(f"{base}/GoalMilestone_1({mid}L)", json={"target": "x"}, timeout=30)
    assert bad_merge.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND"
    aligned = s.patch(f"{base}/Goal_1({gid}L)", json={"parentId": "1001"}, timeout=30)
    assert aligned.status_code == 400 and "Goal_1/parentId" in aligned.json()["error"]["message"]["value"]
    assert s.delete(f"{base}/Goal_1({gid}L)", timeout=30).status_code == 204
    assert s.get(f"{base}/Goal_1({gid}L)", timeout=30).status_code == 404
    assert s.get(f"{base}/GoalMilestone_1({mid}L)", timeout=30).status_code == 404  # went with its goal
    orphan = s.post(f"{base}/GoalMilestone_1", json={"objId": "999999", "description": "x"}, timeout=30)
    assert orphan.status_code == 400


def test_goal_validation_errors(sf: RunningEmulator) -> None:
    s = _basic(sf)
    url = f"{sf.url}/odata/v2/Goal_1"
    missing = s.post(url, json={"userId": "u100002"}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "COE_MISSING_REQUIRED_PROPERTIES"
    long = s.post(url, json={"userId": "u100002", "name": "x" * 501}, timeout=30)
    assert long.status_code == 400 and long.json()["error"]["code"] == "COE_PROPERTY_EXCEED_MAX_LENGTH"
    assert s.post(url, json={"userId": "u100002", "name": "x" * 500}, timeout=30).status_code == 201
    unknown = s.post(url, json={"userId": "u100002", "name": "n", "colour": "red"}, timeout=30)
    assert unknown.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND"
    assert s.post(url, json={"userId": "ghost", "name": "n"}, timeout=30).status_code == 400


def test_goal_template_without_desc(start_emulator: Any) -> None:
    run = start_emulator("successfactors", org=SandboxOrg(10, seed=5), goal_desc=False)
    s = _basic(run)
    doc = s.get(f"{run.url}/odata/v2/Goal_1/$metadata", timeout=30).content
    assert b'Name="name"' in doc and b'Name="desc"' not in doc  # like SAP's published templates
    body = {"userId": "u100002", "name": "n", "desc": "more"}
    r = s.post(f"{run.url}/odata/v2/Goal_1", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND"
    assert "Goal_1/desc" in r.json()["error"]["message"]["value"]


# ---------------------------------------------------------------- errors and faults
def test_error_bodies(sf: RunningEmulator) -> None:
    s = _basic(sf)
    r = s.get(f"{sf.url}/odata/v2/Address2", timeout=30)
    assert r.status_code == 400 and r.json() == {
        "error": {
            "code": "COE_ENTITY_NOT_FOUND",
            "message": {"lang": "en-US", "value": "[COE0007]invalid entity (or function) name: Address2"},
        }
    }
    assert s.get(f"{sf.url}/odata/v2/User('ghost')", timeout=30).status_code == 404
    assert s.get(f"{sf.url}/odata/v2/User", params={"$filter": "userId eq"}, timeout=30).status_code == 400


def test_throttling_carries_retry_after_and_an_sf_body(start_emulator: Any) -> None:
    run = start_emulator("successfactors", org=SandboxOrg(10, seed=1), faults="429=1,retry_after=7")
    r = _basic(run).get(f"{run.url}/odata/v2/User", timeout=30)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert (
        r.json()["error"]["code"] == "COE_TOO_MANY_REQUESTS"
        and r.json()["error"]["message"]["lang"] == "en-US"
    )
    run.emulator.faults = type(run.emulator.faults)(FaultSpec.parse("503=1"))
    down = _basic(run).get(f"{run.url}/odata/v2/User", timeout=30)
    assert down.status_code == 503 and "maintenance" in down.json()["error"]["message"]["value"]
