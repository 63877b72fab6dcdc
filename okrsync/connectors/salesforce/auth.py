"""Logins: SOAP (username + password + security token), OAuth JWT bearer, OAuth client credentials.

Two ways to say where to log in, and one rule for who does the login:

* ``domain`` (simple-salesforce's own setting: ``login``, ``test``, ``acme.my``): simple-salesforce's
  ``SalesforceLogin`` performs every flow against ``https://{domain}.salesforce.com``.
* ``login_url`` (default ``https://login.salesforce.com``; any HTTPS host, e.g. a My Domain, a
  sandbox org, okrsync's emulator): the SOAP login is still simple-salesforce's
  (``SalesforceLogin(scratch_url=login_url)``); the two OAuth grants are posted by okrsync to
  ``{login_url}/services/oauth2/token`` — one explicit URL, no ``{domain}.salesforce.com`` string
  games — with the same claims simple-salesforce sends (``jwt_audience`` configurable).

Every login goes through the connector's :class:`~.client.SalesforceSession`, so it uses the
configured CA bundle and retry policy. Tokens are fetched lazily and again after the transport
saw ``INVALID_SESSION_ID`` (:meth:`SalesforceAuth.invalidate`). Secrets never reach messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from simple_salesforce.login import SalesforceLogin

from okrsync.connectors.salesforce.client import NAME, SalesforceSession
from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.errors import AuthenticationError, ConfigError

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


class SalesforceAuth:
    """Holds the session token; implements okrsync's ``TokenAuth`` (``header``/``invalidate``)."""

    def __init__(
        self,
        config: SalesforceConfig,
        session: SalesforceSession,
        *,
        base_dir: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.session = session
        self.base_dir = base_dir or Path.cwd()
        self.clock = clock
        self.logins = 0
        self._token: str | None = None
        self._instance_url: str | None = None
        self._lock = threading.Lock()

    # ---- TokenAuth ----
    def header(self) -> str:
        return f"Bearer {self.token()}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                self._token, self._instance_url = self._login()
                self.logins += 1
            return self._token

    @property
    def instance_url(self) -> str:
        if self._instance_url is None:
            self.token()
        assert self._instance_url is not None
        return self._instance_url

    # ---- flows ----
    @property
    def login_url(self) -> str:
        return (self.config.login_url or DEFAULT_LOGIN_URL).rstrip("/")

    def _login(self) -> tuple[str, str]:
        cfg = self.config
        if cfg.auth == "password":
            session_id, instance = SalesforceLogin(
                username=cfg.username,
                password=_secret(cfg.password),
                security_token=_secret(cfg.security_token),
                sf_version=cfg.api_version,
                session=self.session,
                domain=cfg.domain,
                scratch_url=None if cfg.domain else self.login_url,
            )
            return str(session_id), f"https://{instance}"
        if cfg.domain is not None:  # simple-salesforce builds https://{domain}.salesforce.com itself
            if cfg.auth == "jwt":
                key_path = self._key_path()
                session_id, instance = SalesforceLogin(
                    username=cfg.username,
                    consumer_key=cfg.consumer_key,
                    privatekey_file=None if key_path is None else str(key_path),
                    privatekey=_secret(cfg.private_key),
                    domain=cfg.domain,
                    session=self.session,
                )
            else:
                session_id, instance = SalesforceLogin(
                    consumer_key=cfg.consumer_key,
                    consumer_secret=_secret(cfg.consumer_secret),
                    domain=cfg.domain,
                    session=self.session,
                )
            return str(session_id), f"https://{instance}"
        if cfg.auth == "jwt":
            data = {"grant_type": JWT_GRANT, "assertion": self._assertion()}
            return self._token_call(data, None)
        return self._token_call(
            {"grant_type": "client_credentials"},
            (cfg.consumer_key or "", _secret(cfg.consumer_secret) or ""),
        )

    def _key_path(self) -> Path | None:
        if self.config.private_key_path is None:
            return None
        path = Path(self.config.private_key_path).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def _private_key(self) -> str:
        if self.config.private_key is not None:
            return str(_secret(self.config.private_key))
        path = self._key_path()
        assert path is not None
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read private_key_path {path}: {exc.strerror or exc}") from None

    def audience(self) -> str:
        if self.config.jwt_audience:
            return self.config.jwt_audience
        host = urlsplit(self.login_url).hostname or ""
        sandbox = host == "test.salesforce.com" or ".sandbox.my." in host or host.startswith("test.")
        return "https://test.salesforce.com" if sandbox else DEFAULT_LOGIN_URL

    def _assertion(self) -> str:
        claims = {
            "iss": self.config.consumer_key,
            "sub": self.config.username,
            "aud": self.audience(),
            "exp": int((self.clock() + timedelta(minutes=3)).timestamp()),
        }
        return jwt.encode(claims, self._private_key(), algorithm="RS256")

    def _token_call(self, data: dict[str, str], basic: tuple[str, str] | None) -> tuple[str, str]:
        url = f"{self.login_url}/services/oauth2/token"
        response = self.session.post(url, data=data, auth=basic)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            detail = body.get("error_description") if isinstance(body, dict) else None
            raise AuthenticationError(
                f"Salesforce {self.config.auth} login refused: {error or response.reason}"
                + (f" ({detail})" if detail else ""),
                connector=NAME,
                operation="oauth2 token",
                url=url,
                status=response.status_code,
                code=str(error) if error else None,
            )
        instance = str(body.get("instance_url") or self.login_url)
        return str(body["access_token"]), instance.rstrip("/")
