"""Workday REST (``/ccx/api/v1/{tenant}``) and its OAuth refresh-token grant.

The worker summary has no manager field (as in Workday): a worker's manager is found through
``primarySupervisoryOrganization`` → ``/supervisoryOrganizations/{id}`` → ``manager``/``managers``.
Each worker who has reports heads one supervisory organization; every worker belongs to the
organization headed by their manager, and a top-level worker (no manager) to the one they head,
so a resolved manager equal to the worker means "no manager". Paging is ``offset``/``limit``
(default 20, maximum 100) in a ``{"total": N, "data": [...]}`` envelope.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from okrsync.sandbox.server import Request, Response
from okrsync.sandbox.workday.state import Record, State, SupOrg, WorkerRef

if TYPE_CHECKING:
    from okrsync.sandbox.workday import WorkdayEmulator

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def rest_error(status: int, message: str, **where: str) -> Response:
    """Workday REST's error envelope: a summary plus one entry per problem."""
    return Response.json({"error": message, "errors": [{"error": message, **where}]}, status)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, secret) if sep else None


class RestApi:
    """Routes of the REST API; answers from the emulator's current tenant state."""

    def __init__(self, emulator: WorkdayEmulator) -> None:
        self.emu = emulator
        base = r"/ccx/api/v1/(?P<tenant>[^/]+)"
        emulator.route("POST", r"/ccx/oauth2/(?P<tenant>[^/]+)/token", self.token)
        emulator.route("GET", base + r"/workers", self.workers)
        emulator.route("GET", base + r"/workers/(?P<id>[^/]+)", self.worker)
        emulator.route("GET", base + r"/supervisoryOrganizations", self.organizations)
        emulator.route("GET", base + r"/supervisoryOrganizations/(?P<id>[^/]+)", self.organization)
        emulator.route("GET", base + r"/supervisoryOrganizations/(?P<id>[^/]+)/orgChart", self.org_chart)
        emulator.route("GET", base + r"/supervisoryOrganizations/(?P<id>[^/]+)/workers", self.org_workers)

    # ---- OAuth ----
    def token(self, req: Request) -> Response:
        emu = self.emu
        if req.match is None or req.match.group("tenant") != emu.tenant:
            return Response.json({"error": "invalid_request", "error_description": "unknown tenant"}, 400)
        form = {
            k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client = basic_credentials(req.headers.get("authorization")) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if not (
            hmac.compare_digest(client[0], emu.client_id)
            and hmac.compare_digest(client[1], emu.client_secret)
        ):
            return Response.json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        if not hmac.compare_digest(form.get("refresh_token", ""), emu.refresh_token):
            return Response.json({"error": "invalid_grant"}, 400)
        token, expires = emu.tokens.issue({"client_id": client[0]})
        return Response.json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "refresh_token": emu.refresh_token,
                "expires_in": expires,
            }
        )

    # ---- helpers ----
    def _guard(self, req: Request) -> Response | None:
        if req.match is None or req.match.group("tenant") != self.emu.tenant:
            return rest_error(404, "invalid tenant")
        reason = self.emu.tokens.check(req.headers.get("authorization"))
        if reason:
            return rest_error(
                401, f"invalid request: {reason} token", location="header", field="Authorization"
            )
        return None

    def _page(self, req: Request, items: list[Any]) -> Response:
        try:
            limit = int(req.arg("limit") or DEFAULT_LIMIT)
            offset = int(req.arg("offset") or 0)
        except ValueError:
            return rest_error(400, "invalid request: limit and offset must be integers", location="query")
        if not 1 <= limit <= MAX_LIMIT:
            return rest_error(
                400,
                f"invalid request: limit must be between 1 and {MAX_LIMIT}",
                field="limit",
                location="query",
            )
        if offset < 0:
            return rest_error(
                400, "invalid request: offset must not be negative", field="offset", location="query"
            )
        total = len(items)
        if offset and self.emu.rest_unreliable_total:
            total = 0  # reported for some Workday endpoints: only page 1's total can be trusted
        return Response.json({"total": total, "data": items[offset : offset + limit]})

    def _href(self, kind: str, wid: str) -> str:
        return f"{self.emu.base_url}/ccx/api/v1/{self.emu.tenant}/{kind}/{wid}"

    def _listed(self, req: Request, records: list[Record]) -> list[Record]:
        terminated = (req.arg("includeTerminatedWorkers") or "").lower() == "true"
        return [r for r in records if r.status == "active" or (terminated and r.status == "terminated")]

    def worker_ref(self, ref: WorkerRef) -> dict[str, Any]:
        return {"id": ref.wid, "descriptor": ref.descriptor, "href": self._href("workers", ref.wid)}

    def org_ref(self, org: SupOrg) -> dict[str, Any]:
        return {
            "id": org.ref.wid,
            "descriptor": org.ref.name,
            "href": self._href("supervisoryOrganizations", org.ref.wid),
        }

    def summary(self, r: Record) -> dict[str, Any]:
        key = ("rest-summary", self.emu.base_url)
        cached = r.cache.get(key)
        if cached is None:
            cached = {
                "id": r.ref.wid,
                "descriptor": r.display_name,
                "href": self._href("workers", r.ref.wid),
                "businessTitle": r.title,
                "primaryWorkEmail": r.email,
                "isManager": r.is_manager,
                "primarySupervisoryOrganization": {
                    "id": r.sup_org.wid,
                    "descriptor": r.sup_org.name,
                    "href": self._href("supervisoryOrganizations", r.sup_org.wid),
                },
            }
            r.cache[key] = cached
        return dict(cached)

    def _org(self, req: Request) -> tuple[State, SupOrg | None]:
        """The tenant view and the supervisory organization the path names (None: answer _missing_org())."""
        state = self.emu.tenant_state.current()
        assert req.match is not None
        return state, state.orgs.get(req.match.group("id"))

    # ---- routes ----
    def workers(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        state = self.emu.tenant_state.current()
        return self._page(req, [self.summary(r) for r in self._listed(req, state.people)])

    def worker(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        r = self.emu.tenant_state.current().by_wid.get(req.match.group("id"))
        if r is None or r.former:
            return rest_error(404, "invalid resource id: worker not found", field="ID", location="path")
        detail = self.summary(r)
        detail.update(
            {
                "workerId": r.ref.number,
                "workerType": {
                    "id": r.worker_type,
                    "descriptor": "Employee" if r.worker_type == "employee" else "Contingent Worker",
                },
                "location": {"descriptor": r.location},
                "active": r.status == "active",
            }
        )
        return Response.json(detail)

    def organizations(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        state = self.emu.tenant_state.current()
        orgs = sorted(state.orgs.values(), key=lambda o: o.head_index)
        return self._page(req, [self.org_ref(o) | {"code": o.ref.ref_id, "name": o.ref.name} for o in orgs])

    def organization(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        state, org = self._org(req)
        if org is None:
            return _missing_org()
        manager = self.worker_ref(org.head)
        superior = state.orgs.get(org.superior.wid) if org.superior else None
        return Response.json(
            self.org_ref(org)
            | {
                "code": org.ref.ref_id,
                "name": org.ref.name,
                "manager": manager,
                "managers": [manager],
                "superiorOrganization": self.org_ref(superior) if superior else None,
                "workerCount": len([m for m in org.members if m.status == "active"]),
            }
        )

    def org_chart(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        state, org = self._org(req)
        if org is None:
            return _missing_org()
        superior = state.orgs.get(org.superior.wid) if org.superior else None
        subordinates = [state.orgs[s.wid] for s in org.subordinates if s.wid in state.orgs]
        chart = self.org_ref(org) | {
            "supervisoryOrganization": self.org_ref(org),
            "superiorOrganization": self.org_ref(superior) if superior else None,
            "managers": [self.worker_ref(org.head)],
            "subordinates": [self.org_ref(s) | {"managers": [self.worker_ref(s.head)]} for s in subordinates],
            "workerCount": len([m for m in org.members if m.status == "active"]),
        }
        return Response.json({"total": 1, "data": [chart]})

    def org_workers(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        _, org = self._org(req)
        if org is None:
            return _missing_org()
        return self._page(req, [self.summary(r) for r in self._listed(req, org.members)])


def _missing_org() -> Response:
    return rest_error(
        404, "invalid resource id: supervisory organization not found", field="ID", location="path"
    )
