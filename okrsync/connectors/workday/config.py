"""The one config model of the Workday connector; each ``api`` checks the fields it needs.

``api = "soap"`` (``Get_Workers``, incremental through the transaction log) needs the ISU's
``username``/``password``; ``"rest"`` needs an OAuth API client (``client_id``, ``client_secret``,
``refresh_token``); ``"raas"`` needs ``report_owner``/``report_name`` plus Basic (ISU) or Bearer
(OAuth refresh token) credentials. Every problem is reported before any network call.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions
from okrsync.models import GoalStatus

_VERSION = re.compile(r"v\d{1,3}(\.\d{1,2})?\Z")
_TENANT = re.compile(r"[A-Za-z0-9_.-]+\Z")
# okrsync's defaults for the tenant's Component_Completion reference IDs (tenant-specific: check them)
DEFAULT_GOAL_STATUS_IDS: dict[GoalStatus, str] = {
    GoalStatus.NOT_STARTED: "NOT_STARTED",
    GoalStatus.ON_TRACK: "IN_PROGRESS",
    GoalStatus.AT_RISK: "AT_RISK",
    GoalStatus.OFF_TRACK: "OFF_TRACK",
    GoalStatus.DONE: "COMPLETED",
    GoalStatus.CANCELLED: "CANCELLED",
}


class RaasKeys(BaseModel):
    """The report's aliases the connector itself reads (to keep one entry per worker)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default="Employee_ID", description="Alias of the worker id (Employee_ID / Worker_ID).")
    wid: str | None = Field(
        default="Worker_WID", description="Alias of the worker's WID, if the report has it."
    )
    active: str = Field(default="Active", description="Alias of the Active flag ('1'/'0').")


class WorkdayConfig(ConnectorConfig, HttpOptions):
    """``[connections.<name>]`` with ``type = "workday"``."""

    type: Literal["workday"] = "workday"
    api: Literal["soap", "rest", "raas"] = Field(
        default="soap", description="Which Workday API to pull from."
    )
    base_url: str = Field(description="e.g. https://wd2-impl-services1.workday.com (no tenant, no path)")
    tenant: str = Field(description="Tenant name as it appears in the URLs.")
    version: str = Field(default="v45.0", description="Web-service version (SOAP) written as vNN.N.")
    username: str | None = Field(
        default=None, description="ISU user name (user@tenant) for SOAP and RaaS Basic."
    )
    password: Secret | None = Field(default=None, description="ISU password (${ENV} or file: reference).")
    # SOAP
    page_size: int = Field(default=999, ge=1, le=999, description="Get_Workers Count per page (max 999).")
    full_reconcile_days: int = Field(
        default=7, ge=0, description="Days between full pulls in incremental mode; 0 = every run is full."
    )
    include_contingent: bool = Field(default=True, description="Pull contingent workers too.")
    exclude_inactive: bool = Field(default=False, description="Leave terminated workers out of full pulls.")
    # REST
    client_id: str | None = Field(default=None, description="REST/Bearer: the registered API client id.")
    client_secret: Secret | None = None
    refresh_token: Secret | None = Field(
        default=None, description="REST/Bearer: the API client's refresh token."
    )
    token_url: str | None = Field(default=None, description="Default: {base_url}/ccx/oauth2/{tenant}/token.")
    rest_version: str = Field(default="v1", description="REST API version segment (v1, v4, ...).")
    rest_page_size: int = Field(default=100, ge=1, le=100, description="REST limit per page (max 100).")
    include_terminated: bool = Field(default=True, description="REST: list terminated workers as well.")
    # RaaS
    report_owner: str | None = Field(default=None, description="RaaS: the report owner's user name.")
    report_name: str | None = Field(default=None, description="RaaS: the custom report's web-service name.")
    prompts: dict[str, str] = Field(default_factory=dict, description="RaaS prompts as query parameters.")
    report_keys: RaasKeys = Field(default_factory=RaasKeys)
    raas_auth: Literal["basic", "bearer"] = Field(
        default="basic", description="RaaS: ISU Basic or OAuth Bearer."
    )
    # goals
    goal_category: str | None = Field(default=None, description="Goal_Category_ID for pushed goals.")
    organization_goals: dict[str, str] = Field(
        default_factory=dict, description="okrsync objective id -> Organization_Goal_ID (alignment)."
    )
    goal_status_ids: dict[GoalStatus, str] = Field(
        default_factory=lambda: dict(DEFAULT_GOAL_STATUS_IDS),
        description=(
            "okrsync goal status -> the tenant's Component_Completion reference ID sent as the goal's "
            "Status_Reference (tenant-specific: check them). Statuses left out keep okrsync's default: "
            "not_started=NOT_STARTED, on_track=IN_PROGRESS, at_risk=AT_RISK, off_track=OFF_TRACK, "
            "done=COMPLETED, cancelled=CANCELLED."
        ),
    )
    goal_status_id_type: Literal["Component_Completion_ID", "WID"] = Field(
        default="Component_Completion_ID",
        description="ID type of goal_status_ids' values (Component_Completion_ID or WID).",
    )

    @field_validator("goal_status_ids")
    @classmethod
    def _statuses(cls, value: dict[GoalStatus, str]) -> dict[GoalStatus, str]:
        merged = {**DEFAULT_GOAL_STATUS_IDS, **value}
        if any(not v.strip() for v in merged.values()):
            raise ValueError("goal_status_ids values must not be empty")
        if len(set(merged.values())) != len(merged):
            raise ValueError(
                "goal_status_ids: two statuses share one reference ID (read-back would be ambiguous)"
            )
        return merged

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (http:// only for a local sandbox)")
        return value.rstrip("/")

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not _TENANT.match(value):
            raise ValueError("tenant may hold letters, digits, '_', '.', '-' only")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("version must look like v45.0")
        return value

    @model_validator(mode="after")
    def _required_per_api(self) -> WorkdayConfig:
        missing: list[str] = []
        isu = [n for n in ("username", "password") if getattr(self, n) is None]
        oauth = [n for n in ("client_id", "client_secret", "refresh_token") if getattr(self, n) is None]
        if self.api == "soap":
            missing += isu
        elif self.api == "rest":
            missing += oauth
        else:
            missing += [n for n in ("report_owner", "report_name") if getattr(self, n) is None]
            missing += isu if self.raas_auth == "basic" else oauth
        if missing:
            raise ValueError(f"api = {self.api!r} needs {', '.join(missing)}")
        if "format" in self.prompts:
            raise ValueError("prompts: 'format' is set by the connector (json)")
        return self

    @property
    def soap_url(self) -> str:
        return f"{self.base_url}/ccx/service/{self.tenant}/Human_Resources/{self.version}"

    @property
    def goals_url(self) -> str:
        return f"{self.base_url}/ccx/service/{self.tenant}/Performance_Management/{self.version}"

    @property
    def oauth_url(self) -> str:
        return self.token_url or f"{self.base_url}/ccx/oauth2/{self.tenant}/token"

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/ccx/api/{self.rest_version}/{self.tenant}"

    @property
    def report_url(self) -> str:
        return (
            f"{self.base_url}/ccx/service/customreport2/{self.tenant}/{self.report_owner}/{self.report_name}"
        )
