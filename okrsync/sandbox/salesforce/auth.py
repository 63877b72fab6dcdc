"""Salesforce logins: SOAP ``login()``, and OAuth 2.0 JWT bearer, client credentials and password grants.

The SOAP envelope is parsed with defusedxml (no DTDs, no entity expansion) because it is
attacker-shaped input even in a sandbox; JWT assertions are verified with PyJWT against the
certificate the emulator generated at start-up, checking what Salesforce checks: RS256
signature, ``iss`` = the connected app's consumer key, ``sub`` = a known username, ``aud`` =
the login server, ``exp`` present and not passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import jwt
from defusedxml import ElementTree

from okrsync.sandbox.keys import self_signed
from okrsync.sandbox.server import Request, Response, TokenStore

_PARTNER = "urn:partner.soap.sforce.com"
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class Credentials:
    """What the emulator accepts; secrets are generated unless a test pins them."""

    username: str
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    security_token: str = field(default_factory=lambda: secrets.token_hex(12).upper())
    consumer_key: str = field(default_factory=lambda: "3MVG9" + secrets.token_urlsafe(40).replace("-", "A"))
    consumer_secret: str = field(default_factory=lambda: secrets.token_hex(32).upper())
    private_key_path: str = ""
    certificate_path: str = ""
    public_key: Any = None

    def make_keys(self) -> None:
        """An RSA key and self-signed certificate, as uploaded to a connected app for JWT bearer."""
        pair = self_signed(
            "okrsync sandbox connected app", tempfile.mkdtemp(prefix="okrsync-sf-jwt-"), stem="server"
        )
        self.private_key_path, self.certificate_path = pair.key_path, pair.cert_path
        key = pair.key
        self.public_key = key.public_key()


@dataclass
class LoginContext:
    """What a successful login answers with."""

    base_url: str
    api_version: str
    org_id: str
    user_id: str
    tokens: TokenStore


# ---------------------------------------------------------------- SOAP
def _soap_fault(code: str, message: str, *, client: bool = False) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{'soapenv:Client' if client else 'sf:' + code}</faultcode>"
        f"<faultstring>{escape(code)}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{escape(code)}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), content_type="text/xml; charset=utf-8")


def soap_login(req: Request, creds: Credentials, ctx: LoginContext) -> Response:
    """``POST /services/Soap/u/{version}`` with a partner ``login`` call (username + password+token)."""
    try:
        root = ElementTree.fromstring(req.body)
    except Exception:  # defusedxml raises several types; all mean "not an envelope we accept"
        return _soap_fault("INVALID_REQUEST", "could not parse the SOAP envelope", client=True)
    login = root.find(f"{{{_SOAP_ENV}}}Body/{{{_PARTNER}}}login")
    if login is None:
        return _soap_fault("INVALID_OPERATION", "expected a login call in the SOAP body", client=True)
    username = (login.findtext(f"{{{_PARTNER}}}username") or "").strip()
    password = login.findtext(f"{{{_PARTNER}}}password") or ""
    expected = creds.password + creds.security_token
    if username.lower() != creds.username.lower() or not hmac.compare_digest(password, expected):
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    session_id, ttl = ctx.tokens.issue({"sub": creds.username, "flow": "soap"})
    v = ctx.api_version
    base = ctx.base_url
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns="{_PARTNER}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>{base}/services/Soap/m/{v}/{ctx.org_id}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{v}/{ctx.org_id}</serverUrl>"
        f"<sessionId>{session_id}</sessionId><userId>{ctx.user_id}</userId>"
        f"<userInfo><organizationId>{ctx.org_id}</organizationId><sessionSecondsValid>{ttl}</sessionSecondsValid>"
        f"<userEmail>{escape(creds.username)}</userEmail><userId>{ctx.user_id}</userId>"
        f"<userName>{escape(creds.username)}</userName><userTimeZone>GMT</userTimeZone></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(200, body.encode(), content_type="text/xml; charset=utf-8")


# ---------------------------------------------------------------- OAuth 2.0
def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json({"error": error, "error_description": description}, status)


def _token_response(ctx: LoginContext, creds: Credentials, flow: str) -> Response:
    token, _ = ctx.tokens.issue({"sub": creds.username, "flow": flow})
    issued_at = str(int(time.time() * 1000))
    identity = f"{ctx.base_url}/id/{ctx.org_id}/{ctx.user_id}"
    signature = base64.b64encode(
        hmac.new(creds.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode()
    return Response.json(
        {
            "access_token": token,
            "scope": "api",
            "instance_url": ctx.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
    )


def _audience_ok(aud: Any, base_url: str) -> bool:
    """login/test.salesforce.com, the emulator itself, or simple-salesforce's ``https://{domain}.salesforce.com``
    for a domain that points at the emulator (``127.0.0.1:PORT/login`` → ``…/login.salesforce.com``)."""
    values = aud if isinstance(aud, list) else [aud]
    for value in values:
        if not isinstance(value, str):
            continue
        value = value.rstrip("/")
        if value in LOGIN_AUDIENCES or value == base_url:
            return True
        if (
            value.startswith(base_url + "/")
            and value.endswith(".salesforce.com")
            and "/" not in value[len(base_url) + 1 :]
        ):
            return True
    return False


def oauth_token(req: Request, creds: Credentials, ctx: LoginContext, *, my_domain: bool) -> Response:
    """``POST /services/oauth2/token`` (form-encoded), per grant type."""
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    if grant == JWT_GRANT:
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                creds.public_key,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return _oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != creds.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not _audience_ok(claims.get("aud"), ctx.base_url):
            return _oauth_error("invalid_grant", "audience is invalid")
        if str(claims.get("sub", "")).lower() != creds.username.lower():
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        return _token_response(ctx, creds, "jwt-bearer")
    if grant in ("client_credentials", "password"):
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return _oauth_error("invalid_client", "invalid client credentials")
        if client_id != creds.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret, creds.consumer_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "client_credentials":
            if not my_domain:
                return _oauth_error("invalid_grant", "request not supported on this domain")
            return _token_response(ctx, creds, "client-credentials")
        password = form.get("password", "")
        good = password == creds.password + creds.security_token
        if form.get("username", "").lower() != creds.username.lower() or not good:
            return _oauth_error("invalid_grant", "authentication failure")
        return _token_response(ctx, creds, "password")
    if not grant:
        return _oauth_error("invalid_request", "grant type not specified")
    return _oauth_error("unsupported_grant_type", "grant type not supported")
