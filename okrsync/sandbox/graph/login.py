"""The Microsoft identity platform endpoints msal needs for client credentials.

OIDC discovery, instance discovery and ``/oauth2/v2.0/token`` with a client secret or a
certificate-signed ``client_assertion`` (RS256 with ``x5t`` as msal sends with a SHA-1
thumbprint, PS256 with ``x5t#S256`` as it sends without one). Errors are AADSTS-shaped
so connectors learn to surface ``error_description`` and the codes, as they must in production.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from okrsync.sandbox.graph.common import GRAPH_APP_ID
from okrsync.sandbox.server import Request, Response, TokenStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

GRAPH_RESOURCES = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "https://canary.graph.microsoft.com",
    GRAPH_APP_ID,
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Certificate:
    """A registered app certificate; ``key_path`` is set when the sandbox generated the key too."""

    cert: x509.Certificate
    cert_path: str
    key_path: str | None = None

    @property
    def sha1_thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1 by definition

    @property
    def x5t(self) -> str:
        return _b64url(self.cert.fingerprint(hashes.SHA1()))  # noqa: S303

    @property
    def x5t_s256(self) -> str:
        return _b64url(self.cert.fingerprint(hashes.SHA256()))

    def public_key(self) -> PublicKeyTypes:
        return self.cert.public_key()


from okrsync.sandbox.keys import self_signed  # noqa: E402


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def generate_certificate(directory: str, client_id: str) -> Certificate:
    """A throwaway RSA key and self-signed certificate, written as PEMs for the connection settings."""
    pair = self_signed(f"okrsync-sandbox-{client_id}", directory, stem="entra-app")
    cert, cert_path, key_path = pair.cert, pair.cert_path, pair.key_path
    return Certificate(cert, str(cert_path), str(key_path))


def load_certificate(path: str) -> Certificate:
    return Certificate(x509.load_pem_x509_certificate(Path(path).read_bytes()), path)


@dataclass
class AppRegistration:
    """The one confidential client app the tenant knows."""

    tenant_id: str
    client_id: str
    client_secret: str
    certificate: Certificate | None
    tenant_guid: str = field(init=False)

    def __post_init__(self) -> None:
        self.tenant_guid = str(uuid.uuid5(uuid.NAMESPACE_DNS, self.tenant_id))

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in {self.tenant_id.lower(), self.tenant_guid}


class LoginError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def new_client_secret() -> str:
    """Shaped like an Entra secret value (``xxx8Q~...``), so redaction patterns get exercised."""
    return secrets.token_urlsafe(3)[:3] + "8Q~" + secrets.token_urlsafe(27)[:34]


class LoginService:
    """Serves discovery and token routes for one :class:`AppRegistration`."""

    def __init__(self, app: AppRegistration, tokens: TokenStore, base_url: Callable[[], str]) -> None:
        self.app = app
        self.tokens = tokens
        self._base_url = base_url  # a callable: the base URL is known only once the server listens

    @property
    def base(self) -> str:
        return self._base_url()

    def routes(self) -> list[tuple[str, str, Any]]:
        tenant = r"(?P<tenant>[^/]+)"
        return [
            ("GET", rf"(?i)/{tenant}/v2\.0/\.well-known/openid-configuration", self.openid_configuration),
            ("GET", rf"(?i)/{tenant}/\.well-known/openid-configuration", self.openid_configuration),
            ("GET", r"(?i)/common/discovery/instance", self.instance_discovery),
            ("GET", rf"(?i)/{tenant}/discovery/v2\.0/keys", self.keys),
            ("POST", rf"(?i)/{tenant}/oauth2/v2\.0/token", self.token),
        ]

    # ---- discovery ----
    def openid_configuration(self, req: Request) -> Response:
        tenant = self._tenant(req)
        if not self.app.knows_tenant(tenant):
            return self._error(
                LoginError(
                    400,
                    "invalid_tenant",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make "
                    "sure you have the correct tenant ID and are signing into the correct cloud.",
                )
            )
        root = f"{self.base}/{self.app.tenant_guid}"
        return Response.json(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base}/oidc/userinfo",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles"],
                "kerberos_endpoint": f"{root}/kerberos",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": self.base.split("://", 1)[-1],
                "rbac_url": "https://pas.windows.net",
            }
        )

    def instance_discovery(self, req: Request) -> Response:
        """What msal asks when given this endpoint as ``instance_discovery``: the host is its own alias."""
        host = self.base.split("://", 1)[-1]
        authority = (
            req.arg("authorization_endpoint") or f"{self.base}/{self.app.tenant_id}/oauth2/v2.0/authorize"
        )
        tenant = (
            authority.split("://", 1)[-1].split("/")[1] if authority.count("/") >= 3 else self.app.tenant_id
        )
        return Response.json(
            {
                "tenant_discovery_endpoint": f"{self.base}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )

    def keys(self, req: Request) -> Response:
        return Response.json({"keys": []})

    # ---- token ----
    def token(self, req: Request) -> Response:
        try:
            form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
            self._check_request(req, form)
            self._authenticate(req, form)
            scope = self._check_scope(form.get("scope"))
        except LoginError as exc:
            return self._error(exc, req.headers.get("client-request-id"))
        token, ttl = self.tokens.issue({"appid": self.app.client_id, "scope": scope})
        return Response.json(
            {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}
        )

    def _check_request(self, req: Request, form: dict[str, str]) -> None:
        tenant = self._tenant(req)
        if not self.app.knows_tenant(tenant):
            raise LoginError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you "
                "have the correct tenant ID and are signing into the correct cloud.",
            )
        grant = form.get("grant_type")
        if not grant:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        if grant != "client_credentials":
            raise LoginError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )

    def _authenticate(self, req: Request, form: dict[str, str]) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):  # client_secret_basic
            decoded = base64.b64decode(basic[6:].strip()).decode()
            user, _, password = decoded.partition(":")
            client_id, secret = unquote(user), unquote(password)
        if not client_id:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        if client_id.lower() != self.app.client_id.lower():
            raise LoginError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.app.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant.",
            )
        if form.get("client_assertion") is not None:
            self._check_assertion(req, form)
        elif secret is not None:
            if not hmac.compare_digest(secret.encode(), self.app.client_secret.encode()):
                raise LoginError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the "
                    f"client secret value, not the client secret ID, for a secret added to app "
                    f"'{self.app.client_id}'.",
                )
        else:
            raise LoginError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'.",
            )

    def _check_assertion(self, req: Request, form: dict[str, str]) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise LoginError(
                400,
                "invalid_request",
                50027,
                f"JWT token is invalid or malformed: client_assertion_type must be '{ASSERTION_TYPE}'.",
            )
        cert = self.app.certificate
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise LoginError(
                400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({exc})"
            ) from None
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # msal pads base64url
        if cert is None or thumbprint not in {cert.x5t, cert.x5t_s256}:
            raise LoginError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. "
                f"[Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']",
            )
        audiences = [f"{self.base}/{t}/oauth2/v2.0/token" for t in (self.app.tenant_id, self.app.tenant_guid)]
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise LoginError(401, "invalid_client", 700027, "Only RSA certificates are supported.")
        try:
            jwt.decode(
                assertion,
                key,
                algorithms=["RS256", "PS256"],
                audience=audiences,
                issuer=self.app.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
                leeway=300,
            )
        except jwt.ExpiredSignatureError:
            raise LoginError(
                401, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidAudienceError:
            raise LoginError(
                401,
                "invalid_client",
                700021,
                f"Client assertion audience claim does not match Realm issuer. Expected one of {audiences}.",
            ) from None
        except jwt.InvalidIssuerError:
            raise LoginError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ) from None
        except jwt.PyJWTError as exc:
            raise LoginError(
                401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc})"
            ) from None
        if jwt.decode(assertion, options={"verify_signature": False}).get("sub") != self.app.client_id:
            raise LoginError(401, "invalid_client", 700023, "Client assertion subject must be the client id.")

    def _check_scope(self, scope: str | None) -> str:
        if not scope:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        parts = scope.split()
        if len(parts) != 1 or not parts[0].endswith("/.default"):
            raise LoginError(
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input "
                f"parameter. The provided value for the input parameter 'scope' is not valid: '{scope}'. "
                "The scope for a client credential flow must be '{resource}/.default'.",
            )
        resource = parts[0].removesuffix("/.default").rstrip("/").lower()
        host = self.base.split("://", 1)[-1].rsplit(":", 1)[0]
        known = {r.lower() for r in GRAPH_RESOURCES} | {
            self.base.lower(),
            f"https://{host}",
            "https://localhost",
        }
        if resource not in known:
            raise LoginError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not "
                f"found in the tenant named {self.app.tenant_id}. This can happen if the application "
                "has not been installed by the administrator of the tenant or consented to by any "
                "user in the tenant.",
            )
        return parts[0]

    # ---- helpers ----
    @staticmethod
    def _tenant(req: Request) -> str:
        return req.match.group("tenant") if req.match else ""

    def _error(self, exc: LoginError, correlation_id: str | None = None) -> Response:
        trace, correlation = str(uuid.uuid4()), correlation_id or str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{exc.code}: {exc.description} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        )
        return Response.json(
            {
                "error": exc.error,
                "error_description": description,
                "error_codes": [exc.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.base}/error?code={exc.code}",
            },
            exc.status,
            {"x-ms-request-id": trace},
        )
