"""``SalesforceEmulator``: the REST routes simple-salesforce calls, over TLS, with Salesforce's errors.

Routing, auth, API-usage accounting and cursors live here; SOQL is in :mod:`.soql`, records
and write rules in :mod:`.data`, logins in :mod:`.auth`. Every answer under
``/services/data`` carries ``Sforce-Limit-Info`` and every error is Salesforce's JSON error
array, because simple-salesforce maps exactly those to its exception classes and
``api_usage``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from okrsync.sandbox.orgs import SandboxOrg, salesforce_id
from okrsync.sandbox.salesforce import query, soql
from okrsync.sandbox.salesforce.auth import Credentials, LoginContext, oauth_token, soap_login
from okrsync.sandbox.salesforce.data import Store
from okrsync.sandbox.salesforce.dates import add_months, quarter_start
from okrsync.sandbox.salesforce.records import RecordRoutes
from okrsync.sandbox.salesforce.schema import to_18
from okrsync.sandbox.server import (
    Emulator,
    FaultSpec,
    Handler,
    Request,
    Response,
    TokenStore,
    sandbox_ca_path,
)

_V = r"/services/data/v(?P<ver>\d+\.\d)"
_LOGIN_PREFIX = r"(?:/(?P<login_host>[A-Za-z0-9.-]+\.salesforce\.com))?"
_BASE_CODES = {  # the base server's generic codes -> Salesforce's
    "NotFound": "NOT_FOUND",
    "ServiceUnavailable": "SERVER_UNAVAILABLE",
    "InternalServerError": "UNKNOWN_EXCEPTION",
    "EmulatorError": "UNKNOWN_EXCEPTION",
}
MAX_CURSORS = 100


def _season(version: float) -> str:
    n = round(version) - 59
    return f"{('Winter', 'Spring', 'Summer')[n % 3]} '{24 + n // 3}"


class SalesforceEmulator(RecordRoutes, Emulator):
    """Salesforce REST + SOAP login + OAuth over HTTPS, serving the sandbox org's Users and Opportunities."""

    system = "salesforce"
    tls = True

    def __init__(
        self,
        org: SandboxOrg,
        *,
        faults: FaultSpec | None = None,
        username: str = "integration@sandbox.example.com",
        password: str | None = None,
        security_token: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        api_version: str = "59.0",
        opportunities_per_rep: int = 6,
        daily_limit: int = 5_000_000,
        seed: int | None = None,
        max_uri_length: int = 16_384,
    ) -> None:
        super().__init__(org, faults=faults)
        self.credentials = Credentials(username)
        for name, value in (
            ("password", password),
            ("security_token", security_token),
            ("consumer_key", consumer_key),
            ("consumer_secret", consumer_secret),
        ):
            if value is not None:
                setattr(self.credentials, name, value)
        self.credentials.make_keys()
        # the key lives as long as the emulator (a connector reads it by path), not forever in /tmp
        weakref.finalize(
            self, shutil.rmtree, os.path.dirname(self.credentials.private_key_path), ignore_errors=True
        )
        self.api_version = api_version
        self.daily_limit = daily_limit
        self.max_uri_length = max_uri_length
        self.store = Store(
            org, opportunities_per_rep=opportunities_per_rep, seed=org.seed if seed is None else seed
        )
        self.tokens = TokenStore(self.faults.spec.token_ttl)
        self.api_requests = 0
        self._usage_lock = threading.Lock()
        self._cursors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._cursor_n = 0

        self.route("POST", _LOGIN_PREFIX + r"/services/Soap/u/(?P<ver>\d+\.\d)/?", self._soap_login)
        self.route("POST", _LOGIN_PREFIX + r"/services/oauth2/token/?", self._oauth_token)
        self.route("GET", r"/services/data/?", self._versions)
        api: list[tuple[str, str, Handler]] = [
            ("GET", r"/?", self._resources),
            ("GET", r"/limits/?", self._limits),
            ("GET", r"/(?P<kind>query|queryAll)/?", self._query),
            (
                "GET",
                r"/(?P<kind>query|queryAll)/(?P<locator>01g[A-Za-z0-9]{15})-(?P<offset>\d+)/?",
                self._query_more,
            ),
            ("GET", r"/sobjects/?", self._describe_global),
            ("GET", r"/sobjects/(?P<obj>\w+)/?", self._sobject_info),
            ("POST", r"/sobjects/(?P<obj>\w+)/?", self._create),
            ("GET", r"/sobjects/(?P<obj>\w+)/describe/?", self._describe),
            ("GET", r"/sobjects/(?P<obj>\w+)/(?P<rid>[^/]+)/?", self._get_record),
            ("PATCH", r"/sobjects/(?P<obj>\w+)/(?P<rid>[^/]+)/?", self._update),
            # the value is a decoded path segment, so an encoded "/" (%2F) in it arrives as "/"
            ("GET", r"/sobjects/(?P<obj>\w+)/(?P<field>\w+)/(?P<value>.+?)/?", self._get_by_external_id),
            ("PATCH", r"/sobjects/(?P<obj>\w+)/(?P<field>\w+)/(?P<value>.+?)/?", self._upsert),
            ("GET", r"/composite/sobjects/(?P<obj>\w+)/?", self._collection_get),
            ("PATCH", r"/composite/sobjects/?", self._collection_update),
            ("POST", r"/composite/sobjects/?", self._collection_create),
            ("PATCH", r"/composite/sobjects/(?P<obj>\w+)/(?P<field>\w+)/?", self._collection_upsert),
        ]
        for method, pattern, handler in api:
            self.route(method, _V + pattern, self._api(handler))

    # ------------------------------------------------------------ settings and helpers for tests
    def connection(self) -> dict[str, Any]:
        """Settings for the connector and for simple-salesforce (see the package docstring)."""
        hostport = urlsplit(self.base_url).netloc
        c = self.credentials
        return {
            "type": "salesforce",
            "instance_url": self.base_url,
            "domain": f"{hostport}/sandbox.my",
            "login_url": self.base_url,
            "api_version": self.api_version,
            "username": c.username,
            "password": c.password,
            "security_token": c.security_token,
            "consumer_key": c.consumer_key,
            "consumer_secret": c.consumer_secret,
            "private_key_path": c.private_key_path,
            "certificate_path": c.certificate_path,
            "ca_bundle": sandbox_ca_path(),
        }

    @property
    def opportunities(self) -> list[dict[str, Any]]:
        """Copies of the Opportunity rows (Python values: ``date``, ``float``, ``bool``)."""
        return [dict(r) for r in self.store.rows("Opportunity")]

    @property
    def users(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.rows("User")]

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self.store.get("User", user_id)
        return None if row is None else dict(row)

    def won_amount(self, owner_ids: Iterable[str] | None = None, *, quarter: int = 0) -> float:
        """Closed-won Amount in the quarter ``quarter`` away from ``org.as_of`` (0 = this one, -1 = last),
        summed straight from the rows: what a key-result ``SUM(Amount)`` query must return."""
        start = add_months(quarter_start(self.org.as_of), 3 * quarter)
        end = add_months(start, 3)
        owners = None if owner_ids is None else {to_18(o) for o in owner_ids}
        total = 0.0
        for r in self.store.rows("Opportunity"):
            close: date = r["CloseDate"]
            if r["IsWon"] and start <= close < end and (owners is None or r["OwnerId"] in owners):
                total += r["Amount"] or 0.0
        return total

    def sales_rep_ids(self) -> list[str]:
        """User Ids that own Opportunities (the Sales department), in org order."""
        owners = {r["OwnerId"] for r in self.store.rows("Opportunity")}
        return [r["Id"] for r in self.store.rows("User") if r["Id"] in owners]

    # ------------------------------------------------------------ vendor-shaped errors
    def _limit_info(self) -> str:
        return f"api-usage={self.api_requests}/{self.daily_limit}"

    def error(self, status: int, code: str, message: str) -> Response:
        code = _BASE_CODES.get(code, code)
        if code == "NOT_FOUND" and message.startswith("no route"):
            message = "The requested resource does not exist"
        resp = Response.json([{"message": message, "errorCode": code}], status)
        resp.headers["Sforce-Limit-Info"] = self._limit_info()
        return resp

    def throttled(self) -> Response:
        """Salesforce has no 429 on its REST API: concurrency throttling is a 403 REQUEST_LIMIT_EXCEEDED."""
        return self.error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")

    def dispatch(self, req: Request) -> Response:
        if not req.path.startswith("/_sandbox/"):
            uri = len(req.raw_path or req.path) + (len(req.raw_query) + 1 if req.raw_query else 0)
            if uri > self.max_uri_length:
                return self.error(
                    414, "URI_TOO_LONG", f"URI Too Long ({uri} bytes; the limit is {self.max_uri_length})"
                )
        resp = super().dispatch(req)
        if req.path.startswith("/services/data"):
            resp.headers.setdefault("Sforce-Limit-Info", self._limit_info())
        return resp

    def _api(self, handler: Handler) -> Handler:
        """Session check, API version check and daily-limit accounting around a REST handler."""

        def wrapped(req: Request) -> Response:
            auth = req.headers.get("authorization")
            if auth and auth[:6].lower() == "oauth ":
                auth = "Bearer " + auth[6:]
            self.tokens.ttl = self.faults.spec.token_ttl
            if self.tokens.check(auth):
                resp = self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
                resp.headers["WWW-Authenticate"] = "Token"
                return resp
            assert req.match is not None
            if not self._version_ok(req.match.group("ver")):
                return self.error(404, "NOT_FOUND", "The requested resource does not exist")
            with self._usage_lock:
                self.api_requests += 1
                over = self.api_requests > self.daily_limit
            if over:
                return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return handler(req)

        return wrapped

    def _version_ok(self, ver: str) -> bool:
        try:
            return 20.0 <= float(ver) <= float(self.api_version)
        except ValueError:
            return False

    def _login_context(self) -> LoginContext:
        return LoginContext(
            self.base_url, self.api_version, self.store.org_id, self.store.integration_user_id, self.tokens
        )

    # ------------------------------------------------------------ login
    def _soap_login(self, req: Request) -> Response:
        return soap_login(req, self.credentials, self._login_context())

    def _oauth_token(self, req: Request) -> Response:
        assert req.match is not None
        host = req.match.group("login_host")
        my_domain = host not in ("login.salesforce.com", "test.salesforce.com")
        return oauth_token(req, self.credentials, self._login_context(), my_domain=my_domain)

    # ------------------------------------------------------------ discovery
    def _versions(self, req: Request) -> Response:
        top = int(float(self.api_version))
        return Response.json(
            [
                {"label": _season(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(31, top + 1)
            ]
        )

    def _resources(self, req: Request) -> Response:
        assert req.match is not None
        base = f"/services/data/v{req.match.group('ver')}"
        return Response.json(
            {k: f"{base}/{k}" for k in ("sobjects", "query", "queryAll", "limits", "composite")}
        )

    def _limits(self, req: Request) -> Response:
        return Response.json(
            {
                "DailyApiRequests": {
                    "Max": self.daily_limit,
                    "Remaining": max(self.daily_limit - self.api_requests, 0),
                },
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            }
        )

    # ------------------------------------------------------------ queries
    def _query(self, req: Request) -> Response:
        assert req.match is not None
        text = req.arg("q")
        if not text:
            return self.error(400, "MALFORMED_QUERY", "A query string has to be specified")
        ver = req.match.group("ver")
        try:
            with self.store.lock:
                result = query.execute(text, self.store, today=self.org.as_of, version=ver)
        except soql.SoqlError as exc:
            return self.error(400, exc.code, exc.message)
        records = result.records
        batch = self._batch_size(req)
        if result.aggregate or len(records) <= batch:
            return Response.json({"totalSize": result.total_size, "done": True, "records": records})
        with self._usage_lock:
            self._cursor_n += 1
            locator = salesforce_id("01g", self._cursor_n)
            self._cursors[locator] = records
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
        return Response.json(self._page(req.match.group("kind"), ver, locator, records, 0, batch))

    def _query_more(self, req: Request) -> Response:
        assert req.match is not None
        locator, offset = req.match.group("locator"), int(req.match.group("offset"))
        with self._usage_lock:
            records = self._cursors.get(locator)
            if records is not None:
                self._cursors.move_to_end(locator)
        if records is None or offset > len(records):
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return Response.json(
            self._page(
                req.match.group("kind"),
                req.match.group("ver"),
                locator,
                records,
                offset,
                self._batch_size(req),
            )
        )

    @staticmethod
    def _page(
        kind: str, ver: str, locator: str, records: list[dict[str, Any]], offset: int, batch: int
    ) -> dict[str, Any]:
        end = offset + batch
        page: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
        if end < len(records):
            page["nextRecordsUrl"] = f"/services/data/v{ver}/{kind}/{locator}-{end}"
        page["records"] = records[offset:end]
        return page

    @staticmethod
    def _batch_size(req: Request) -> int:
        """``Sforce-Query-Options: batchSize=N``: 200..2000, a hint Salesforce may round."""
        m = re.search(r"batchSize\s*=\s*(\d+)", req.headers.get("sforce-query-options", ""))
        return min(max(int(m.group(1)), 200), 2000) if m else 2000
