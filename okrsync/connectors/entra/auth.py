"""Client-credential tokens from the Microsoft identity platform, through msal.

One ``ConfidentialClientApplication`` per connection: msal caches the app token and renews
it before expiry, so a run asks the token endpoint once. msal's own HTTP goes through
:class:`MsalHttp`, an adapter over okrsync's :class:`~okrsync.http.HttpClient`: the
connection's CA bundle is really used (``trust_env`` off, ``verify`` per request), 429/5xx
and resets on the token endpoint are retried with Retry-After like every other request, and
msal still sees the OAuth error bodies (400/401) it turns into error dicts. Those dicts
become :class:`AuthenticationError` carrying the AADSTS code and msal's description (never
the secret or the assertion).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from okrsync.connectors.entra.config import EntraConfig
from okrsync.errors import AuthenticationError, ConfigError
from okrsync.http import HttpClient
from okrsync.http.client import RETRIABLE_STATUSES

# every status except the retriable ones goes back to msal, which reads OAuth error bodies itself
_MSAL_OK = frozenset(range(200, 600)) - RETRIABLE_STATUSES


class MsalHttp:
    """msal's ``http_client`` interface (``get``/``post`` → a response) over an okrsync HttpClient."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self._send("POST", url, params, headers, data=data, **kwargs)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self._send("GET", url, params, headers, **kwargs)

    def close(self) -> None:
        """msal may call it; the connector closes the underlying client."""

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.pop("verify", None)  # the connection's CA bundle wins, always
        kwargs.pop("proxies", None)
        kwargs.pop("timeout", None)  # the connection's timeouts apply
        operation = "token" if "/token" in url else "login discovery"
        return self.http.request(
            method,
            url,
            operation=operation,
            ok=_MSAL_OK,
            authenticate=False,
            params=dict(params) if params else None,
            headers=dict(headers or {}),
            **kwargs,
        )


def _credential(config: EntraConfig, base_dir: Path) -> str | dict[str, str]:
    if not config.uses_certificate:
        assert config.client_secret is not None
        return config.client_secret.get_secret_value()
    cert_path = _resolve(config.certificate_path, base_dir)
    key_path = _resolve(config.private_key_path, base_dir) or cert_path
    if cert_path is None or key_path is None:
        raise ConfigError("entra: certificate credential needs certificate_path (+ private_key_path)")
    try:
        key_pem = key_path.read_text(encoding="utf-8")
        cert_pem = cert_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"entra: cannot read certificate or key: {exc.strerror or exc}") from None
    credential: dict[str, str] = {"private_key": key_pem}
    thumbprint = config.certificate_thumbprint or _sha1_thumbprint(cert_pem)
    credential["thumbprint"] = thumbprint  # RS256 + x5t, what every Entra tenant accepts
    if config.private_key_password is not None:
        credential["passphrase"] = config.private_key_password.get_secret_value()
    return credential


def _resolve(path: str | None, base_dir: Path) -> Path | None:
    if not path:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _sha1_thumbprint(cert_pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ConfigError(f"entra: certificate_path is not a PEM certificate: {exc}") from None
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1 by definition


def describe_msal_error(result: Mapping[str, Any]) -> tuple[str, str | None]:
    """A one-line message and the AADSTS code from msal's error dict (no trace noise, no secrets)."""
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "").strip()
    first_line = description.splitlines()[0].strip() if description else ""
    codes = result.get("error_codes") or []
    code = (
        f"AADSTS{codes[0]}"
        if codes
        else (first_line.split(":", 1)[0] if first_line[:6] == "AADSTS" else None)
    )
    message = f"token request refused: {error}"
    if first_line:
        message += f": {first_line}"
    if result.get("correlation_id"):
        message += f" (correlation id {result['correlation_id']})"
    return message, code


class EntraAuth:
    """``TokenAuth`` for okrsync's HttpClient: ``Bearer`` header from msal, forgotten on a 401."""

    def __init__(self, config: EntraConfig, login_http: HttpClient, base_dir: Path) -> None:
        self.config = config
        self.login_http = login_http
        self.base_dir = base_dir
        self._app: Any = None
        self._lock = threading.Lock()
        self.acquired = 0  # tokens fetched from the endpoint (not from msal's cache)

    @property
    def app(self) -> Any:
        """The connection's msal application, built on first use (its discovery is a request)."""
        if self._app is None:
            import msal

            validate = self.config.validate_authority
            if validate is None:
                validate = self.config.microsoft_login_host
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=_credential(self.config, self.base_dir),
                    authority=self.config.authority,
                    validate_authority=validate,
                    instance_discovery=validate,
                    http_client=MsalHttp(self.login_http),
                    timeout=self.config.timeout,
                )
            except ValueError as exc:  # msal: bad authority, unreadable key, discovery failure
                raise AuthenticationError(
                    f"cannot set up the msal application: {exc}", connector="entra", operation="token"
                ) from None
        return self._app

    def token(self) -> str:
        """The app token; msal serves it from its cache and renews it shortly before it expires."""
        with self._lock:
            result = self.app.acquire_token_for_client(scopes=[self.config.token_scope])
            if "access_token" not in result:
                message, code = describe_msal_error(result)
                raise AuthenticationError(message, connector="entra", operation="token", code=code)
            if result.get("token_source") != "cache":
                self.acquired += 1
            return str(result["access_token"])

    def header(self) -> str:
        return f"Bearer {self.token()}"

    def invalidate(self) -> None:
        """Graph said 401: drop msal's cached token, so the next call fetches a new one."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()
