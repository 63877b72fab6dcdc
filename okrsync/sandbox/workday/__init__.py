"""Workday sandbox emulator: SOAP ``Get_Workers``, REST, RaaS and ``Manage_Goals`` over one org.

Endpoints (``{tenant}`` defaults to ``sandbox``; the version suffix ``/vNN.N`` is optional):

- ``POST /ccx/service/{tenant}/Human_Resources[/vNN.N]`` — ``Get_Workers_Request``; WS-Security
  ``UsernameToken`` with a ``#PasswordText`` password (or ``Authorization: Bearer`` from the OAuth
  route). Responses follow ``tests/specs/workday/Human_Resources.wsdl`` exactly (zeep parses them).
- ``POST /ccx/service/{tenant}/Performance_Management[/vNN.N]`` — ``Manage_Goals_Request``
  (see :mod:`okrsync.sandbox.workday.goals`).
- ``POST /ccx/oauth2/{tenant}/token`` — refresh-token grant → bearer token (``token_ttl`` fault).
- ``GET /ccx/api/v1/{tenant}/workers[/{wid}]``, ``/supervisoryOrganizations[/{id}[/orgChart|/workers]]``
  (see :mod:`okrsync.sandbox.workday.rest`).
- ``GET /ccx/service/customreport2/{tenant}/{report_owner}/{report_name}?format=json`` (see
  :mod:`okrsync.sandbox.workday.raas`).
- ``GET /_sandbox/workday/goals[?worker=Employee_ID]`` — every stored goal field, as JSON.

``connection()`` gives ``{"type": "workday", "api": "soap", "base_url", "tenant", "username",
"password"}``; ``connection("rest")`` adds ``client_id``, ``client_secret``, ``refresh_token``;
``connection("raas")`` adds ``report_owner`` and ``report_name`` (and keeps the ISU credentials for
Basic auth).

Where person fields live in a ``Get_Workers`` worker (XPaths below ``wd:Worker``):

- ids: ``Worker_Reference/ID[@wd:type='WID']`` and ``[@wd:type='Employee_ID']`` or
  ``[@wd:type='Contingent_Worker_ID']`` (the type tells the worker type); the display name is the
  reference's ``@wd:Descriptor`` (the WSDL has no ``Worker_Descriptor`` element);
  ``Worker_Data/Worker_ID``; ``Worker_Data/User_ID`` (= the work email);
- names: ``Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/{First_Name,Last_Name}``;
  email: ``Personal_Data/Contact_Data/Email_Address_Data/Email_Address`` (usage type ``WORK``);
- job: ``Employment_Data/Worker_Job_Data[@wd:Primary_Job='1']/Position_Data/`` ``Business_Title``,
  ``Worker_Type_Reference``, ``Business_Site_Summary_Data/Name`` (location),
  ``Manager_as_of_last_detected_manager_change_Reference/ID`` (WID and Employee_ID);
- status: ``Employment_Data/Worker_Status_Data/{Active,Hire_Date,Terminated,Termination_Date}``.
  Dates of every third worker carry an offset (``2019-05-01-07:00``);
- organizations (``Worker_Data/Organization_Data/Worker_Organization_Data``, by
  ``Organization_Data/Organization_Type_Reference/ID``): ``SUPERVISORY`` (the org headed by the
  manager), ``COST_CENTER`` (``Organization_Reference_ID`` = cost center), ``DEPARTMENT`` and
  ``DIVISION`` (custom organizations, ``Organization_Name``), ``MATRIX`` (one per dotted-line manager);
- ``Management_Chain_Data/Worker_Supervisory_Management_Chain_Data/Management_Chain_Data``: one
  level per manager above the worker, nearest first (``chain_order="top_first"`` reverses it), no
  level for a worker without a manager; dotted-line managers are in
  ``Worker_Matrix_Management_Chain_Data``. One manager per org, so
  ``Include_Multiple_Managers_in_Management_Chain_Data`` changes nothing here;
- ``Worker_Goal_Data`` with ``Include_Goals``.

Semantics chosen where Workday's documentation is silent (each is what a connector must survive):

- **Response_Group**: omitted → reference, personal, employment and organization data; given →
  exactly the flags set true (``Include_Reference`` omitted means no ``Worker_Reference``).
- **As_Of_Effective_Date** (default today, the org's own statuses): a future-dated hire exists from
  the moment it is entered but is *not yet active* before its hire date (``Active`` 0, future
  ``Hire_Date``, ``Terminated`` 0) — so the entry-time window finds it, and re-querying it by WID
  with ``As_Of_Effective_Date`` = hire date shows it active. A termination takes effect on its date.
- **As_Of_Entry_DateTime** (default now, always echoed in ``Response_Filter``): the tenant is rebuilt
  from the org's edit history *as of that moment*, so every page requested with the same value is
  a slice of the same result set even while the org is edited. A page with a different value is a
  different moment (a new snapshot), and pages without it are live — keep it fixed across pages.
  A value more than five minutes in the future is a validation fault.
- **Transaction log**: ``Updated_From``/``Updated_Through`` select workers with a change entered
  in the window (``Worker.last_modified`` of any edit), ``Effective_From``/``Effective_Through``
  those with a change effective in it (dates compared in the offset the client wrote).
  Bounds in one range must all hold; several ``Transaction_Log_Criteria_Data`` are OR-ed.
- **Conversions**: a person with ``former_wids`` also has one terminated record per former WID,
  same ``Worker_ID``; ``Employee_ID``/``Contingent_Worker_ID`` references find the record of that type.
- ``Exclude_Inactive_Workers`` drops terminated records (a pre-hire is not terminated).
- Paging: ``Count`` 1..999 (default 100; more is a validation fault with its Xpath); a page
  past the end is empty (``Page_Results`` 0).
- Faults are HTTP 500 SOAP 1.1 faults: ``Client.validationError`` (with ``Validation_Fault``),
  ``Client.authenticationError``, ``Client.processingFault`` (also for injected 500/503). Throttling
  is HTTP 429 + ``Retry-After`` with a ``Client.processingFault`` body on SOAP paths (SOAP clients then
  get a parseable fault; HTTP clients see the status), JSON on REST/RaaS paths.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from datetime import timedelta
from typing import Any, ClassVar

from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.server import Emulator, FaultSpec, Request, Response, TokenStore
from okrsync.sandbox.workday.goals import GoalStore
from okrsync.sandbox.workday.raas import Raas, aliases
from okrsync.sandbox.workday.render import (
    Renderer,
    authentication_fault,
    envelope,
    processing_fault,
)
from okrsync.sandbox.workday.rest import RestApi, rest_error
from okrsync.sandbox.workday.soap import (
    SoapError,
    W,
    check_username_token,
    get_workers_response,
    invalid,
    local,
    parse_envelope,
    parse_get_workers,
    select,
    version_of,
)
from okrsync.sandbox.workday.state import Tenant

XML = "text/xml; charset=utf-8"
_SOAP_PATH = re.compile(r"/ccx/service/(?!customreport2/)[^/]+/")
FUTURE_SKEW = timedelta(minutes=5)


class WorkdayEmulator(Emulator):
    """Workday over one :class:`SandboxOrg`: SOAP, REST, RaaS and goals on one port (plain HTTP)."""

    system: ClassVar[str] = "workday"
    tls: ClassVar[bool] = False

    def __init__(
        self,
        org: SandboxOrg,
        *,
        faults: FaultSpec | None = None,
        tenant: str = "sandbox",
        username: str = "isu_okrsync@sandbox",
        password: str | None = None,
        version: str = "v45.0",
        raas_aliases: dict[str, str | None] | None = None,
        report_owner: str = "isu_okrsync",
        report_name: str = "okrsync_Workers",
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        chain_order: str = "nearest_first",
        date_offset: str = "-07:00",
        rest_unreliable_total: bool = False,
    ) -> None:
        super().__init__(org, faults=faults)
        self.tenant = tenant
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.version = version
        self.report_owner = report_owner
        self.report_name = report_name
        self.raas_fields = aliases(raas_aliases)
        self.client_id = client_id or secrets.token_hex(16)
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.refresh_token = refresh_token or secrets.token_urlsafe(32)
        self.rest_unreliable_total = rest_unreliable_total
        self.tokens = TokenStore(self.faults.spec.token_ttl)
        self.tenant_state = Tenant(org)
        self.renderer = Renderer(org.seed, date_offset=date_offset, chain_order=chain_order)
        self.goals = GoalStore()
        self._current = threading.local()
        self.route(
            "POST",
            r"/ccx/service/(?P<tenant>[^/]+)/(?P<service>Human_Resources|Performance_Management)"
            r"(?:/(?P<version>v[0-9.]+))?",
            self._soap,
        )
        self.route("GET", r"/_sandbox/workday/goals", self._goals_json)
        self.rest = RestApi(self)
        self.raas = Raas(self)

    # ---- settings and credentials ----
    def connection(self, api: str = "soap") -> dict[str, Any]:
        """The ``[connections.workday]`` settings for ``api`` = soap (default), rest or raas."""
        if api not in {"soap", "rest", "raas"}:
            raise ValueError("api must be 'soap', 'rest' or 'raas'")
        settings: dict[str, Any] = {
            "type": self.system,
            "api": api,
            "base_url": self.base_url,
            "tenant": self.tenant,
            "username": self.username,
            "password": self.password,
        }
        if api == "rest":
            settings.update(
                client_id=self.client_id, client_secret=self.client_secret, refresh_token=self.refresh_token
            )
        elif api == "raas":
            settings.update(report_owner=self.report_owner, report_name=self.report_name)
        return settings

    def check_password(self, username: str, password: str) -> bool:
        """The ISU logs in as ``user@tenant`` (SOAP, Basic) or plain ``user`` (Basic, as RaaS allows)."""
        plain = self.username.removesuffix(f"@{self.tenant}")
        return username in {self.username, plain} and hmac.compare_digest(
            password.encode(), self.password.encode()
        )

    # ---- vendor-shaped errors ----
    def begin(self, req: Request) -> None:
        self._current.path = req.path

    def _soap_path(self) -> bool:
        return bool(_SOAP_PATH.match(getattr(self._current, "path", "")))

    def error(self, status: int, code: str, message: str) -> Response:
        if self._soap_path():
            return Response(status, processing_fault(f"{code}: {message}"), content_type=XML)
        return rest_error(status, message, code=code)

    def throttled(self) -> Response:
        retry = f"{self.faults.spec.retry_after:g}"
        if self._soap_path():
            r = Response(
                429, processing_fault(f"Too many requests; retry after {retry} seconds."), content_type=XML
            )
        else:
            r = rest_error(429, "Too many requests; retry later.")
        r.headers["Retry-After"] = retry
        return r

    # ---- SOAP ----
    def _soap(self, req: Request) -> Response:
        assert req.match is not None
        tenant, service, path_version = req.match.group("tenant", "service", "version")
        try:
            header, payload = parse_envelope(req.body)
            if tenant != self.tenant:
                raise SoapError(authentication_fault())
            authorization = req.headers.get("authorization", "")
            if not (authorization.lower().startswith("bearer ") and self.tokens.check(authorization) is None):
                check_username_token(header, self.check_password)
            name = local(payload)
            if payload.tag == f"{W}Get_Workers_Request" and service == "Human_Resources":
                body = self._get_workers(payload, path_version)
            elif payload.tag == f"{W}Manage_Goals_Request" and service == "Performance_Management":
                body = self.goals.manage(
                    payload, self.tenant_state.current(), version_of(payload, path_version, self.version)
                )
            else:
                raise SoapError(processing_fault(f"The okrsync sandbox does not implement {service}/{name}."))
        except SoapError as exc:
            return Response(exc.status, exc.body, content_type=XML)
        return Response(200, envelope(body), content_type=XML)

    def _get_workers(self, payload: Any, path_version: str | None) -> str:
        q = parse_get_workers(payload, path_version, self.version)
        now = self.tenant_state.now()
        entry = q.as_of_entry or now
        if entry > now + FUTURE_SKEW:
            raise invalid(
                "As_Of_Entry_DateTime cannot be in the future.",
                "/wd:Get_Workers_Request[1]/wd:Response_Filter[1]/wd:As_Of_Entry_DateTime[1]",
            )
        state = self.tenant_state.as_of(q.as_of_entry)
        records = select(state, q, self.tenant_state.history, entry)
        return get_workers_response(
            q,
            records,
            self.renderer,
            effective=q.as_of_effective or now.date(),
            entry=entry,
            goals=lambda r: self.goals.worker_goal_xml(r.ref.wid),
        )

    def _goals_json(self, req: Request) -> Response:
        return Response.json({"goals": self.goals.as_json(req.arg("worker"))})


__all__ = ["WorkdayEmulator"]
