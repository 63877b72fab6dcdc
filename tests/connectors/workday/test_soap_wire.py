"""What goes on the wire: WSDL-valid requests, WS-Security, faults as typed errors, hostile XML."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from lxml import etree

from okrsync.connectors.workday import soap
from okrsync.errors import ApiError, AuthenticationError
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.workday.helpers import connector, pull
from tests.specs import WORKDAY_WSDL

zeep = pytest.importorskip("zeep")
WSDL = WORKDAY_WSDL
XSD = "{http://www.w3.org/2001/XMLSchema}schema"
ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
Start = Callable[..., RunningEmulator]
URL = "https://wd.example.com/ccx/service/acme/Human_Resources/v45.0"


@pytest.fixture(scope="module")
def schemas() -> tuple[Any, Any]:
    xsd = etree.XMLSchema(etree.parse(str(WSDL)).find(f".//{XSD}"))
    return xsd, zeep.Client(str(WSDL))


def spy(conn: Any) -> list[bytes]:
    sent: list[bytes] = []
    original = conn.http.session.request

    def request(method: str, url: str, **kw: Any) -> Any:
        sent.append(kw.get("data") or b"")
        return original(method, url, **kw)

    conn.http.session.request = request
    return sent


def test_every_request_validates_against_the_wsdl(start_emulator: Start, schemas: tuple[Any, Any]) -> None:
    xsd, client = schemas
    now = [datetime.now(UTC)]
    org = SandboxOrg(1500, seed=4, clock=lambda: now[0])
    boss = org.workers[0].employee_id
    org.hire(boss, family_name="Soon", hire_date=now[0].date() + timedelta(days=1))
    run = start_emulator("workday", org=org)
    conn = connector(run)
    sent = spy(conn)
    first, _ = pull(conn, watermark=now[0])
    org.move(org.workers[9].employee_id, boss)
    now[0] += timedelta(days=2)
    pull(conn, first.cursor, watermark=now[0])  # three windows, the hire re-queried
    conn.close()
    assert len(sent) >= 5
    element = client.get_element("ns0:Get_Workers_Request")
    for body in sent:
        root = etree.fromstring(body)
        token = root.find(f"{ENV}Header/{{{soap.WSSE_NS}}}Security/{{{soap.WSSE_NS}}}UsernameToken")
        assert token is not None
        assert token.find(f"{{{soap.WSSE_NS}}}Password").get("Type") == soap.PASSWORD_TEXT
        request = root.find(f"{ENV}Body")[0]
        assert xsd.validate(request), xsd.error_log  # order, types and names, strictly
        parsed = element.parse(request, client.wsdl.types)  # and zeep reads it back
        assert parsed.Response_Filter.Count == 999
        assert parsed.Response_Filter.As_Of_Entry_DateTime is not None
    references = [b for b in sent if b"Request_References" in b]
    assert len(references) == 1 and b"As_Of_Effective_Date" in references[0]
    # one As_Of_Entry_DateTime across the pages of the full pull
    entries = {
        etree.fromstring(b).findtext(".//{urn:com.workday/bsvc}As_Of_Entry_DateTime") for b in sent[:2]
    }
    assert len(entries) == 1


def test_response_group_follows_the_mapping(start_emulator: Start, tmp_path: Path) -> None:
    (tmp_path / "slim.toml").write_text(
        '[mapping]\nname = "slim"\n[fields]\nid = "Worker_ID"\nemail = "Email"\nmanager_id = "Manager_ID"\n'
    )
    run = start_emulator("workday", org=SandboxOrg(50, seed=1))
    conn = connector(run, mapping=str(tmp_path / "slim.toml"))
    sent = spy(conn)
    pull(conn)
    conn.close()
    group = etree.fromstring(sent[0]).find(".//{urn:com.workday/bsvc}Response_Group")
    flags = [etree.QName(e).localname for e in group]
    assert flags == ["Include_Reference", "Include_Personal_Information", "Include_Employment_Information"]


def test_faults_become_typed_errors(start_emulator: Start, caplog: pytest.LogCaptureFixture) -> None:
    run = start_emulator("workday", org=SandboxOrg(20, seed=1))
    conn = connector(run, password="wrong-secret-123")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as denied:
        pull(conn)
    assert conn.http.stats.requests == 1  # not retried
    assert denied.value.code == "Client.authenticationError"
    assert "wrong-secret-123" not in str(denied.value) + caplog.text
    conn.close()

    conn = connector(run)
    validation = soap_fault(
        "Client.validationError",
        "Validation error occurred. Invalid ID value.",
        "/wd:Get_Workers_Request[1]/wd:Request_References[1]/wd:Worker_Reference[1]/wd:ID[1]",
    )
    with responses.RequestsMock() as mock:
        mock.post(conn.cfg.soap_url, body=validation, status=500, content_type="text/xml")
        with pytest.raises(ApiError) as bad:
            pull(conn)
        assert len(mock.calls) == 1  # a validation fault is final, never retried
    assert bad.value.code == "Client.validationError" and bad.value.status == 500
    assert bad.value.context["xpath"].endswith("wd:ID[1]") and "wd:Worker_Reference[1]" in str(bad.value)

    with responses.RequestsMock() as mock:  # a processing fault is retried, then the page arrives
        mock.post(conn.cfg.soap_url, body=soap_fault("Client.processingFault", "busy"), status=500)
        mock.post(conn.cfg.soap_url, body=page_of_one(), status=200)
        conn.http.sleep = lambda s: None
        _, people = pull(conn)
        assert len(mock.calls) == 2
    assert list(people) == ["100001"]
    conn.close()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<wd:Get_Workers_Response xmlns:wd="urn:com.workday/bsvc"><wd:Response_Data><wd:Worker><wd:Worker_Data>
<wd:Worker_ID>&lol3;</wd:Worker_ID></wd:Worker_Data></wd:Worker></wd:Response_Data></wd:Get_Workers_Response>
</env:Body></env:Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<wd:Get_Workers_Response xmlns:wd="urn:com.workday/bsvc"><wd:Response_Data><wd:Worker><wd:Worker_Data>
<wd:Worker_ID>&xxe;</wd:Worker_ID></wd:Worker_Data></wd:Worker></wd:Response_Data></wd:Get_Workers_Response>
</env:Body></env:Envelope>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
@responses.activate
def test_hostile_xml_is_refused_unparsed(body: bytes) -> None:
    from okrsync.connectors.base import ConnectorContext
    from okrsync.connectors.workday import WorkdayConfig, WorkdayConnector

    cfg = WorkdayConfig(base_url="https://wd.example.com", tenant="acme", username="isu@acme", password="pw")
    conn = WorkdayConnector(cfg, ConnectorContext("workday"))
    responses.post(URL, body=body, status=200, content_type="text/xml")
    with pytest.raises(ApiError) as refused:
        pull(conn)
    assert "DOCTYPE or ENTITY" in str(refused.value) and refused.value.code == "hostile_xml"
    assert soap.parse_fault(body) is None  # a hostile fault body is not parsed either


def soap_fault(code: str, message: str, xpath: str | None = None) -> bytes:
    detail = (
        f"<detail><wd:Validation_Fault><wd:Validation_Error><wd:Message>{message}</wd:Message>"
        f"<wd:Xpath>{xpath}</wd:Xpath></wd:Validation_Error></wd:Validation_Fault></detail>"
        if xpath
        else ""
    )
    return (
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:wd="urn:com.workday/bsvc"><SOAP-ENV:Body><SOAP-ENV:Fault>'
        f"<faultcode>SOAP-ENV:{code}</faultcode><faultstring>{message}</faultstring>{detail}"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def page_of_one() -> bytes:
    return (
        b'<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        b'<wd:Get_Workers_Response xmlns:wd="urn:com.workday/bsvc"><wd:Response_Results>'
        b"<wd:Total_Results>1</wd:Total_Results><wd:Total_Pages>1</wd:Total_Pages>"
        b"<wd:Page_Results>1</wd:Page_Results><wd:Page>1</wd:Page></wd:Response_Results><wd:Response_Data>"
        b'<wd:Worker><wd:Worker_Reference><wd:ID wd:type="WID">abc</wd:ID><wd:ID wd:type="Employee_ID">100001'
        b"</wd:ID></wd:Worker_Reference><wd:Worker_Data><wd:Worker_ID>100001</wd:Worker_ID>"
        b"<wd:Employment_Data><wd:Worker_Status_Data><wd:Active>1</wd:Active><wd:Terminated>0</wd:Terminated>"
        b"</wd:Worker_Status_Data></wd:Employment_Data></wd:Worker_Data></wd:Worker></wd:Response_Data>"
        b"</wd:Get_Workers_Response></env:Body></env:Envelope>"
    )
