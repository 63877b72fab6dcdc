"""The SuccessFactors emulator: OAuth SAML-bearer, OData v2 reads, upsert and goal CRUD.

Routes: ``POST /oauth/token`` and everything under ``/odata/v2/``. Answers are always JSON
(SF defaults to Atom when neither ``$format=json`` nor ``Accept: application/json`` is sent;
the sandbox does not render Atom feeds, only the ``$metadata`` EDMX is XML). Auth failures use
SF's LGN codes (KBA 2524436): a missing credential answers 401 ``LGN0003`` with a Basic
challenge, a wrong password 401 ``LGN0015``, and bearer-token problems 403
``LGN0005``/``LGN0006`` (expired)/``LGN0007``, an unknown company 403 ``LGN0008``. Connectors
must therefore treat 403 ``LGN0006`` as "fetch a new token", not as a permission error.
"""

from __future__ import annotations

import re
import secrets
import shutil
import weakref
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.server import Emulator, FaultSpec, Request, Response, TokenStore
from okrsync.sandbox.successfactors.auth import (
    GRANT_TYPE,
    AuthFailure,
    ClientKeys,
    parse_basic,
    verify_assertion,
)
from okrsync.sandbox.successfactors.entities import EMPJOB, USER, People
from okrsync.sandbox.successfactors.filters import Node, references
from okrsync.sandbox.successfactors.goals import Goals, not_found
from okrsync.sandbox.successfactors.metadata import build_metadata
from okrsync.sandbox.successfactors.odata import (
    EntityType,
    ODataError,
    Record,
    Schema,
    bad_request,
    from_json_value,
    parse_key,
    parse_shape,
    property_not_found,
)
from okrsync.sandbox.successfactors.query import Collection, QueryEngine, Renderer

DEFAULT_CLIENT_ID = "T2tyc3luY1NhbmRib3hDbGllbnQx"  # SF client ids are opaque base64-looking strings
_PATH = re.compile(
    r"^(?P<set>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<key>.*?)\))?(?:/(?P<tail>[A-Za-z_$][A-Za-z0-9_]*))?$"
)
_SF_CODES = re.compile(r"^(COE_|LGN|[A-Z_]+$)")
_DEFAULT_CODES = {
    400: "COE_BAD_REQUEST",
    404: "COE_ENTITY_NOT_FOUND",
    429: "COE_TOO_MANY_REQUESTS",
    500: "COE_GENERAL_SERVER_FAILURE",
    503: "COE_GENERAL_SERVER_FAILURE",
}


