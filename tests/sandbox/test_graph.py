"""Fidelity of the Graph/Entra emulator, proved by independent clients.

msal obtains tokens exactly as a production connector would; msgraph-sdk (kiota) lists users,
follows nextLinks, runs delta rounds, parses error bodies and reads Viva Learning activities;
plain ``requests`` covers the limits and error shapes Graph documents. If a client disagrees
with the emulator, the emulator is wrong.

Every client here disables ``trust_env``: these machines set ``REQUESTS_CA_BUNDLE``, which would
otherwise silently replace the sandbox CA (api-notes §7).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msal
import pytest
import requests
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.course_status import CourseStatus
from msgraph.generated.models.learning_assignment import LearningAssignment
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

from okrsync.sandbox import FaultSpec, RunningEmulator, SandboxOrg, serve
from okrsync.sandbox.graph import GraphEmulator

with warnings.catch_warnings():  # msgraph-sdk's generated builders warn about themselves when defined
    warnings.simplefilter("ignore", DeprecationWarning)
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
pytestmark = pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
SELECT = "id,displayName,mail,userPrincipalName,jobTitle,department,employeeId,accountEnabled"
DELTA_SELECT = ["displayName", "jobTitle", "department", "employeeId", "accountEnabled", "manager"]


# ---------------------------------------------------------------- clients
def http_session(ca_path: str | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path or True
    return session


def msal_app(run: RunningEmulator, credential: Any = None) -> msal.ConfidentialClientApplication:
    conn = run.connection()
    return msal.ConfidentialClientApplication(
        conn["client_id"],
        client_credential=credential if credential is not None else conn["client_secret"],
        authority=f"{conn['login_url']}/{conn['tenant_id']}",
        instance_discovery=False,
        http_client=http_session(conn["ca_bundle"]),
    )


def access_token(run: RunningEmulator) -> str:
    result = msal_app(run).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert "access_token" in result, result
    return str(result["access_token"])


@dataclass
class Graph:
    """A ``requests`` client with a token from msal: the plain-HTTP view of the emulator."""

    run: RunningEmulator
    session: requests.Session

    @classmethod
    def connect(cls, run: RunningEmulator) -> Graph:
        session = http_session(run.ca_path)
        session.headers["Authorization"] = f"Bearer {access_token(run)}"
        return cls(run, session)

    @property
    def emulator(self) -> GraphEmulator:
        emulator = self.run.emulator
        assert isinstance(emulator, GraphEmulator)
        return emulator

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.run.url}{path}"
        return self.session.request(method, url, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def all_pages(self, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = path
        while url:
            resp = self.get(url, **kwargs)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            out.extend(body["value"])
            url = body.get("@odata.nextLink")
        return out

    def delta_round(self, url: str) -> tuple[list[dict[str, Any]], str]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while True:
            assert next_url is not None
            resp = self.get(next_url)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            items.extend(body["value"])
            next_url = body.get("@odata.nextLink")
            if next_url is None:
                return items, body["@odata.deltaLink"]


class StaticCredential:
    """A TokenCredential that hands out a token msal obtained from the emulator."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3000)


def sdk_client(run: RunningEmulator) -> GraphServiceClient:
    """msgraph-sdk pointed at the emulator: its own middleware, our CA, our base URL."""
    assert run.ca_path is not None
    auth = AzureIdentityAuthenticationProvider(
        StaticCredential(access_token(run)), allowed_hosts=["127.0.0.1"]
    )
    verify = ssl.create_default_context(cafile=run.ca_path)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=verify, trust_env=False)
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{run.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def iterate_all(client: GraphServiceClient, first: Any) -> list[Any]:
    """Every item from ``first`` on, following nextLinks the SDK's own way (PageIterator)."""
    items: list[Any] = []

    def keep(item: Any) -> bool:
        items.append(item)
        return True

    await PageIterator(first, client.request_adapter).iterate(keep)
    return items


@pytest.fixture(scope="module")
def shared() -> Iterator[Graph]:
    """A read-only emulator over 1,500 workers shared by the tests that do not write."""
    with serve(GraphEmulator(SandboxOrg(1500, seed=5))) as run:
        yield Graph.connect(run)


@pytest.fixture
def graph(start_emulator: Callable[..., RunningEmulator]) -> Callable[..., Graph]:
    def start(org: SandboxOrg | None = None, faults: str | None = None, **options: Any) -> Graph:
        return Graph.connect(
            start_emulator("entra", org=org or SandboxOrg(120, seed=2), faults=faults, **options)
        )

    return start


def ids_by_index(org: SandboxOrg) -> dict[str, int]:
    return {org.entra_id(w.index): w.index for w in org}


# ---------------------------------------------------------------- login (msal)
def test_connection_settings_reach_one_https_server(shared: Graph) -> None:
    conn = shared.run.connection()
    assert conn["type"] == "entra"
    assert conn["login_url"] == conn["graph_url"] == shared.run.url
    assert conn["ca_bundle"] == shared.run.ca_path
    assert {
        "tenant_id",
        "client_id",
        "client_secret",
        "certificate_thumbprint",
        "certificate_path",
        "private_key_path",
    } <= set(conn)


def test_msal_client_secret_gets_token(shared: Graph) -> None:
    result = msal_app(shared.run).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] > 0


