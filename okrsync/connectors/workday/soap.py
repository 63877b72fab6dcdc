"""SOAP requests (``Get_Workers``, ``Manage_Goals``) and SOAP faults as typed errors.

Requests are written as text in the exact element order of ``Human_Resources.wsdl`` (the tests
validate every request the connector sends against the WSDL's schema with lxml and zeep); every
value is escaped. The WS-Security header carries a ``#PasswordText`` UsernameToken; the
password lives only in the request body and never in a log line or an exception (errors pass
through :func:`okrsync.errors.redact_text`, which masks ``Password`` elements too).

Faults arrive as HTTP 500 bodies: ``Client.validationError`` becomes an :class:`ApiError` with
the fault code, message and XPath (never retried), ``Client.authenticationError`` an
:class:`AuthenticationError`; anything else (``Client.processingFault``, other 5xx) is left to
the HTTP client's retry policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import requests
from lxml import etree

from okrsync.errors import ApiError, AuthenticationError, ConnectorError
from okrsync.http.client import Classifier, default_error_parser, request_id_of

WD_NS = "urn:com.workday/bsvc"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _PROFILE + "#PasswordText"  # a WS-Security type URI
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}

# Worker_Response_GroupType flags okrsync may set, in the WSDL's sequence order.
GROUP_ORDER = (
    "Include_Reference",
    "Include_Personal_Information",
    "Include_Employment_Information",
    "Include_Organizations",
    "Include_Management_Chain_Data",
    "Include_Goals",
)


@dataclass(frozen=True)
class Window:
    """One ``Transaction_Date_Range_Data``: entry-time and/or effective-dated bounds."""

    updated_from: datetime | None = None
    updated_through: datetime | None = None
    effective_from: datetime | None = None
    effective_through: datetime | None = None


def envelope(body: str, username: str, password: str) -> bytes:
    """A SOAP 1.1 envelope with a WS-Security UsernameToken (PasswordText)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP_NS}">'
        f'<env:Header><wsse:Security xmlns:wsse="{WSSE_NS}" env:mustUnderstand="1"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_TEXT}">{escape(password)}</wsse:Password>'
        f"</wsse:UsernameToken></wsse:Security></env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def _el(name: str, value: str) -> str:
    return f"<wd:{name}>{escape(value)}</wd:{name}>"


