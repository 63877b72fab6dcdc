"""SuccessFactors authentication: the registered OAuth client and SAML-bearer assertions.

SF's OAuth client registration stores the client's X.509 certificate; the client signs a SAML
2.0 assertion with the matching private key and trades it at ``/oauth/token`` for a bearer
token. The emulator generates that key pair at start-up (so the connector is exercised with a
real signature, not a shared secret) and verifies assertions the way SF must:

* the XML is parsed without DTDs, entities or network access (defusedxml refuses a DOCTYPE
  before lxml sees the bytes), so a hostile assertion cannot expand or fetch anything;
* the enveloped RSA signature is checked by signxml against the *registered* certificate only
  (a certificate embedded in ``KeyInfo`` is never trusted);
* claims are read from the element signxml returns as signed, never from the raw document, so
  signature-wrapping (a second, unsigned Assertion) cannot smuggle in a different NameID.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree as SafeET
from lxml import etree
from signxml.exceptions import SignXMLException
from signxml.verifier import XMLVerifier

from okrsync.sandbox.keys import self_signed

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
AUDIENCE = "www.successfactors.com"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"


class AuthFailure(Exception):
    """An assertion or credential the emulator refuses; the message says which check failed."""


@dataclass(frozen=True)
class ClientKeys:
    """The registered OAuth client's key pair, as PEM files a connector can be pointed at."""

    directory: str
    private_key_path: str
    certificate_path: str
    certificate_pem: bytes

    @classmethod
    def generate(cls, client_id: str) -> ClientKeys:
        directory = tempfile.mkdtemp(prefix="okrsync-sf-oauth-")
        pair = self_signed(f"okrsync sandbox {client_id}", directory, days=3650)
        key_path, cert_path, cert_pem = pair.key_path, pair.cert_path, pair.cert_pem
        return cls(directory, key_path, cert_path, cert_pem)


def _instant(text: str | None, what: str) -> datetime:
    if not text:
        raise AuthFailure(f"assertion has no {what}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AuthFailure(f"assertion {what} {text!r} is not an xs:dateTime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def verify_assertion(
    encoded: str,
    *,
    certificate_pem: bytes,
    client_id: str,
    recipient: str,
    now: datetime,
    skew: timedelta = timedelta(minutes=5),
) -> str:
    """Check a base64 SAML assertion; returns its NameID (the SF userId) or raises AuthFailure."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthFailure("assertion is not valid base64") from None
    try:
        SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception as exc:  # defusedxml raises several types: DTDForbidden, ParseError, ...
        raise AuthFailure(f"assertion is not acceptable XML ({type(exc).__name__})") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        doc = etree.fromstring(raw, parser=parser)
        result = XMLVerifier().verify(doc, x509_cert=certificate_pem.decode())
    except (SignXMLException, etree.XMLSyntaxError) as exc:
        raise AuthFailure(
            f"assertion signature does not verify against the registered certificate: {exc}"
        ) from None
    if isinstance(result, list):  # only with expect_references > 1, which the default config forbids
        raise AuthFailure("assertion must carry exactly one signed reference")
    signed = result.signed_xml
    if signed is None or signed.tag != f"{{{SAML}}}Assertion":
        raise AuthFailure("the signed element is not a SAML 2.0 Assertion")

    def text(path: str) -> str | None:
        el = signed.find(path, {"s": SAML})
        return None if el is None or el.text is None else el.text.strip()

    if text("s:Issuer") != client_id:
        raise AuthFailure("assertion Issuer is not the registered client id")
    name_id = text("s:Subject/s:NameID")
    if not name_id:
        raise AuthFailure("assertion has no Subject/NameID")
    confirmation = signed.find("s:Subject/s:SubjectConfirmation", {"s": SAML})
    if confirmation is None or confirmation.get("Method") != BEARER:
        raise AuthFailure("assertion has no bearer SubjectConfirmation")
    data = confirmation.find("s:SubjectConfirmationData", {"s": SAML})
    if data is None or data.get("Recipient") != recipient:
        raise AuthFailure(f"assertion Recipient is not {recipient}")
    if now > _instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter") + skew:
        raise AuthFailure("assertion subject confirmation has expired")
    conditions = signed.find("s:Conditions", {"s": SAML})
    if conditions is None:
        raise AuthFailure("assertion has no Conditions")
    if now + skew < _instant(conditions.get("NotBefore"), "Conditions NotBefore"):
        raise AuthFailure("assertion is not valid yet (NotBefore)")
    if now > _instant(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter") + skew:
        raise AuthFailure("assertion has expired (NotOnOrAfter)")
    audiences = [a.text for a in conditions.iterfind("s:AudienceRestriction/s:Audience", {"s": SAML})]
    if AUDIENCE not in audiences:
        raise AuthFailure(f"assertion Audience is not {AUDIENCE}")
    api_keys = [
        (v.text or "").strip()
        for attr in signed.iterfind("s:AttributeStatement/s:Attribute", {"s": SAML})
        if attr.get("Name") == "api_key"
        for v in attr.iterfind("s:AttributeValue", {"s": SAML})
    ]
    if client_id not in api_keys:
        raise AuthFailure("assertion attribute api_key is not the registered client id")
    return name_id


def parse_basic(authorization: str) -> tuple[str, str, str] | None:
    """``Basic base64(user@company:password)`` → (user, company, password), or None if malformed."""
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    user, at, company = login.rpartition("@")
    if not sep or not at:
        return None
    return user, company, password