def test_msal_wrong_secret_yields_aadsts7000215(shared: Graph) -> None:
    result = msal_app(shared.run, "not-the-secret").acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(result)


@pytest.mark.parametrize("style", ["sha1-thumbprint", "public-certificate"])
def test_msal_certificate_credential(shared: Graph, style: str) -> None:
    conn = shared.run.connection()
    with open(conn["private_key_path"]) as fh:
        credential: dict[str, str] = {"private_key": fh.read()}
    if style == "sha1-thumbprint":  # RS256 + x5t
        credential["thumbprint"] = conn["certificate_thumbprint"]
    else:  # PS256 + x5t#S256
        with open(conn["certificate_path"]) as fh:
            credential["public_certificate"] = fh.read()
    result = msal_app(shared.run, credential).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert "access_token" in result, result


def test_foreign_certificate_is_rejected(shared: Graph, tmp_path: Any) -> None:
    from okrsync.sandbox.graph.login import generate_certificate

    other = generate_certificate(str(tmp_path), "someone-else")
    assert other.key_path is not None
    with open(other.key_path) as fh:
        credential = {"private_key": fh.read(), "thumbprint": other.sha1_thumbprint}
    result = msal_app(shared.run, credential).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("User.Read", "invalid_scope", 70011),
        ("https://graph.microsoft.com/User.Read", "invalid_scope", 70011),
        ("https://storage.azure.com/.default", "invalid_resource", 500011),
    ],
)
def test_client_credentials_need_a_default_scope(shared: Graph, scope: str, error: str, code: int) -> None:
    conn = shared.run.connection()
    resp = http_session(conn["ca_bundle"]).post(
        f"{conn['login_url']}/{conn['tenant_id']}/oauth2/v2.0/token",
        timeout=30,
        data={
            "client_id": conn["client_id"],
            "client_secret": conn["client_secret"],
            "scope": scope,
            "grant_type": "client_credentials",
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    assert resp.json()["error_codes"] == [code]


def test_graph_rejects_missing_bad_and_expired_tokens(graph: Callable[..., Graph]) -> None:
    g = graph(faults="token_ttl=3")  # long enough for a TLS handshake on a loaded machine
    anonymous = http_session(g.run.ca_path)
    for headers, message in [({}, "empty"), ({"Authorization": "Bearer nope"}, "not well formed")]:
        resp = anonymous.get(f"{g.run.url}/v1.0/users", headers=headers, timeout=30)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert message in resp.json()["error"]["message"]
        assert resp.headers["request-id"] == resp.json()["error"]["innerError"]["request-id"]
    assert g.get("/v1.0/users?$top=1").status_code == 200
    time.sleep(3.5)
    expired = g.get("/v1.0/users?$top=1")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


# ---------------------------------------------------------------- msgraph-sdk
def test_msgraph_sdk_lists_every_user_with_manager(graph: Callable[..., Graph]) -> None:
    # msgraph-sdk spends ~10 ms deserialising each User, so a few hundred users over 3 pages suffice
    org = SandboxOrg(260, seed=5)
    g = graph(org)

    async def run() -> list[Any]:
        client = sdk_client(g.run)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "displayName", "employeeId", "accountEnabled"],
            expand=["manager($select=id)"],
            top=100,
        )
        first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first is not None and first.odata_next_link is not None
        assert first.odata_next_link.startswith(g.run.url)
        return await iterate_all(client, first)

    users = asyncio.run(run())
    assert len(users) == len(org)
    index = ids_by_index(org)
    for user in users:
        worker = org.workers[index[user.id]]
        assert user.employee_id == worker.employee_id
        assert user.account_enabled is (worker.status == "active")
        expected = None if worker.manager is None else org.entra_id(worker.manager)
        assert (user.manager.id if user.manager else None) == expected


def test_msgraph_sdk_parses_graph_errors(shared: Graph) -> None:
    root = shared.emulator.org.entra_id(0)

    async def run() -> ODataError:
        client = sdk_client(shared.run)
        with pytest.raises(ODataError) as caught:
            await client.users.by_user_id(root).manager.get()
        return caught.value

    error = asyncio.run(run())
    assert error.response_status_code == 404
    assert error.error is not None and error.error.code == "Request_ResourceNotFound"