def _moment(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("Workday date-times must carry an offset")
    return value.isoformat()


def get_workers(
    *,
    version: str,
    page: int,
    count: int,
    as_of_entry: datetime,
    as_of_effective: date | None = None,
    windows: Sequence[Window] = (),
    references: Sequence[tuple[str, str]] | None = None,
    group: Iterable[str] = (),
    exclude_inactive: bool = False,
    exclude_contingent: bool = False,
) -> str:
    """The ``Get_Workers_Request`` element (``Request_References`` *or* criteria, then filter, group)."""
    parts = [f'<wd:Get_Workers_Request xmlns:wd="{WD_NS}" wd:version={quoteattr(version)}>']
    if references:
        parts.append('<wd:Request_References wd:Skip_Non_Existing_Instances="true">')
        for kind, value in references:
            ref = f"<wd:ID wd:type={quoteattr(kind)}>{escape(value)}</wd:ID>"
            parts.append(f"<wd:Worker_Reference>{ref}</wd:Worker_Reference>")
        parts.append("</wd:Request_References>")
    criteria = []
    for w in windows:
        bounds = [
            _el(name, _moment(v))
            for name, v in (
                ("Updated_From", w.updated_from),
                ("Updated_Through", w.updated_through),
                ("Effective_From", w.effective_from),
                ("Effective_Through", w.effective_through),
            )
            if v is not None
        ]
        criteria.append(
            "<wd:Transaction_Log_Criteria_Data><wd:Transaction_Date_Range_Data>"
            + "".join(bounds)
            + "</wd:Transaction_Date_Range_Data></wd:Transaction_Log_Criteria_Data>"
        )
    if exclude_inactive:
        criteria.append(_el("Exclude_Inactive_Workers", "true"))
    if exclude_contingent:
        criteria.append(_el("Exclude_Contingent_Workers", "true"))
    if criteria and not references:
        parts.append("<wd:Request_Criteria>" + "".join(criteria) + "</wd:Request_Criteria>")
    parts.append("<wd:Response_Filter>")
    if as_of_effective is not None:
        parts.append(_el("As_Of_Effective_Date", as_of_effective.isoformat()))
    parts.append(_el("As_Of_Entry_DateTime", _moment(as_of_entry)))
    parts.append(_el("Page", str(page)) + _el("Count", str(count)) + "</wd:Response_Filter>")
    wanted = set(group)
    unknown = wanted - set(GROUP_ORDER)
    if unknown:
        raise ValueError(f"unknown Response_Group flags: {sorted(unknown)}")
    flags = "".join(_el(name, "true") for name in GROUP_ORDER if name in wanted)
    parts.append(f"<wd:Response_Group>{flags}</wd:Response_Group></wd:Get_Workers_Request>")
    return "".join(parts)


# ---- faults ----
@dataclass(frozen=True)
class Fault:
    code: str  # e.g. "Client.validationError" (namespace prefix dropped)
    message: str
    xpath: str | None = None
    detail: str | None = None


_FAULT_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


def parse_fault(body: bytes) -> Fault | None:
    """The SOAP fault in a body, or None if the body is not a (safe, well-formed) fault."""
    from okrsync.connectors.workday.parse import is_hostile

    if not body or is_hostile(body):
        return None
    try:
        root = etree.fromstring(body, _FAULT_PARSER)
    except etree.XMLSyntaxError:
        return None
    fault = root.find(f".//{{{SOAP_NS}}}Fault")
    if fault is None:
        return None
    code = (fault.findtext("faultcode") or "").strip()
    code = code.split(":", 1)[1] if ":" in code else code
    message = (fault.findtext("faultstring") or "").strip()
    error = fault.find(f"detail//{{{WD_NS}}}Validation_Error")
    if error is None:
        error = fault.find(f"detail//{{{WD_NS}}}Processing_Fault")
    xpath = detail = None
    if error is not None:
        xpath = (error.findtext(f"{{{WD_NS}}}Xpath") or "").strip() or None
        detail = (error.findtext(f"{{{WD_NS}}}Detail_Message") or "").strip() or None
        message = (error.findtext(f"{{{WD_NS}}}Message") or "").strip() or message
    return Fault(code, message or "SOAP fault", xpath, detail)


def error_parser(response: requests.Response) -> tuple[str | None, str | None]:
    """For :class:`~okrsync.http.HttpClient`: ``(faultcode, faultstring)`` of a SOAP fault body."""
    fault = parse_fault(response.content)
    if fault is None:
        return default_error_parser(response)  # OAuth, REST and RaaS answer in JSON
    return fault.code, fault.message


def classify(connector: str, operation: str) -> Classifier:
    """A ``classify`` hook for ``HttpClient.request``: final errors for faults not worth retrying."""

    def check(response: requests.Response) -> ConnectorError | None:
        fault = parse_fault(response.content)
        if fault is None:
            return None
        common: dict[str, Any] = dict(
            connector=connector,
            operation=operation,
            url=response.url,
            status=response.status_code,
            request_id=request_id_of(response),
            code=fault.code,
            xpath=fault.xpath,
            detail=fault.detail,
        )
        if fault.code.endswith("authenticationError"):
            return AuthenticationError(f"Workday refused the credentials: {fault.message}", **common)
        if fault.code.endswith("validationError"):
            where = f" at {fault.xpath}" if fault.xpath else ""
            detail = f" ({fault.detail})" if fault.detail and fault.detail != fault.message else ""
            return ApiError(f"{fault.code}: {fault.message}{detail}{where}", **common)
        return None  # processing faults and other 5xx: the retry policy decides

    return check