class SuccessFactorsEmulator(Emulator):
    """SAP SuccessFactors OData v2 over a :class:`SandboxOrg` (plain HTTP on loopback)."""

    system = "successfactors"
    tls = False

    def __init__(
        self,
        org: SandboxOrg,
        *,
        faults: FaultSpec | None = None,
        company_id: str = "SANDBOX",
        client_id: str = DEFAULT_CLIENT_ID,
        api_user: str = "sfapi",
        basic_password: str | None = None,
        goal_plans: tuple[int, ...] = (1,),
        goal_desc: bool = True,
    ) -> None:
        super().__init__(org, faults=faults)
        self.company_id = company_id
        self.client_id = client_id
        self.api_user = api_user
        self.basic_password = basic_password or secrets.token_urlsafe(16)
        self.keys = ClientKeys.generate(client_id)
        # the private key lives as long as the emulator: a connector reads it by path meanwhile
        weakref.finalize(self, shutil.rmtree, self.keys.directory, True)
        self.tokens = TokenStore(self.faults.spec.token_ttl)
        self.assertions: list[str] = []  # SAML assertions presented at /oauth/token, as received
        self.people = People(org, company_id)
        self.goals = Goals(
            tuple(goal_plans),
            lambda uid: self.people.index_of(uid) is not None,
            org.clock,
            desc=goal_desc,  # False: a template without "desc", like SAP's published ones
        )
        self.schema: Schema = {USER.name: USER, EMPJOB.name: EMPJOB, **self.goals.types}
        self.collections: dict[str, Collection] = {
            USER.name: Collection(USER, self.people.users, self.people.user_nav, _active_only, self._version),
            EMPJOB.name: Collection(EMPJOB, lambda: [], self._job_nav, version=self._version),
        }
        for name in self.goals.types:
            self.collections[name] = Collection(
                self.schema[name], partial(self.goals.rows_of, name), self._goal_nav
            )
        self.renderer = Renderer(self.schema, self.collections, lambda: f"{self.base_url}/odata/v2")
        self.engine = QueryEngine(self.schema, self.collections, self.renderer)
        self.route("POST", r"/oauth/token", self._token)
        for method in ("GET", "POST", "PUT", "PATCH", "MERGE", "DELETE"):
            self.route(method, r"/odata/v2/(?P<rest>.+)", self._odata)

    # ---- what a connector needs ----
    def connection(self) -> dict[str, Any]:
        """Settings for ``[connections.successfactors]``; SAML-bearer by default.

        For the legacy Basic path use ``"auth": "basic"`` with ``"username"`` (``api_user@company_id``
        is built by the connector) and ``"password"`` = :attr:`basic_password`.
        """
        return {
            "type": self.system,
            "base_url": self.base_url,
            "company_id": self.company_id,
            "client_id": self.client_id,
            "user_id": self.api_user,
            "auth": "saml",
            "private_key_path": self.keys.private_key_path,
            "certificate_path": self.keys.certificate_path,
        }

    # ---- vendor-shaped errors ----
    def error(self, status: int, code: str, message: str) -> Response:
        """SF's envelope; the base server's generic codes become SF ones (COE_GENERAL_SERVER_FAILURE…)."""
        if not _SF_CODES.match(code) or code in {"EmulatorError"}:
            message = (
                f"{code}: {message}"
                if status != 503
                else (
                    "The SuccessFactors HCM suite is currently undergoing scheduled maintenance. "
                    "We apologize for any inconvenience this may cause."
                )
            )
            code = _DEFAULT_CODES.get(status, "COE_GENERAL_SERVER_FAILURE")
        return Response.json(
            {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}, status
        )

    def throttled(self) -> Response:
        """429 with Retry-After (real tenants ask for ~300 s; the fault spec's ``retry_after`` here)."""
        after = f"{self.faults.spec.retry_after:g}"
        r = self.error(
            429,
            "COE_TOO_MANY_REQUESTS",
            f"Too many requests; the API rate limit was exceeded. Retry after {after} seconds.",
        )
        r.headers["Retry-After"] = after
        return r

    def _fail(self, exc: ODataError) -> Response:
        r = self.error(exc.status, exc.code, exc.message)
        if exc.code == "CREDENTIALS_MISSING":
            r.headers["WWW-Authenticate"] = 'Basic realm="SuccessFactors"'
        return r

    # ---- OAuth ----
    def _token(self, req: Request) -> Response:
        form = {
            k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }

        def oauth_error(status: int, error: str, description: str) -> Response:
            return Response.json({"error": error, "error_description": description}, status)

        if form.get("grant_type") != GRANT_TYPE:
            return oauth_error(400, "unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
        if form.get("company_id") != self.company_id:
            return oauth_error(401, "invalid_client", f"Company [{form.get('company_id')}] not found.")
        if form.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client", "client_id is not a registered OAuth client")
        if not form.get("assertion"):
            return oauth_error(400, "invalid_request", "assertion is required")
        self.assertions.append(form["assertion"])  # what a leak scan must never find anywhere else
        try:
            user = verify_assertion(
                form["assertion"],
                certificate_pem=self.keys.certificate_pem,
                client_id=self.client_id,
                recipient=f"{self.base_url}/oauth/token",
                now=self.org.clock(),
            )
        except AuthFailure as exc:
            return oauth_error(401, "invalid_grant", f"Unable to validate the SAML assertion: {exc}")
        if user != self.api_user and self.people.index_of(user) is None:
            return oauth_error(401, "invalid_grant", f"NameID {user!r} is not a user of {self.company_id}")
        self.tokens.ttl = self.faults.spec.token_ttl
        token, _ = self.tokens.issue({"user": user})
        ttl = self.faults.spec.token_ttl
        return Response.json(
            {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl) if ttl else 86399}
        )

    def _authenticate(self, req: Request) -> ODataError | None:
        header = req.headers.get("authorization", "")
        if not header:
            return ODataError(
                401,
                "CREDENTIALS_MISSING",
                "[LGN0003]Authentication credentials are required. "
                "Please provide a valid user name, password and company id.",
            )
        if header.lower().startswith("basic "):
            parsed = parse_basic(header)
            if parsed is not None and parsed[1] != self.company_id:
                return ODataError(
                    403,
                    "COMPANY_NOT_FOUND",
                    f"[LGN0008]Company [{parsed[1]}] not found. Please "
                    "validate the spelling of your company id, which is case-sensitive.",
                )
            if parsed is None or (parsed[0], parsed[2]) != (self.api_user, self.basic_password):
                return ODataError(
                    401,
                    "AUTHENTICATION_FAILED",
                    "[LGN0015]Authentication failed. You have entered "
                    "an incorrect username or password (status code = 4).",
                )
            return None
        self.tokens.ttl = self.faults.spec.token_ttl
        reason = self.tokens.check(header)
        if reason == "missing":
            return ODataError(
                403, "OAUTH_TOKEN_FORMAT_INVALID", "[LGN0005]The OAuth authentication token format is wrong."
            )
        if reason == "expired":
            return ODataError(
                403,
                "INTERNAL_TOKEN_EXPIRED",
                "[LGN0006]Token has been expired. Relogin to your "
                "application or perform a getToken operation to refresh your access token.",
            )
        if reason == "invalid":
            return ODataError(
                403,
                "TOKEN_INVALID",
                "[LGN0007]Invalid OAuth token. Please validate the value for your OAuth token.",
            )
        return None

    # ---- OData dispatch ----
    def _odata(self, req: Request) -> Response:
        try:
            denied = self._authenticate(req)
            if denied is not None:
                raise denied
            return self._route(req)
        except ODataError as exc:
            return self._fail(exc)

    def _version(self) -> tuple[int, date]:
        """Changes whenever User or EmpJob rows may: every write (User or EmpJob upsert
        included) is an org edit, and the default EmpJob as-of date is today."""
        return (self.org.version, self.org.clock().date())

    def _route(self, req: Request) -> Response:
        rest = req.match.group("rest") if req.match else ""  # Request.path is already decoded
        method = req.method
        if method == "POST" and req.headers.get("x-http-method"):
            method = req.headers["x-http-method"].upper()
        if rest == "$metadata" or rest.endswith("/$metadata"):
            names = (
                None if rest == "$metadata" else [n.strip() for n in rest[: -len("/$metadata")].split(",")]
            )
            unknown = [n for n in names or [] if n not in self.schema]
            if unknown:
                raise _entity_not_found(unknown[0])
            return Response(200, build_metadata(self.schema, names), {}, "application/xml;charset=utf-8")
        if rest == "upsert" and method == "POST":
            return Response.json({"d": self._upsert(req)})
        count = rest.endswith("/$count")
        m = _PATH.match(rest.removesuffix("/$count"))
        if not m or m.group("set") not in self.schema:
            raise _entity_not_found(m.group("set") if m else rest)
        coll = self.collections[m.group("set")]
        etype = coll.etype
        if m.group("key") is None:
            if m.group("tail"):
                raise _entity_not_found(rest)
            if method == "GET" and count:
                return Response(
                    200,
                    str(self.engine.count(self._scoped(coll, req), req.query)).encode(),
                    {},
                    "text/plain;charset=utf-8",
                )
            if method == "GET":
                body = self.engine.collection_json(self._scoped(coll, req), req.query, req.raw_query, rest)
                return Response(200, body)
            if method == "POST" and etype.name in self.goals.types:
                row = self.goals.create(etype.name, _body(req))
                return Response.json(
                    {"d": self.renderer.render(etype, row, parse_shape(None, None, etype, self.schema))}, 201
                )
            raise _unsupported(method, rest)
        key = parse_key(m.group("key"), etype)
        record = self._get(etype, key, m.group("key"))
        if m.group("tail"):
            return self._nav(req, coll, record, m.group("tail"), rest)
        if method == "GET":
            shape = parse_shape(_first(req, "$select"), _first(req, "$expand"), etype, self.schema)
            return Response.json({"d": self.renderer.render(etype, record, shape)})
        if etype.name in self.goals.types and method in {"MERGE", "PATCH", "PUT"}:
            self.goals.update(etype.name, int(key["id"]), _body(req), replace=method == "PUT")
            return Response.empty(204)
        if etype.name in self.goals.types and method == "DELETE":
            self.goals.delete(etype.name, int(key["id"]))
            return Response.empty(204)
        raise _unsupported(method, rest)

    def _get(self, etype: EntityType, key: dict[str, Any], predicate: str) -> Record:
        """Key lookups ignore the active-only default: ``User('x')`` answers whatever the status."""
        record: Record | None
        if etype is USER:
            w = self.people.worker(str(key["userId"]))
            record = None if w is None else self.people.user(w)
        elif etype is EMPJOB:
            record = self.people.job(key)
        else:
            record = self.goals.get(etype.name, int(key["id"]))
        if record is None:
            raise not_found(etype.name, "(" + predicate + ")")
        return record

    def _nav(self, req: Request, coll: Collection, record: Record, name: str, rest: str) -> Response:
        nav = coll.etype.nav(name)
        if nav is None or nav.target not in self.schema:
            raise property_not_found(coll.etype.name, [name])
        target = self.schema[nav.target]
        value = coll.navigate(record, name)
        if nav.many:
            items = value if isinstance(value, list) else []
            sub = Collection(target, lambda: items, self.collections[target.name].navigate)
            return Response(200, self.engine.collection_json(sub, req.query, req.raw_query, rest))
        if not isinstance(value, dict):
            return Response.json({"d": None})
        shape = parse_shape(_first(req, "$select"), _first(req, "$expand"), target, self.schema)
        return Response.json({"d": self.renderer.render(target, value, shape)})

    def _scoped(self, coll: Collection, req: Request) -> Collection:
        """EmpJob rows depend on the request's effective-dating parameters."""
        if coll.etype is not EMPJOB:
            return coll
        as_of, lo, hi = (_date_arg(req, n) for n in ("asOfDate", "fromDate", "toDate"))
        if lo is None and hi is None and as_of is None:
            as_of = self.org.clock().date()

        def rows() -> list[Record]:
            return self.people.jobs(
                as_of=as_of if lo is None and hi is None else None, from_date=lo, to_date=hi
            )

        return Collection(EMPJOB, rows, coll.navigate, version=coll.version)

    def _job_nav(self, record: Record, nav: str) -> Record | list[Record] | None:
        return self.people.job_nav(record, nav)

    def _goal_nav(self, record: Record, nav: str) -> Record | list[Record] | None:
        if nav != "milestones":
            return None
        return self.goals.milestones_of(str(record["_set"]), int(record["id"]))

    # ---- upsert ----
    def _upsert(self, req: Request) -> list[dict[str, Any]]:
        payload = _body(req)
        records = payload if isinstance(payload, list) else [payload]
        out = []
        for index, rec in enumerate(records):
            try:
                key = self._upsert_one(rec)
                out.append(
                    {
                        "key": key,
                        "status": "OK",
                        "editStatus": "UPSERTED",
                        "message": None,
                        "index": index,
                        "httpCode": 204,
                        "inlineResults": None,
                    }
                )
            except ODataError as exc:
                out.append(
                    {
                        "key": None,
                        "status": "ERROR",
                        "editStatus": None,
                        "message": exc.message,
                        "index": index,
                        "httpCode": 500,
                        "inlineResults": None,
                    }
                )
        return out

    def _upsert_one(self, rec: Any) -> str:
        if not isinstance(rec, dict):
            raise bad_request("[COE0012]Each upsert record must be a JSON object.")
        uri = str((rec.get("__metadata") or {}).get("uri") or "")
        m = _PATH.match(uri.rsplit("/odata/v2/", 1)[-1])
        if not m or m.group("key") is None or m.group("set") not in (USER.name, EMPJOB.name):
            raise bad_request(f"[COE0018]Upsert needs __metadata.uri of a User or EmpJob, not {uri!r}.")
        etype = self.schema[m.group("set")]
        values: dict[str, Any] = dict(parse_key(m.group("key"), etype))
        unknown = [
            k for k in rec if not k.startswith("__") and etype.prop(k) is None and etype.nav(k) is None
        ]
        if unknown:
            raise property_not_found(etype.name, unknown)
        manager: str | None = None
        for k, v in rec.items():
            prop = etype.prop(k)
            if prop is not None and k not in etype.keys:
                values[k] = from_json_value(prop, v)
            elif etype.nav(k) is not None:
                if k != "manager":
                    raise bad_request(f"[COE0018]Navigation {k} cannot be upserted in the sandbox.")
                manager = _nav_target(v)
        if etype is USER:
            return self.people.upsert_user(values, manager)
        return self.people.upsert_job(values)