def test_msgraph_sdk_delta_rounds_see_edits(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(400, seed=11)
    g = graph(org, delta_page_size=150)
    mover, terminated, renamed = (org.workers[i] for i in (300, 330, 360))
    new_manager = org.workers[5]

    async def delta_round(client: GraphServiceClient, link: str | None) -> tuple[dict[str, Any], str, int]:
        if link is None:
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=DELTA_SELECT)
            page = await client.users.delta.get(
                request_configuration=RequestConfiguration(query_parameters=query)
            )
        else:
            page = await client.users.delta.with_url(link).get()
        seen: dict[str, Any] = {}
        pages = 1
        while True:
            assert page is not None and page.value is not None
            seen.update((str(u.id), u) for u in page.value)  # dedupe by id, last wins
            if page.odata_next_link is None:
                assert page.odata_delta_link is not None
                return seen, page.odata_delta_link, pages
            page = await client.users.delta.with_url(page.odata_next_link).get()
            pages += 1

    async def scenario() -> None:
        client = sdk_client(g.run)
        initial, link, pages = await delta_round(client, None)
        assert len(initial) == len(org) and pages == 3
        some = initial[org.entra_id(mover.index)]
        # kiota turns GUID-shaped strings in untyped data into UUIDs
        assert str(some.additional_data["manager@delta"][0]["id"]) == org.entra_id(mover.manager or 0)
        assert "manager@delta" not in initial[org.entra_id(0)].additional_data

        quiet, link, _ = await delta_round(client, link)
        assert quiet == {}

        org.move(mover.employee_id, new_manager.employee_id)
        org.terminate(terminated.employee_id)
        org.rename(renamed.employee_id, title="Principal Engineer")
        hired = org.hire(new_manager.employee_id, given_name="Nova", family_name="Quinn")
        changes, link, _ = await delta_round(client, link)
        assert set(changes) == {org.entra_id(w.index) for w in (mover, terminated, renamed, hired)}
        moved = changes[org.entra_id(mover.index)].additional_data["manager@delta"]
        assert [(m["@odata.type"], str(m["id"])) for m in moved] == [
            ("#microsoft.graph.user", org.entra_id(new_manager.index))
        ]
        assert changes[org.entra_id(terminated.index)].account_enabled is False
        assert changes[org.entra_id(renamed.index)].job_title == "Principal Engineer"
        assert changes[org.entra_id(hired.index)].display_name == "Nova Quinn"

    asyncio.run(scenario())


def test_msgraph_sdk_learning_activity_spelling(graph: Callable[..., Graph]) -> None:
    g = graph()
    provider = g.emulator.learning.sandbox_provider_id
    learner = g.emulator.org.entra_id(3)
    base = f"/v1.0/employeeExperience/learningProviders/{provider}"
    content = {
        "title": "Negotiation 101",
        "contentWebUrl": "https://learning.example.com/c/1",
        "languageTag": "en-us",
    }
    assert g.request("PATCH", f"{base}/learningContents(externalId='LP1')", json=content).status_code == 202

    async def scenario() -> tuple[Any, Any]:
        client = sdk_client(g.run)
        item = client.employee_experience.learning_providers.by_learning_provider_id(provider)
        created = await item.learning_course_activities.post(
            LearningAssignment(
                odata_type="#microsoft.graph.learningAssignment",
                externalcourse_activity_id="KR-7",
                learning_content_id="LP1",
                learner_user_id=learner,
                status=CourseStatus.NotStarted,
            )
        )
        read = await item.learning_course_activities_with_externalcourse_activity_id("KR-7").get()
        return created, read

    created, read = asyncio.run(scenario())
    assert created.externalcourse_activity_id == "KR-7" and created.status == CourseStatus.NotStarted
    assert isinstance(read, LearningAssignment)
    assert read.externalcourse_activity_id == "KR-7" and read.learner_user_id == learner


# ---------------------------------------------------------------- /users with requests
def test_top_bounds_and_paging(shared: Graph) -> None:
    for top in ("1000", "0", "abc"):
        resp = shared.get(f"/v1.0/users?$top={top}")
        assert resp.status_code == 400
        assert "Invalid page size specified" in resp.json()["error"]["message"]
    page = shared.get(f"/v1.0/users?$select={SELECT}").json()
    assert len(page["value"]) == 100
    assert page["@odata.context"].endswith(f"$metadata#users({SELECT})")
    link = page["@odata.nextLink"]
    assert (
        link.startswith(f"{shared.run.url}/v1.0/users?")
        and f"$select={SELECT}" in link
        and "$skiptoken=" in link
    )
    everyone = shared.all_pages("/v1.0/users?$select=id&$top=999")
    assert len(everyone) == len({u["id"] for u in everyone}) == 1500
    assert shared.get("/v1.0/users?$skiptoken=forged").status_code == 400


def test_select_and_expand_shapes(shared: Graph) -> None:
    org = shared.emulator.org
    default = shared.get("/v1.0/users?$top=1").json()["value"][0]
    assert set(default) == {
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    }
    bad = shared.get("/v1.0/users?$select=id,favouriteColour")
    assert bad.status_code == 400
    assert (
        bad.json()["error"]["message"] == "Could not find a property named 'favouriteColour' on type "
        "'microsoft.graph.user'."
    )
    users = shared.get(
        "/v1.0/users?$select=id,employeeId&$expand=manager($select=id,displayName)&$top=5"
    ).json()
    root, report = users["value"][0], users["value"][1]
    assert root["employeeId"] == org.employee_id(0) and "manager" not in root
    assert report["manager"] == {
        "@odata.type": "#microsoft.graph.user",
        "id": org.entra_id(0),
        "displayName": org.workers[0].display_name,
    }
    assert shared.get("/v1.0/users?$expand=manager,directReports").status_code == 400
    assert shared.get("/v1.0/users?$expand=bogus").status_code == 400


