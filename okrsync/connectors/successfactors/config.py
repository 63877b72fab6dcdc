"""The ``[connections.<name>]`` model of a SuccessFactors connection (validated before any call)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions

DEFAULT_STATUS_LABELS: dict[str, str] = {
    "not_started": "Not Started",
    "on_track": "On Track",
    "at_risk": "At Risk",
    "off_track": "Behind",
    "done": "Completed",
    "cancelled": "Cancelled",
}
DEFAULT_EMPL_STATUS: dict[str, str] = {
    "A": "active",
    "U": "on_leave",
    "P": "on_leave",
    "L": "on_leave",
    "S": "on_leave",
    "T": "terminated",
    "R": "terminated",
    "D": "terminated",
    "O": "terminated",
}


class SuccessFactorsConfig(ConnectorConfig, HttpOptions):
    """OData v2 API server, OAuth SAML-bearer client, paging, effective dating and goal plan."""

    type: Literal["successfactors"] = "successfactors"
    base_url: str = Field(description="API server, e.g. https://api4.successfactors.com (no /odata/v2)")
    company_id: str = Field(min_length=1, description="The tenant's company id (case-sensitive)")
    auth: Literal["saml", "basic"] = Field(
        default="saml", description="saml = OAuth 2.0 SAML bearer; basic = sandboxes only (deprecated)"
    )
    token_url: str | None = Field(default=None, description="Default {base_url}/oauth/token")
    client_id: str | None = Field(default=None, description="OAuth client (API key) registered in SF")
    user_id: str | None = Field(default=None, description="API user's userId: the assertion's NameID")
    private_key_path: str | None = Field(default=None, description="PEM private key of the OAuth client")
    private_key: Secret | None = Field(default=None, description="PEM text instead of a path (${ENV}/file:)")
    certificate_path: str | None = Field(default=None, description="PEM X.509 certificate (KeyInfo)")
    audience: str = "www.successfactors.com"
    assertion_lifetime: int = Field(default=600, ge=60, le=3600, description="Assertion validity, seconds")
    username: str | None = Field(default=None, description="basic: API user (default user_id)")
    password: Secret | None = None
    # ---- org pull ----
    page_size: int = Field(default=1000, ge=1, le=1000, description="customPageSize (SF caps at 1000)")
    paging: Literal["snapshot", "cursor"] = "snapshot"
    effective_dating: bool = Field(default=True, description="Read EmpJob slices (hires, terminations)")
    lookahead_days: int = Field(default=30, ge=0, le=3650, description="Future hires shown this far ahead")
    full_reconcile_days: int | None = Field(
        default=7, ge=1, description="An incremental run crossing this many days' boundary reads everything"
    )
    dotted_lines: bool = Field(default=True, description="Expand matrixManager as additional managers")
    user_fields: tuple[str, ...] = Field(default=(), description="Extra User properties to $select")
    empl_status: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_EMPL_STATUS),
        description="EmpJob emplStatus code -> active/on_leave/terminated",
    )
    chunk_size: int = Field(default=100, ge=1, le=500, description="Ids per `in` filter when re-reading")
    # ---- goals ----
    goal_plan_id: int | None = Field(default=None, description="Goal plan template id; None = discover")
    goal_category: str = "Goals"
    person_key: Literal["userId", "empId", "username", "email"] = Field(
        default="userId", description="Which SF User field holds the goal owners' canonical ids"
    )
    status_labels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATUS_LABELS))

    @model_validator(mode="after")
    def _auth_complete(self) -> SuccessFactorsConfig:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (http:// only for a local sandbox)")
        if self.auth == "saml":
            missing = [n for n in ("client_id", "user_id") if not getattr(self, n)]
            if not (self.private_key_path or self.private_key):
                missing.append("private_key_path (or private_key)")
            if missing:
                raise ValueError(f"auth = 'saml' needs {', '.join(missing)}")
        elif not ((self.username or self.user_id) and self.password):
            raise ValueError("auth = 'basic' needs username (or user_id) and password")
        return self

    @property
    def service_url(self) -> str:
        return self.base_url.rstrip("/") + "/odata/v2"

    @property
    def oauth_token_url(self) -> str:
        return self.token_url or self.base_url.rstrip("/") + "/oauth/token"