def _active_only(node: Node | None) -> Node | None:
    """SF answers only active users unless the filter itself mentions ``status``."""
    active: Node = ("cmp", "eq", ("path", ("status",)), ("lit", "t"))
    if node is None:
        return active
    return node if references(node, "status") else ("and", node, active)


def _nav_target(value: Any) -> str:
    """``{"__metadata": {"uri": "User('mgr')"}}`` → ``mgr``; ``null`` clears the manager."""
    if value is None:
        return "NO_MANAGER"
    uri = str(((value or {}).get("__metadata") or {}).get("uri") or "") if isinstance(value, dict) else ""
    m = re.search(r"User\('((?:[^']|'')*)'\)$", uri)
    if not m:
        raise bad_request(
            f"[COE0018]Invalid navigation value {value!r}; expected {{'__metadata': {{'uri': "
            "\"User('id')\"}}."
        )
    return m.group(1).replace("''", "'")


def _body(req: Request) -> Any:
    try:
        return req.json()
    except ValueError:
        raise bad_request("[COE0012]The request body is not valid JSON.") from None


def _first(req: Request, name: str) -> str | None:
    return req.arg(name)


def _date_arg(req: Request, name: str) -> date | None:
    text = req.arg(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise bad_request(f"[COE0017]Invalid value {text!r} for {name}; expected yyyy-MM-dd.") from None


def _entity_not_found(name: str) -> ODataError:
    return ODataError(400, "COE_ENTITY_NOT_FOUND", f"[COE0007]invalid entity (or function) name: {name}")


def _unsupported(method: str, path: str) -> ODataError:
    return ODataError(
        405,
        "COE_METHOD_NOT_ALLOWED",
        f"[COE0019]{method} is not supported on {path}; use POST /odata/v2/upsert for User and EmpJob.",
    )