def test_filters_count_and_consistency_level(shared: Graph) -> None:
    org = shared.emulator.org
    disabled = shared.all_pages("/v1.0/users?$filter=accountEnabled eq false&$select=id&$top=999")
    assert len(disabled) == sum(1 for w in org if w.status != "active")
    one = shared.get(f"/v1.0/users?$filter=employeeId eq '{org.employee_id(42)}'&$select=id").json()["value"]
    assert one == [{"id": org.entra_id(42)}]
    sales = shared.all_pages(
        "/v1.0/users?$filter=department eq 'sales' and startswith(jobTitle,'Account')"
        "&$select=department,jobTitle&$top=999"
    )
    assert sales and all(u["department"] == "Sales" and u["jobTitle"].startswith("Account") for u in sales)
    for query in (
        "$filter=department ne 'Sales'",
        "$filter=endswith(mail,'@example.com')",
        "$count=true",
        "$filter=officeLocation eq 'Paris'",
        '$search="displayName:a"',
    ):
        resp = shared.get(f"/v1.0/users?{query}")
        assert resp.status_code == 400, query
        assert resp.json()["error"]["code"] == "Request_UnsupportedQuery", query
    eventual = {"ConsistencyLevel": "eventual"}
    counted = shared.get(
        "/v1.0/users?$filter=department ne 'Sales'&$count=true&$select=id", headers=eventual
    ).json()
    assert counted["@odata.count"] == sum(1 for w in org if w.department != "Sales")
    assert shared.get("/v1.0/users/$count", headers=eventual).text == "1500"
    assert shared.get("/v1.0/users?$filter=accountEnabled eq 'false'").status_code == 400
    assert shared.get("/v1.0/users?$filter=shoeSize eq 4").status_code == 400


def test_single_user_manager_and_reports(shared: Graph) -> None:
    org = shared.emulator.org
    root = org.workers[0]
    by_upn = shared.get(f"/v1.0/users/{root.email.upper()}?$select=id,employeeId").json()
    assert by_upn["id"] == org.entra_id(0) and by_upn["employeeId"] == root.employee_id
    missing = shared.get("/v1.0/users/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    no_manager = shared.get(f"/v1.0/users/{org.entra_id(0)}/manager")
    assert no_manager.status_code == 404 and no_manager.json()["error"]["code"] == "Request_ResourceNotFound"
    report = next(w for w in org if w.manager == 0)
    manager = shared.get(f"/v1.0/users/{org.entra_id(report.index)}/manager?$select=id,displayName").json()
    assert manager["id"] == org.entra_id(0) and manager["@odata.type"] == "#microsoft.graph.user"
    reports = shared.all_pages(f"/v1.0/users/{org.entra_id(0)}/directReports?$top=3&$select=id")
    assert {r["id"] for r in reports} == {org.entra_id(w.index) for w in org if w.manager == 0}
    chain = shared.get(
        f"/v1.0/users/{org.entra_id(report.index)}?$expand=manager($levels=max;$select=id)",
        headers={"ConsistencyLevel": "eventual"},
    ).json()
    assert chain["manager"]["id"] == org.entra_id(0) and "manager" not in chain["manager"]


def test_manager_ref_write_and_read_back(graph: Callable[..., Graph]) -> None:
    g = graph()
    org = g.emulator.org
    user, boss = org.entra_id(50), org.entra_id(7)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss}"}
    assert g.request("PUT", f"/v1.0/users/{user}/manager/$ref", json=ref).status_code == 204
    assert g.get(f"/v1.0/users/{user}/manager").json()["id"] == boss
    assert (
        g.get(f"/v1.0/users/{user}/manager/$ref")
        .json()["@odata.id"]
        .endswith(f"/directoryObjects/{boss}/Microsoft.DirectoryServices.User")
    )
    ghost = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{org.entra_id(10_000)}"}
    assert g.request("PUT", f"/v1.0/users/{user}/manager/$ref", json=ghost).status_code == 404
    selfie = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{user}"}
    assert g.request("PUT", f"/v1.0/users/{user}/manager/$ref", json=selfie).status_code == 400
    assert g.request("DELETE", f"/v1.0/users/{user}/manager/$ref").status_code == 204
    assert g.get(f"/v1.0/users/{user}/manager").status_code == 404
    assert g.request("DELETE", f"/v1.0/users/{user}/manager/$ref").status_code == 404


