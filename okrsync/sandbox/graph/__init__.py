"""Microsoft Graph v1.0 + Entra login emulator (``okrsync.sandbox.graph:GraphEmulator``).

One HTTPS server plays both hosts (login and Graph share the base URL, so msal and
msgraph-sdk can be pointed at it with a CA bundle). Modules by concern:

- ``login``: OIDC discovery and the client-credentials token endpoint (secret or certificate);
- ``directory``: the tenant's users, built from the org in ``same``/``stale`` mode or ``empty``;
- ``users``: ``/users`` reads and writes; ``delta``: ``/users/delta``; ``batch``: ``/$batch``;
- ``groups``: security groups, ``/members`` and ``/transitiveMembers`` (scoping a pull);
- ``learning``: Viva Learning providers, contents and course activities.

Every response carries ``request-id``/``client-request-id``; errors use Graph's body with the
same ids in ``innerError``. See ``/work/shared/api-notes.md`` §1 for the wire facts followed.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from typing import Any

from okrsync.sandbox.graph.batch import BatchApi
from okrsync.sandbox.graph.common import (
    GRAPH_APP_ID,
    GraphError,
    TokenCodec,
    begin_request,
    current_ids,
    dump,
    end_request,
    error_body,
)
from okrsync.sandbox.graph.delta import DeltaApi, DeltaSettings
from okrsync.sandbox.graph.directory import Directory
from okrsync.sandbox.graph.groups import Groups
from okrsync.sandbox.graph.learning import LearningApi
from okrsync.sandbox.graph.login import (
    AppRegistration,
    Certificate,
    LoginService,
    generate_certificate,
    load_certificate,
    new_client_secret,
)
from okrsync.sandbox.graph.users import UsersApi
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.server import Emulator, FaultSpec, Request, Response, TokenStore, sandbox_ca_path

DEFAULT_CLIENT_ID = "6f1c7e5a-3b2d-4c8e-9a0f-5e4d3c2b1a09"
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="{GRAPH_APP_ID}"'
)
_TOKEN_PROBLEMS = {
    "missing": "Access token is empty.",
    "invalid": "IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in JWS or JWE "
    "Compact Serialization Format.",
    "expired": "Lifetime validation failed, the token is expired.",
}
# The base server's generic fault codes, in Graph's spelling.
_GRAPH_CODES = {"ServiceUnavailable": "serviceNotAvailable", "InternalServerError": "generalException"}


class GraphEmulator(Emulator):
    """Entra ID login + Microsoft Graph v1.0 over one generated org.

    ``directory``: ``"same"`` (the org exactly; pre-hires and terminated users disabled, deleted
    ones absent), ``"empty"`` (a push target) or ``"stale"`` (``stale_fraction`` of users with a
    differing jobTitle/department and/or a wrong/missing manager). ``certificate``: True
    generates a key and certificate (paths in :meth:`connection`), a str registers an existing
    PEM certificate, False disables certificate credentials. ``delta_expiry``: ``"gone"`` (410 +
    Location) or ``"sync_state_not_found"`` (400) for expired delta tokens.
    """

    system = "entra"
    tls = True

    def __init__(
        self,
        org: SandboxOrg,
        *,
        faults: FaultSpec | None = None,
        directory: str = "same",
        stale_fraction: float = 0.2,
        tenant_id: str = "sandbox.onmicrosoft.com",
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str | None = None,
        certificate: bool | str = True,
        delta_expiry: str = "gone",
        delta_page_size: int = 200,
    ) -> None:
        super().__init__(org, faults=faults)
        self._workdir = tempfile.TemporaryDirectory(prefix="okrsync-entra-")
        self.directory = Directory(org, directory, stale_fraction)
        self.tokens = TokenStore(self.faults.spec.token_ttl)
        self.app = AppRegistration(
            tenant_id,
            client_id,
            client_secret or new_client_secret(),
            self._certificate(certificate, client_id),
        )
        codec = TokenCodec(secrets.token_bytes(32))
        self.login = LoginService(self.app, self.tokens, lambda: self.base_url)
        self.users = UsersApi(self.directory, codec, {tenant_id, org.domain})
        self.delta = DeltaApi(
            self.directory,
            codec,
            DeltaSettings(delta_page_size, delta_expiry, lambda: self.faults.spec.delta_ttl),
        )
        self.batch = BatchApi(self.dispatch, lambda: self.faults.draw(), lambda: self.faults.spec.retry_after)
        self.learning = LearningApi(self.directory)
        self.groups = Groups(self.directory, codec)
        # order matters: specific paths (delta, $count, $ref, learning) before the generic /users/{id}
        for api in (self.login, self.delta, self.batch, self.learning, self.groups, self.users):
            for method, pattern, handler in api.routes():
                self.route(method, pattern, handler)
        self.route("POST", r"/_sandbox/expire-delta", self._expire_delta)
        self.route("GET", r"/_sandbox/directory", self._directory_snapshot)
        self.route("POST", r"/_sandbox/groups", self._create_group)
        self.route("POST", r"/_sandbox/groups/(?P<group>[^/]+)/members", self._change_group)

    def _certificate(self, certificate: bool | str, client_id: str) -> Certificate | None:
        if certificate is True:
            return generate_certificate(self._workdir.name, client_id)
        if isinstance(certificate, str):
            return load_certificate(certificate)
        return None

    # ---- settings ----
    def connection(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "type": "entra",
            "tenant_id": self.app.tenant_id,
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret,
            "login_url": self.base_url,
            "graph_url": self.base_url,
            "ca_bundle": sandbox_ca_path(),
        }
        cert = self.app.certificate
        if cert is not None:
            settings["certificate_thumbprint"] = cert.sha1_thumbprint
            settings["certificate_path"] = cert.cert_path
            if cert.key_path:
                settings["private_key_path"] = cert.key_path
        return settings

    # ---- Graph-shaped answers ----
    def error(self, status: int, code: str, message: str) -> Response:
        ids = current_ids()
        resp = Response(status, dump(error_body(_GRAPH_CODES.get(code, code), message, ids)))
        resp.headers.update({"request-id": ids[0], "client-request-id": ids[1]})
        return resp

    def throttled(self) -> Response:
        resp = self.error(
            429, "TooManyRequests", "Too many requests; retry after the time in the Retry-After header."
        )
        resp.headers["Retry-After"] = f"{self.faults.spec.retry_after:g}"
        return resp

    # ---- dispatch: ids, auth, Graph's answers for unknown paths ----
    def dispatch(self, req: Request) -> Response:
        begin_request(req.headers.get("client-request-id"))
        try:
            try:
                resp = self._route(req)
            except GraphError as exc:
                resp = self.error(exc.status, exc.code, exc.message)
                resp.headers.update(exc.headers)
            request_id, client_request_id = current_ids()
            resp.headers.setdefault("request-id", request_id)
            resp.headers.setdefault("client-request-id", client_request_id)
            return resp
        finally:
            end_request()

    def _route(self, req: Request) -> Response:
        graph = req.path.lower().startswith("/v1.0/")
        if graph:
            self._authorize(req)
        other_method = False
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if m is None:
                continue
            if method != req.method:
                other_method = True
                continue
            req.match = m
            return handler(req)
        if other_method:
            raise GraphError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        if graph:
            segment = re.sub(r"(?i)^/v1\.0/", "", req.path).split("/")[-1]
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        raise GraphError(404, "NotFound", f"no route for {req.method} {req.path}")

    def _authorize(self, req: Request) -> None:
        self.tokens.ttl = self.faults.spec.token_ttl  # follows /_sandbox/faults changes
        problem = self.tokens.check(req.headers.get("authorization"))
        if problem is not None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                _TOKEN_PROBLEMS[problem],
                {"WWW-Authenticate": WWW_AUTHENTICATE},
            )

    # ---- sandbox controls ----
    def _expire_delta(self, req: Request) -> Response:
        body = req.json() if req.body else {}
        try:
            self.delta.expire_all((body or {}).get("mode"))
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"expired": True, "mode": self.delta.settings.expiry})

    def _create_group(self, req: Request) -> Response:
        """``{"displayName", "members": [object id | UPN | employeeId], "groups": [group id]}``."""
        body = req.json() if req.body else {}
        try:
            group = self.groups.create(
                str(body.get("displayName") or "Sandbox group"),
                body.get("members") or (),
                body.get("groups") or (),
                gid=body.get("id"),
                description=body.get("description"),
            )
        except (ValueError, GraphError) as exc:
            return Response.json({"error": getattr(exc, "message", str(exc))}, 400)
        return Response.json(group.json(), 201)

    def _change_group(self, req: Request) -> Response:
        """``{"add": [...], "remove": [...], "addGroups": [...], "removeGroups": [...]}``."""
        assert req.match is not None
        body = req.json() if req.body else {}
        try:
            group = self.groups.change(
                req.match.group("group"),
                add=body.get("add") or (),
                remove=body.get("remove") or (),
                add_groups=body.get("addGroups") or (),
                remove_groups=body.get("removeGroups") or (),
            )
        except (ValueError, GraphError) as exc:
            return Response.json({"error": getattr(exc, "message", str(exc))}, 400)
        return Response.json({**group.json(), "members": list(group.users), "groups": list(group.groups)})

    def _directory_snapshot(self, req: Request) -> Response:
        with self.directory.lock:
            return Response.json(
                {
                    "mode": self.directory.mode,
                    "version": self.directory.version,
                    "stale": self.directory.stale,
                    "users": self.directory.snapshot(),
                }
            )


__all__ = ["DEFAULT_CLIENT_ID", "GraphEmulator"]
