"""``[connections.X] type = "salesforce"``: one validated model, checked before any network call.

Which login is used is said once, with ``auth``, and the fields it needs are checked against it,
so an invalid combination is a config error naming the missing field — not a ``TypeError`` from
a constructor whose valid argument sets are invisible.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions

IdField = Literal["EmployeeNumber", "FederationIdentifier", "Id"]

# canonical Person field -> the User field it is written to (and read back from) on a push
PUSHABLE_FIELDS: dict[str, str] = {
    "manager_id": "ManagerId",
    "title": "Title",
    "department": "Department",
    "division": "Division",
    "location": "City",
    "given_name": "FirstName",
    "family_name": "LastName",
    "email": "Email",
    "status": "IsActive",
}

# the mapping that matches each id_field (okrsync/mappings/*.toml)
MAPPING_FOR_ID_FIELD: dict[str, str] = {
    "EmployeeNumber": "salesforce",
    "FederationIdentifier": "salesforce-federation",
    "Id": "salesforce-ids",
}

_RESERVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


class SalesforceConfig(HttpOptions, ConnectorConfig):
    """Settings of one Salesforce org (production, a sandbox org, or okrsync's local emulator)."""

    type: Literal["salesforce"] = "salesforce"
    auth: Literal["password", "jwt", "client_credentials"] = Field(
        description="password: SOAP login with username + password + security token; jwt: OAuth JWT "
        "bearer (consumer_key + private key); client_credentials: OAuth client credentials (My Domain)."
    )
    login_url: str | None = Field(
        default=None,
        description="Login host, e.g. https://login.salesforce.com, https://test.salesforce.com, "
        "https://acme.my.salesforce.com or a local emulator. Default https://login.salesforce.com.",
    )
    domain: str | None = Field(
        default=None,
        description="simple-salesforce's domain instead of login_url ('login', 'test', 'acme.my'): "
        "logins go to https://{domain}.salesforce.com.",
    )
    instance_url: str | None = Field(
        default=None, description="Send API calls here instead of the instance_url the login returns."
    )
    api_version: str = Field(default="59.0", pattern=r"^\d{2,3}\.\d$", description="REST API version")
    username: str | None = Field(default=None, description="Integration user (password, jwt)")
    password: Secret | None = Field(default=None, description="password: the user's password")
    security_token: Secret | None = Field(default=None, description="password: the user's security token")
    consumer_key: str | None = Field(
        default=None, description="Connected app consumer key (jwt, client_credentials)"
    )
    consumer_secret: Secret | None = Field(default=None, description="client_credentials: consumer secret")
    private_key_path: str | None = Field(default=None, description="PEM private key for jwt")
    private_key: Secret | None = Field(default=None, description="PEM private key text for jwt")
    jwt_audience: str | None = Field(
        default=None,
        description="JWT 'aud'; default https://test.salesforce.com for test/sandbox login hosts, "
        "else https://login.salesforce.com.",
    )

    # ---- people ----
    id_field: IdField = Field(
        default="EmployeeNumber",
        description="User field that is the canonical person id (EmployeeNumber joins with HRIS ids).",
    )
    modstamp_field: Literal["LastModifiedDate", "SystemModstamp"] = Field(
        default="LastModifiedDate", description="Timestamp incremental pulls filter on."
    )
    cursor_lookback_seconds: int = Field(
        default=0, ge=0, le=86_400, description="Re-read changes this far before the last watermark."
    )
    user_filter: str | None = Field(
        default=None,
        description="Extra SOQL condition on User, e.g. \"UserType = 'Standard'\" (trusted config text).",
    )
    page_size: int = Field(default=2000, ge=200, le=2000, description="Sforce-Query-Options batchSize")

    # ---- push ----
    push_fields: tuple[str, ...] = Field(
        default=("manager_id", "title", "department"),
        description=f"Canonical fields written to Users; any of {', '.join(PUSHABLE_FIELDS)}.",
    )
    batch_size: int = Field(default=200, ge=1, le=200, description="Records per sObject Collections call")
    create_users: bool = Field(default=False, description="Create missing Users (they need licences).")
    new_user_profile_id: str | None = Field(default=None, description="ProfileId for created Users.")

    # ---- limits and metrics ----
    api_reserve: str = Field(
        default="5%",
        description="Stop before the daily API limit: a share ('5%') or a count ('2000') of requests "
        "kept in reserve, read from Sforce-Limit-Info.",
    )
    max_uri_bytes: int = Field(
        default=16_000, ge=2_000, le=16_384, description="Longest query URI sent; IN lists are chunked."
    )

    @field_validator("api_reserve")
    @classmethod
    def _check_reserve(cls, value: str) -> str:
        m = _RESERVE.match(str(value))
        if not m or (m.group(2) and float(m.group(1)) > 100):
            raise ValueError(f"api_reserve {value!r} must be a count ('2000') or a share ('5%')")
        return value

    @field_validator("push_fields")
    @classmethod
    def _check_push_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [f for f in value if f not in PUSHABLE_FIELDS]
        if bad:
            raise ValueError(f"cannot push {bad}; pushable fields: {', '.join(PUSHABLE_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> SalesforceConfig:
        needs: dict[str, tuple[str, ...]] = {
            "password": ("username", "password", "security_token"),
            "jwt": ("username", "consumer_key"),
            "client_credentials": ("consumer_key", "consumer_secret"),
        }
        missing = [f for f in needs[self.auth] if getattr(self, f) is None]
        if self.auth == "jwt" and self.private_key_path is None and self.private_key is None:
            missing.append("private_key_path (or private_key)")
        if missing:
            raise ValueError(f"auth = {self.auth!r} needs {', '.join(missing)}")
        if self.login_url is not None and self.domain is not None:
            raise ValueError("give login_url or domain, not both")
        if self.login_url is not None and not self.login_url.startswith("https://"):
            raise ValueError("login_url must be an https:// URL (Salesforce serves logins over TLS only)")
        if self.auth == "client_credentials" and (self.domain or "login") in ("login", "test"):
            host = (self.login_url or "https://login.salesforce.com").removeprefix("https://")
            if host.rstrip("/") in ("login.salesforce.com", "test.salesforce.com"):
                raise ValueError("client_credentials needs the org's My Domain as login_url or domain")
        if self.create_users and not self.new_user_profile_id:
            raise ValueError("create_users = true needs new_user_profile_id")
        return self

    def reserve_for(self, limit: int) -> int:
        """Requests to keep in reserve out of a daily ``limit``."""
        m = _RESERVE.match(self.api_reserve)
        assert m is not None
        number = float(m.group(1))
        return int(limit * number / 100) if m.group(2) else int(number)

    @property
    def mapping_name(self) -> str:
        return self.mapping or MAPPING_FOR_ID_FIELD[self.id_field]