def test_patch_user(graph: Callable[..., Graph]) -> None:
    g = graph()
    uid = g.emulator.org.entra_id(9)
    resp = g.request(
        "PATCH", f"/v1.0/users/{uid}", json={"jobTitle": "Head of Snacks", "department": "Operations"}
    )
    assert resp.status_code == 204 and resp.content == b""
    back = g.get(f"/v1.0/users/{uid}?$select=jobTitle,department").json()
    assert (back["jobTitle"], back["department"]) == ("Head of Snacks", "Operations")
    for body in ({"shoeSize": 44}, {"id": "x"}, {"accountEnabled": "yes"}, {"manager": {"id": "x"}}):
        assert g.request("PATCH", f"/v1.0/users/{uid}", json=body).status_code == 400, body


def test_post_users_into_an_empty_directory(graph: Callable[..., Graph]) -> None:
    g = graph(directory="empty")
    assert g.get("/v1.0/users").json()["value"] == []
    body = {
        "accountEnabled": True,
        "displayName": "Ada Lovelace",
        "mailNickname": "ada",
        "userPrincipalName": "ada@example.com",
        "passwordProfile": {"password": "x!Y7" * 4},
        "employeeId": "100001",
        "jobTitle": "Countess",
    }
    created = g.request("POST", "/v1.0/users", json=body)
    assert created.status_code == 201, created.text
    assert (
        created.json()["userPrincipalName"] == "ada@example.com" and "passwordProfile" not in created.json()
    )
    duplicate = g.request("POST", "/v1.0/users", json=body)
    assert duplicate.status_code == 400
    assert "userPrincipalName already exists" in duplicate.json()["error"]["message"]
    assert (
        g.request("POST", "/v1.0/users", json={**body, "userPrincipalName": "x@elsewhere.org"}).status_code
        == 400
    )
    no_nick = {k: v for k, v in body.items() if k != "mailNickname"} | {"userPrincipalName": "b@example.com"}
    assert "mailNickname" in g.request("POST", "/v1.0/users", json=no_nick).json()["error"]["message"]
    assert [u["employeeId"] for u in g.all_pages("/v1.0/users?$select=employeeId")] == ["100001"]


def test_deleted_user_leaves_listing(graph: Callable[..., Graph]) -> None:
    g = graph()
    uid = g.emulator.org.entra_id(30)
    assert g.request("DELETE", f"/v1.0/users/{uid}").status_code == 204
    assert g.get(f"/v1.0/users/{uid}").status_code == 404
    assert uid not in {u["id"] for u in g.all_pages("/v1.0/users?$select=id&$top=999")}


# ---------------------------------------------------------------- $batch
def batch(g: Graph, requests_: list[dict[str, Any]]) -> requests.Response:
    return g.request("POST", "/v1.0/$batch", json={"requests": requests_})


def test_batch_limits(graph: Callable[..., Graph]) -> None:
    g = graph()
    many = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    assert batch(g, many).status_code == 400
    assert batch(g, many[:20]).status_code == 200
    dupes = [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]
    assert batch(g, dupes).status_code == 400
    no_type = [
        {"id": "1", "method": "PATCH", "url": f"/users/{g.emulator.org.entra_id(1)}", "body": {"city": "X"}}
    ]
    resp = batch(g, no_type)
    assert resp.status_code == 400 and "Content-Type" in resp.json()["error"]["message"]
    absolute = [{"id": "1", "method": "GET", "url": f"{g.run.url}/v1.0/users"}]
    assert batch(g, absolute).status_code == 400
    unknown_dep = [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]
    assert batch(g, unknown_dep).status_code == 400


