"""SuccessFactors authentication: OAuth 2.0 SAML-bearer (the client signs its own assertion).

The flow SAP documents for API access: the OAuth client's private key signs a SAML 2.0
assertion (Issuer = client id, NameID = the API user's userId, a bearer SubjectConfirmation
whose Recipient is the token URL, Audience ``www.successfactors.com``, attribute ``api_key`` =
client id), RSA-SHA256 with exclusive c14n, enveloped; it is base64'd and traded at
``POST {base}/oauth/token`` for a bearer token. The token is cached until shortly before
``expires_in`` and dropped when SF answers 401 or 403 ``LGN0005``-``LGN0007``.

``/oauth/idp`` (SF signs the assertion for you, given the private key in a form field) is never
used: it sends the key over the wire and SAP deprecated it. Basic auth (``user@company:pw``)
is kept for sandboxes only and warns on every connection.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lxml import etree
from signxml import methods
from signxml.signer import XMLSigner

from okrsync.errors import AuthenticationError
from okrsync.http import HttpClient

log = logging.getLogger("okrsync.connectors.successfactors")

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
REFRESH_MARGIN = timedelta(seconds=120)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_assertion(
    *,
    private_key_pem: bytes,
    certificate_pem: bytes | None,
    client_id: str,
    user_id: str,
    token_url: str,
    audience: str = "www.successfactors.com",
    now: datetime,
    lifetime: timedelta = timedelta(minutes=10),
) -> str:
    """A signed SAML 2.0 bearer assertion, base64-encoded for the ``assertion`` form field."""
    s = f"{{{SAML}}}"
    root = etree.Element(
        s + "Assertion",
        nsmap={"saml2": SAML},
        ID="_" + uuid.uuid4().hex,
        IssueInstant=_iso(now),
        Version="2.0",
    )
    etree.SubElement(root, s + "Issuer").text = client_id
    # where the signature goes: SAML's schema wants it right after Issuer
    etree.SubElement(root, f"{{{DSIG}}}Signature", Id="placeholder", nsmap={"ds": DSIG})
    subject = etree.SubElement(root, s + "Subject")
    etree.SubElement(
        subject, s + "NameID", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    ).text = user_id
    confirmation = etree.SubElement(subject, s + "SubjectConfirmation", Method=BEARER)
    etree.SubElement(
        confirmation, s + "SubjectConfirmationData", NotOnOrAfter=_iso(now + lifetime), Recipient=token_url
    )
    conditions = etree.SubElement(
        root, s + "Conditions", NotBefore=_iso(now - timedelta(minutes=1)), NotOnOrAfter=_iso(now + lifetime)
    )
    etree.SubElement(etree.SubElement(conditions, s + "AudienceRestriction"), s + "Audience").text = audience
    authn = etree.SubElement(
        root, s + "AuthnStatement", AuthnInstant=_iso(now), SessionIndex=uuid.uuid4().hex
    )
    etree.SubElement(
        etree.SubElement(authn, s + "AuthnContext"), s + "AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    attr = etree.SubElement(etree.SubElement(root, s + "AttributeStatement"), s + "Attribute", Name="api_key")
    etree.SubElement(attr, s + "AttributeValue").text = client_id
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    signed = signer.sign(
        root, key=private_key_pem, cert=certificate_pem.decode() if certificate_pem else None
    )
    return base64.b64encode(etree.tostring(signed)).decode("ascii")


class SamlBearerAuth:
    """``TokenAuth`` for the shared HTTP client: a cached bearer token from a signed assertion."""

    def __init__(
        self,
        client: HttpClient,
        *,
        token_url: str,
        company_id: str,
        client_id: str,
        user_id: str,
        private_key_pem: bytes,
        certificate_pem: bytes | None,
        audience: str,
        lifetime: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.token_url = token_url
        self.company_id = company_id
        self.client_id = client_id
        self.user_id = user_id
        self._key = private_key_pem
        self._cert = certificate_pem
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = threading.Lock()
        self.fetched = 0  # tokens obtained (tests and reports)

    def assertion(self) -> str:
        return build_assertion(
            private_key_pem=self._key,
            certificate_pem=self._cert,
            client_id=self.client_id,
            user_id=self.user_id,
            token_url=self.token_url,
            audience=self.audience,
            now=self.clock(),
            lifetime=self.lifetime,
        )

    def header(self) -> str:
        with self._lock:
            now = self.clock()
            if self._token is None or (self._expires is not None and now >= self._expires):
                self._fetch(now)
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._expires = None

    def _fetch(self, now: datetime) -> None:
        form = {
            "company_id": self.company_id,
            "client_id": self.client_id,
            "grant_type": GRANT_TYPE,
            "assertion": self.assertion(),
        }
        response = self.client.request(
            "POST", self.token_url, operation="oauth token", data=form, authenticate=False, ok=(200,)
        )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                "token endpoint answered without an access_token",
                connector=self.client.connector,
                operation="oauth token",
                url=self.token_url,
            ) from None
        self._token = token
        # refresh a little early (at most 2 minutes, at most a tenth of the lifetime)
        self._expires = (
            now + timedelta(seconds=expires_in) - min(REFRESH_MARGIN, timedelta(seconds=expires_in / 10))
        )
        self.fetched += 1


class BasicAuth:
    """``user@company:password``: being retired by SAP, for sandboxes only."""

    def __init__(self, user: str, company_id: str, password: str) -> None:
        message = (
            "SuccessFactors Basic authentication is deprecated and being retired by SAP; "
            "use auth = 'saml' (OAuth 2.0 SAML bearer) outside sandboxes"
        )
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        log.warning(message)
        raw = f"{user}@{company_id}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode("ascii")

    def header(self) -> str:
        return self._header

    def invalidate(self) -> None:
        """Nothing to refresh: a rejected password stays rejected."""
