"""``okrsync sandbox serve SYSTEM`` in a subprocess: the printed settings alone reach the emulator.

Each test starts the CLI, reads its first stdout line (one JSON object), makes one authenticated
request with the vendor's own client or wire format using nothing but that line, then sends
SIGTERM and checks the server stopped cleanly and removed the keys and CA it generated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

import msal
import pytest
import requests
from lxml import etree
from simple_salesforce.api import Salesforce

from tests.sandbox.test_successfactors import build_test_assertion

WD = {"wd": "urn:com.workday/bsvc"}


@contextmanager
def serve_cli(*args: str) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "okrsync.cli", "sandbox", "serve", *args, "--workers", "50", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=30)
            pytest.fail(f"the CLI exited ({proc.returncode}) before listening: {proc.communicate()[1]}")
        info = json.loads(line)
        assert info["pid"] == proc.pid and info["base_url"].startswith("http")
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.communicate()[1]


def session(ca_bundle: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the sandbox CA (api-notes §7)
    if ca_bundle:
        s.verify = ca_bundle
    return s


def generated_files(conn: dict[str, Any]) -> list[str]:
    return [conn[k] for k in ("ca_bundle", "private_key_path", "certificate_path") if k in conn]


def test_entra_msal_client_credentials_then_graph() -> None:
    with serve_cli("entra") as info:
        conn = info["connection"]
        assert info["system"] == "entra" and conn["graph_url"] == info["base_url"]
        app = msal.ConfidentialClientApplication(
            conn["client_id"],
            client_credential=conn["client_secret"],
            authority=f"{conn['login_url']}/{conn['tenant_id']}",
            instance_discovery=False,
            http_client=session(conn["ca_bundle"]),
        )
        token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        assert "access_token" in token, token
        r = session(conn["ca_bundle"]).get(
            f"{conn['graph_url']}/v1.0/users?$select=id,employeeId&$top=999",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=30,
        )
        assert r.status_code == 200 and len(r.json()["value"]) == 50
        files = generated_files(conn)
        assert all(os.path.exists(f) for f in files)
    assert not any(os.path.exists(f) for f in files)  # SIGTERM cleaned up keys and CA


def test_entra_directory_option() -> None:
    with serve_cli("entra", "--directory", "empty") as info:
        conn = info["connection"]
        s = session(conn["ca_bundle"])
        token = s.post(
            f"{conn['login_url']}/{conn['tenant_id']}/oauth2/v2.0/token",
            data={
                "client_id": conn["client_id"],
                "client_secret": conn["client_secret"],
                "scope": "https://graph.microsoft.com/.default",
                "grant_type": "client_credentials",
            },
            timeout=30,
        ).json()["access_token"]
        r = s.get(f"{conn['graph_url']}/v1.0/users", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200 and r.json()["value"] == []
    usage = subprocess.run(
        [sys.executable, "-m", "okrsync.cli", "sandbox", "serve", "workday", "--directory", "empty"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "entra only" in usage.stderr


def test_successfactors_saml_bearer_and_basic() -> None:
    with serve_cli("successfactors") as info:
        conn = info["connection"]
        assert conn["auth"] == "saml"
        with open(conn["private_key_path"], "rb") as k, open(conn["certificate_path"], "rb") as c:
            assertion = build_test_assertion(
                k.read(),
                c.read(),
                client_id=conn["client_id"],
                user_id=conn["user_id"],
                token_url=f"{conn['base_url']}/oauth/token",
            )
        token = session().post(
            f"{conn['base_url']}/oauth/token",
            data={
                "company_id": conn["company_id"],
                "client_id": conn["client_id"],
                "grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer",
                "assertion": assertion,
            },
            timeout=30,
        )
        assert token.status_code == 200, token.text
        r = session().get(
            f"{conn['base_url']}/odata/v2/User/$count",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            params={"$filter": "status in 't','f','T','F','e','d'"},
            timeout=30,
        )
        assert (r.status_code, r.text) == (200, "50")
        basic = info["alternatives"]["basic"]
        s = session()
        s.auth = (f"{basic['username']}@{basic['company_id']}", basic["password"])
        assert s.get(f"{basic['base_url']}/odata/v2/User?$top=1&$format=json", timeout=30).status_code == 200
        files = generated_files(conn)
    assert not any(os.path.exists(f) for f in files)


def get_workers(conn: dict[str, Any]) -> requests.Response:
    envelope = (
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wd="urn:com.workday/bsvc">'
        '<env:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(conn['username'])}</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
        f'#PasswordText">{escape(conn["password"])}</wsse:Password></wsse:UsernameToken></wsse:Security>'
        "</env:Header><env:Body><wd:Get_Workers_Request/></env:Body></env:Envelope>"
    )
    return session().post(
        f"{conn['base_url']}/ccx/service/{conn['tenant']}/Human_Resources",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
    )


def test_workday_soap_with_username_token_and_the_other_apis() -> None:
    with serve_cli("workday") as info:
        conn = info["connection"]
        assert conn["api"] == "soap" and set(info["alternatives"]) == {"rest", "raas"}
        r = get_workers(conn)
        assert r.status_code == 200
        total = etree.fromstring(r.content).findtext(".//wd:Response_Results/wd:Total_Results", namespaces=WD)
        assert total == "50"
        raas = info["alternatives"]["raas"]
        report = session().get(
            f"{raas['base_url']}/ccx/service/customreport2/{raas['tenant']}/{raas['report_owner']}/"
            f"{raas['report_name']}",
            params={"format": "json"},
            auth=(raas["username"], raas["password"]),
            timeout=30,
        )
        assert report.status_code == 200 and report.json()["Report_Entry"]


def test_workday_api_option_selects_rest() -> None:
    with serve_cli("workday", "--api", "rest") as info:
        conn = info["connection"]
        assert conn["api"] == "rest" and set(info["alternatives"]) == {"soap", "raas"}
        token = session().post(
            f"{conn['base_url']}/ccx/oauth2/{conn['tenant']}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": conn["refresh_token"],
                "client_id": conn["client_id"],
                "client_secret": conn["client_secret"],
            },
            timeout=30,
        )
        assert token.status_code == 200, token.text
        r = session().get(
            f"{conn['base_url']}/ccx/api/v1/{conn['tenant']}/workers",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["data"]


def test_workday_faults_option() -> None:
    with serve_cli("workday", "--faults", "429=1,retry_after=4") as info:
        r = get_workers(info["connection"])
        assert (r.status_code, r.headers["Retry-After"]) == (429, "4")
        assert etree.fromstring(r.content).findtext(".//faultcode") == "SOAP-ENV:Client.processingFault"
    bad = subprocess.run(
        [sys.executable, "-m", "okrsync.cli", "sandbox", "serve", "workday", "--faults", "boom=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown fault" in bad.stderr


def test_salesforce_simple_salesforce_with_the_printed_settings() -> None:
    with serve_cli("salesforce") as info:
        conn = info["connection"]
        sf = Salesforce(
            username=conn["username"],
            password=conn["password"],
            security_token=conn["security_token"],
            domain=conn["domain"],
            session=session(conn["ca_bundle"]),
        )
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 50
        files = generated_files(conn)
    assert not any(os.path.exists(f) for f in files)