def test_batch_items_depend_and_fail_independently(graph: Callable[..., Graph]) -> None:
    g = graph()
    org = g.emulator.org
    user, boss = org.entra_id(60), org.entra_id(8)
    json_headers = {"Content-Type": "application/json"}
    items: list[dict[str, Any]] = [
        {
            "id": "set",
            "method": "PUT",
            "url": f"/users/{user}/manager/$ref",
            "headers": json_headers,
            "body": {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss}"},
        },
        {"id": "read", "method": "GET", "url": f"/users/{user}/manager?$select=id", "dependsOn": ["set"]},
        {"id": "bad", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        {"id": "after-bad", "method": "GET", "url": "/users?$top=1", "dependsOn": ["bad"]},
        *({"id": f"r{i}", "method": "GET", "url": f"/users/{org.entra_id(i)}?$select=id"} for i in range(8)),
    ]
    resp = batch(g, items)
    assert resp.status_code == 200
    responses = resp.json()["responses"]
    assert [r["id"] for r in responses] != [i["id"] for i in items]  # deterministic shuffle, not input order
    by_id = {r["id"]: r for r in responses}
    assert by_id["set"]["status"] == 204 and "body" not in by_id["set"]
    assert by_id["read"]["status"] == 200 and by_id["read"]["body"]["id"] == boss
    assert (
        by_id["bad"]["status"] == 404 and by_id["bad"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    )
    assert by_id["after-bad"]["status"] == 424
    # the same batch comes back in the same (shuffled) order: deterministic, so tests can rely on it
    assert [r["id"] for r in batch(g, items).json()["responses"]] == [r["id"] for r in responses]


def test_batch_items_are_throttled_one_by_one(graph: Callable[..., Graph]) -> None:
    g = graph()  # faults switched on after msal has logged in
    g.session.post(f"{g.run.url}/_sandbox/faults", json={"spec": "429=0.4,retry_after=3,seed=4"}, timeout=30)
    items = [{"id": str(i), "method": "GET", "url": "/users?$top=1&$select=id"} for i in range(20)]
    for _ in range(20):
        resp = batch(g, items)
        if resp.status_code == 200:
            break
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    statuses = Counter(r["status"] for r in resp.json()["responses"])
    assert statuses[429] > 0 and statuses[200] > 0
    throttled = next(r for r in resp.json()["responses"] if r["status"] == 429)
    assert throttled["headers"]["Retry-After"] == "3"
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


# ---------------------------------------------------------------- delta with requests
def test_delta_options_links_and_removals(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(300, seed=12)
    g = graph(org, delta_page_size=120)
    for option in ("$expand=manager", "$top=5", "$orderby=displayName"):
        resp = g.get(f"/v1.0/users/delta?{option}")
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "Request_UnsupportedQuery", option
    latest = g.get("/v1.0/users/delta?$select=displayName,manager&$deltatoken=latest").json()
    assert latest["value"] == [] and "@odata.deltaLink" in latest
    items, link = g.delta_round("/v1.0/users/delta?$select=displayName,manager")
    assert len(items) == len(org)
    assert g.delta_round(link)[0] == []

    leaver, purged, orphan = org.workers[200], org.workers[201], org.workers[202]
    g.request("DELETE", f"/v1.0/users/{org.entra_id(leaver.index)}")
    org.delete(purged.employee_id)
    g.request("DELETE", f"/v1.0/users/{org.entra_id(orphan.index)}/manager/$ref")
    changes, link = g.delta_round(link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[org.entra_id(leaver.index)] == {
        "id": org.entra_id(leaver.index),
        "@removed": {"reason": "changed"},
    }
    assert by_id[org.entra_id(purged.index)]["@removed"] == {"reason": "deleted"}
    assert by_id[org.entra_id(orphan.index)]["manager@delta"][0]["@removed"] == {"reason": "deleted"}
    latest_after = g.get(f"{g.run.url}/v1.0/users/delta?$deltatoken=latest").json()["@odata.deltaLink"]
    assert g.delta_round(latest_after)[0] == []


def test_delta_expiry_answers_410_with_fresh_location(graph: Callable[..., Graph]) -> None:
    g = graph()
    _, link = g.delta_round("/v1.0/users/delta?$select=displayName,manager")
    g.session.post(f"{g.run.url}/_sandbox/expire-delta", json={}, timeout=30)
    gone = g.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "resyncRequired"
    fresh = gone.headers["Location"]
    assert fresh.startswith(f"{g.run.url}/v1.0/users/delta?") and "$select=displayName,manager" in fresh
    assert len(g.delta_round(fresh)[0]) == len(g.emulator.org)


def test_delta_expiry_can_answer_sync_state_not_found(graph: Callable[..., Graph]) -> None:
    g = graph(faults="delta_ttl=0.2", delta_expiry="sync_state_not_found")
    _, link = g.delta_round("/v1.0/users/delta?$select=displayName")
    time.sleep(0.4)
    resp = g.get(link)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "syncStateNotFound"


# ---------------------------------------------------------------- Viva Learning
def test_learning_contents_and_activities(graph: Callable[..., Graph]) -> None:
    g = graph()
    providers = g.get("/v1.0/employeeExperience/learningProviders").json()["value"]
    assert [(p["displayName"], p["isCourseActivitySyncEnabled"]) for p in providers] == [
        ("okrsync-sandbox", True)
    ]
    base = f"/v1.0/employeeExperience/learningProviders/{providers[0]['id']}"
    incomplete = g.request("PATCH", f"{base}/learningContents(externalId='LP4471')", json={"title": "x"})
    assert incomplete.status_code == 400
    content = {
        "title": "OKR basics",
        "contentWebUrl": "https://l.example.com/4471",
        "languageTag": "en-us",
        "duration": "PT20M",
        "skillTags": ["okrs"],
    }
    upsert = g.request("PATCH", f"{base}/learningContents(externalId='LP4471')", json=content)
    assert upsert.status_code == 202 and upsert.json()["externalId"] == "LP4471"
    again = g.request(
        "PATCH", f"{base}/learningContents(externalId='LP4471')", json={"title": "OKR basics 2"}
    )
    assert again.json()["id"] == upsert.json()["id"] and again.json()["languageTag"] == "en-us"
    assert len(g.get(f"{base}/learningContents").json()["value"]) == 1

    learner = g.emulator.org.entra_id(4)
    activity = {
        "learningContentId": "LP4471",
        "learnerUserId": learner,
        "status": "notStarted",
        "externalCourseActivityId": "KR-1",
        "assignmentType": "required",
        "dueDateTime": {"dateTime": "2026-03-31T00:00:00", "timeZone": "UTC"},
        "notes": {"contentType": "text", "content": "Supports objective O-1"},
    }
    untyped = g.request("POST", f"{base}/learningCourseActivities", json=activity)
    assert untyped.status_code == 400 and "@odata.type" in untyped.json()["error"]["message"]
    typed = {"@odata.type": "#microsoft.graph.learningAssignment", **activity}
    created = g.request("POST", f"{base}/learningCourseActivities", json=typed)
    assert created.status_code == 201
    assert (
        created.json()["externalcourseActivityId"] == "KR-1"
        and "externalCourseActivityId" not in created.json()
    )
    assert g.request("POST", f"{base}/learningCourseActivities", json=typed).status_code == 409
    for spelling in ("externalcourseActivityId", "externalCourseActivityId"):
        read = g.get(f"{base}/learningCourseActivities({spelling}='KR-1')")
        assert read.status_code == 200 and read.json()["id"] == created.json()["id"]
    patched = g.request(
        "PATCH",
        f"{base}/learningCourseActivities/{created.json()['id']}",
        json={"status": "completed", "completionPercentage": 100},
    )
    assert patched.status_code == 204
    mine = g.get(f"/v1.0/users/{learner}/employeeExperience/learningCourseActivities").json()["value"]
    assert [(a["status"], a["completionPercentage"]) for a in mine] == [("completed", 100)]
    assert (
        g.request("DELETE", f"{base}/learningCourseActivities(externalcourseActivityId='KR-1')").status_code
        == 204
    )
    assert g.get(f"{base}/learningCourseActivities/{created.json()['id']}").status_code == 404


# ---------------------------------------------------------------- errors, faults, directory modes
def test_error_bodies_and_request_ids(shared: Graph) -> None:
    resp = shared.get("/v1.0/frobnicate", headers={"client-request-id": "abc-123"})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "BadRequest" and "frobnicate" in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["client-request-id"] == "abc-123" == resp.headers["client-request-id"]
    assert error["innerError"]["request-id"] == resp.headers["request-id"]
    ok = shared.get("/v1.0/users?$top=1")
    assert ok.headers["request-id"] and ok.headers["request-id"] != resp.headers["request-id"]
    assert shared.get("/v1.0/me").status_code == 400


def test_injected_throttling_is_graph_shaped(graph: Callable[..., Graph]) -> None:
    g = graph()
    g.session.post(f"{g.run.url}/_sandbox/faults", json={"spec": "429=1,retry_after=7"}, timeout=30)
    resp = g.get("/v1.0/users")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()["error"]["code"] == "TooManyRequests"
    assert resp.json()["error"]["innerError"]["request-id"] == resp.headers["request-id"]


def test_same_directory_mirrors_the_org(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(400, seed=21, defects=["dangling_manager", "duplicate_email"])
    gone = org.workers[399]
    org.delete(gone.employee_id)
    g = graph(org)
    users = {
        u["id"]: u
        for u in g.all_pages(
            f"/v1.0/users?$select={SELECT},employeeType&$expand=manager($select=id)&$top=999"
        )
    }
    assert org.entra_id(gone.index) not in users
    assert len(users) == len(org) - 1
    assert len({u["userPrincipalName"].lower() for u in users.values()}) == len(users)
    for w in org:
        if w.deleted:
            continue
        u = users[org.entra_id(w.index)]
        assert (u["employeeId"], u["jobTitle"], u["department"], u["mail"]) == (
            w.employee_id,
            w.title,
            w.department,
            w.email,
        )
        assert u["accountEnabled"] is (w.status == "active")  # pre-hires and leavers exist, disabled
        manager = u.get("manager", {}).get("id")
        assert manager == (None if w.manager is None else org.entra_id(w.manager))  # dangling ids included


def test_stale_directory_differs_in_the_promised_fraction(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(500, seed=8)
    g = graph(org, directory="stale", stale_fraction=0.2)
    users = g.all_pages("/v1.0/users?$select=id,jobTitle,department&$expand=manager($select=id)&$top=999")
    index = ids_by_index(org)
    differing = set()
    for u in users:
        w = org.workers[index[u["id"]]]
        expected_manager = None if w.manager is None else org.entra_id(w.manager)
        if (u["jobTitle"], u["department"], u.get("manager", {}).get("id")) != (
            w.title,
            w.department,
            expected_manager,
        ):
            differing.add(u["id"])
    assert len(differing) == round(len(org) * 0.2) == len(g.emulator.directory.stale)
    assert differing == set(g.emulator.directory.stale)
    # an HR edit still flows through, field by field, without un-staling other fields
    stale_id = sorted(differing)[0]
    worker = org.workers[index[stale_id]]
    before = g.get(f"/v1.0/users/{stale_id}?$select=jobTitle,department,officeLocation").json()
    org.rename(worker.employee_id, location="Reykjavik")
    after = g.get(f"/v1.0/users/{stale_id}?$select=jobTitle,department,officeLocation").json()
    assert after["officeLocation"] == "Reykjavik"
    assert (after["jobTitle"], after["department"]) == (before["jobTitle"], before["department"])


def test_sandbox_directory_snapshot(graph: Callable[..., Graph]) -> None:
    g = graph(directory="empty")
    snap = g.session.get(f"{g.run.url}/_sandbox/directory", timeout=30).json()
    assert snap["mode"] == "empty" and snap["users"] == []
    with pytest.raises(ValueError, match="directory mode"):
        GraphEmulator(SandboxOrg(5), directory="weird")
    with pytest.raises(ValueError, match="expiry"):
        GraphEmulator(SandboxOrg(5), delta_expiry="never", faults=FaultSpec())


# ---------------------------------------------------------------- groups (scoping a pull)
def test_msgraph_sdk_pages_transitive_user_members_of_a_nested_group(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(300, seed=8)
    g = graph(org)
    groups = g.emulator.groups
    inner = groups.create("Wave 2", [org.entra_id(i) for i in range(100, 160)])
    outer = groups.create("Pilot", [org.entra_id(i) for i in range(0, 120)], [inner.id])
    groups.change(inner.id, add_groups=[outer.id])  # a loop: members are still listed once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
            GraphUserRequestBuilder,
        )

    async def run() -> list[Any]:
        client = sdk_client(g.run)
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            select=["id", "employeeId"], top=50, count=True
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("ConsistencyLevel", "eventual")  # required with an OData cast
        builder = client.groups.by_group_id(outer.id).transitive_members.graph_user
        first = await builder.get(request_configuration=config)
        assert first is not None and first.odata_count == 160 and first.odata_next_link is not None
        return await iterate_all(client, first)

    users = asyncio.run(run())
    assert sorted(u.id for u in users) == sorted(org.entra_id(i) for i in range(0, 160))
    assert {u.employee_id for u in users} == {org.employee_id(i) for i in range(0, 160)}


def test_group_members_casts_deleted_users_and_errors(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(80, seed=9)
    g = graph(org)
    inner = g.emulator.groups.create("Inner", [org.employee_id(40), org.employee_id(41)])
    outer = g.emulator.groups.create("Outer", [org.entra_id(i) for i in range(10)], [inner.id])
    base = f"/v1.0/groups/{outer.id}"

    direct = g.all_pages(f"{base}/members?$select=id")
    assert [m["@odata.type"] for m in direct].count("#microsoft.graph.group") == 1
    assert len(direct) == 11
    eventual = {"headers": {"ConsistencyLevel": "eventual"}}
    cast = f"{base}/transitiveMembers/microsoft.graph.user?$count=true"
    users = g.all_pages(f"{cast}&$select=id,employeeId&$top=4", **eventual)
    assert {u["employeeId"] for u in users} == {org.employee_id(i) for i in (*range(10), 40, 41)}
    assert all(set(u) == {"@odata.type", "id", "employeeId"} for u in users)
    only_groups = g.all_pages(f"{base}/transitiveMembers/microsoft.graph.group?$count=true", **eventual)
    assert [x["displayName"] for x in only_groups] == ["Inner"]

    org.delete(org.employee_id(3))  # a deleted user leaves every membership
    users = g.all_pages(f"{cast}&$select=id", **eventual)
    assert org.entra_id(3) not in {u["id"] for u in users} and len(users) == 11

    group = g.get(f"{base}?$select=id,displayName").json()
    assert group["displayName"] == "Outer" and group["@odata.context"].endswith("$entity")
    missing = g.get("/v1.0/groups/0e4c5a1b-2f3d-4e5f-8a9b-0c1d2e3f4a5b/transitiveMembers")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    for query, code in (
        ("/transitiveMembers?$top=1000", "Request_UnsupportedQuery"),
        ("/members/microsoft.graph.device", "Request_UnsupportedQuery"),
        ("/members/microsoft.graph.user?$count=true", "Request_UnsupportedQuery"),  # no header
        ("/members?$expand=manager", "Request_BadRequest"),
    ):
        bad = g.get(base + query)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == code, (query, bad.text)
    unauthenticated = requests.get(f"{g.run.url}{base}/members", verify=g.run.ca_path, timeout=10)
    assert unauthenticated.status_code == 401


def test_sandbox_group_edit_routes_validate(graph: Callable[..., Graph]) -> None:
    org = SandboxOrg(20, seed=10)
    g = graph(org)
    session = http_session(g.run.ca_path)
    made = session.post(
        f"{g.run.url}/_sandbox/groups",
        json={"displayName": "Sales", "members": [org.employee_id(1), org.workers[2].email]},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    gid = made.json()["id"]
    changed = session.post(
        f"{g.run.url}/_sandbox/groups/{gid}/members",
        json={"add": [org.entra_id(5)], "remove": [org.employee_id(1)]},
        timeout=10,
    ).json()
    assert changed["members"] == [org.entra_id(2), org.entra_id(5)]
    unknown = session.post(f"{g.run.url}/_sandbox/groups", json={"members": ["nobody"]}, timeout=10)
    assert unknown.status_code == 400 and "no live user 'nobody'" in unknown.json()["error"]
