"""The ``type = "scim"`` connection: where the service is, how to authenticate, how to match users."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions

MatchAttribute = Literal["externalId", "userName", "employeeNumber"]
GroupBy = Literal["none", "department", "org_unit"]


class ScimConfig(ConnectorConfig, HttpOptions):
    type: Literal["scim"] = "scim"
    base_url: str = Field(
        description="SCIM base URL, e.g. https://idp.example.com/scim/v2 (no trailing /Users)."
    )
    token: Secret | None = Field(default=None, description="Bearer token (${ENV} or file: reference).")
    username: str | None = Field(default=None, description="Basic auth user (with password).")
    password: Secret | None = Field(
        default=None, description="Basic auth password (${ENV} or file: reference)."
    )
    match_attribute: MatchAttribute = Field(
        default="externalId",
        description="User attribute that identifies a person: externalId, userName or employeeNumber.",
    )
    push_mapping: str = Field(
        default="scim-push",
        description="Mapping from Person fields to SCIM attributes (built-in name or path).",
    )
    use_bulk: bool = Field(default=True, description="Use /Bulk when the service announces it.")
    bulk_max_operations: int | None = Field(
        default=None, ge=1, description="Cap below the service's maxOperations per bulk request."
    )
    use_etags: bool = Field(default=True, description="Send If-Match when the service supports ETags.")
    page_size: int = Field(
        default=1000, ge=1, le=10_000, description="Users per list page (capped by maxResults)."
    )
    lookup_batch: int = Field(
        default=50, ge=1, le=200, description="Users looked up per filter request (or-ed match values)."
    )
    batch_size: int = Field(default=1000, ge=1, description="Target: operations per apply batch.")
    groups: GroupBy = Field(
        default="none",
        description=(
            "Target: also keep one SCIM Group per distinct department (or org_unit_id), members = "
            "the active users with it; only groups with externalId okrsync:<kind>:<value> are touched."
        ),
    )

    @model_validator(mode="after")
    def _one_auth(self) -> ScimConfig:
        if self.token is not None and (self.username or self.password is not None):
            raise ValueError("give either token (bearer) or username + password (basic), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return self
