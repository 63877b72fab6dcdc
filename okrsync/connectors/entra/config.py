"""``[connections.X] type = "entra"``: one validated model, checked before any network call."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions

MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
# Graph hosts whose token scope is their own resource; any other host (a proxy, the sandbox)
# is assumed to front the global service unless ``scope`` says otherwise.
GRAPH_RESOURCES = {
    "graph.microsoft.com": "https://graph.microsoft.com",
    "graph.microsoft.us": "https://graph.microsoft.us",
    "dod-graph.microsoft.us": "https://dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn": "https://microsoftgraph.chinacloudapi.cn",
}
ANCHOR_ATTRIBUTES = ("employeeId", "mail", "userPrincipalName")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GRAPH_PAGE_MAX = 999


class EntraConfig(ConnectorConfig, HttpOptions):
    """Microsoft Entra ID (Azure AD) over Microsoft Graph v1.0, app-only (client credentials)."""

    type: Literal["entra"] = "entra"

    # ---- identity ----
    tenant_id: str = Field(min_length=1, description="Tenant id (GUID) or verified domain.")
    client_id: str = Field(min_length=1, description="Application (client) id of the app registration.")
    client_secret: Secret | None = Field(default=None, description='Client secret ("${ENV}" or "file:").')
    certificate_path: str | None = Field(
        default=None, description="PEM certificate registered on the app (may also hold the key)."
    )
    private_key_path: str | None = Field(
        default=None, description="PEM private key of the certificate (default: certificate_path)."
    )
    private_key_password: Secret | None = Field(default=None, description="Passphrase of an encrypted key.")
    certificate_thumbprint: str | None = Field(
        default=None, description="SHA-1 thumbprint (hex); default: computed from certificate_path."
    )
    credential: Literal["auto", "secret", "certificate"] = Field(
        default="auto", description="Which credential to use; auto: the secret if set, else the certificate."
    )
    login_url: str = Field(
        default="https://login.microsoftonline.com", description="Identity host (national clouds differ)."
    )
    graph_url: str = Field(default="https://graph.microsoft.com", description="Graph host, without /v1.0.")
    scope: str | None = Field(
        default=None, description="Token scope; default: {Graph resource}/.default for graph_url's cloud."
    )
    validate_authority: bool | None = Field(
        default=None, description="msal authority validation; default: on for Microsoft login hosts only."
    )

    # ---- pull ----
    id_attribute: Literal["id", "employeeId"] = Field(
        default="id", description="Canonical person id when Entra is a source: objectId or employeeId."
    )
    filter: str | None = Field(
        default=None, description='$filter scoping the pulled users, e.g. "accountEnabled eq true".'
    )
    group_id: str | None = Field(
        default=None,
        description="Pull only members of this group (object id): a pilot, a business unit, a licence group.",
    )
    group_membership: Literal["transitive", "direct"] = Field(
        default="transitive", description="With group_id: members of nested groups count too, or direct only."
    )
    page_size: int = Field(default=GRAPH_PAGE_MAX, ge=1, le=GRAPH_PAGE_MAX, description="$top of /users.")

    # ---- push ----
    anchor: Literal["employeeId", "mail", "userPrincipalName"] = Field(
        default="employeeId",
        description="Directory attribute holding the source's person id; people are matched on it.",
    )
    push_mapping: str = Field(
        default="entra-push", description="Mapping canonical Person → Graph user (built-in name or path)."
    )
    create_only_fields: tuple[str, ...] = Field(
        default=("userPrincipalName", "mail", "mailNickname"),
        description="Graph properties written when a user is created, never on update.",
    )
    create_users: bool = Field(default=True, description="POST /users for people the directory lacks.")
    create_inactive: bool = Field(
        default=False, description="Also create accounts for terminated people (disabled)."
    )
    removal: Literal["disable", "delete"] = Field(
        default="disable", description="What a removal does: accountEnabled=false, or DELETE (restorable)."
    )
    usage_location: str | None = Field(default=None, description="usageLocation set on created users.")
    batch_size: int = Field(
        default=2000, ge=1, le=5000, description="Operations per engine batch; sent as $batch calls of ≤ 20."
    )

    @field_validator("login_url", "graph_url")
    @classmethod
    def _https_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError(f"{value!r} must be an https:// URL (msal refuses anything else)")
        if parts.path.lower().endswith("/v1.0"):
            value = value[: -len("/v1.0")]
        return value

    @field_validator("group_id")
    @classmethod
    def _group_object_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().lower()
        if not _GUID.fullmatch(text):
            raise ValueError(
                f"group_id {value!r} is not a group object id (a GUID such as "
                "0e4c5a1b-2f3d-4e5f-8a9b-0c1d2e3f4a5b; find it under Entra ID > Groups > Overview)"
            )
        return text

    @field_validator("certificate_thumbprint")
    @classmethod
    def _hex_thumbprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.replace(":", "").replace(" ", "").upper()
        if len(text) != 40 or any(c not in "0123456789ABCDEF" for c in text):
            raise ValueError("certificate_thumbprint must be 40 hex digits (a SHA-1 thumbprint)")
        return text

    @model_validator(mode="after")
    def _one_usable_credential(self) -> EntraConfig:
        has_secret = self.client_secret is not None and bool(self.client_secret.get_secret_value())
        has_cert = bool(self.certificate_path or self.private_key_path)
        if self.credential == "secret" and not has_secret:
            raise ValueError('credential = "secret" needs client_secret')
        if self.credential == "certificate" and not self.certificate_path:
            raise ValueError('credential = "certificate" needs certificate_path (+ private_key_path)')
        if not (has_secret or has_cert):
            raise ValueError("set client_secret, or certificate_path (+ private_key_path) for a certificate")
        return self

    # ---- derived ----
    @property
    def uses_certificate(self) -> bool:
        if self.credential != "auto":
            return self.credential == "certificate"
        return self.client_secret is None or not self.client_secret.get_secret_value()

    @property
    def authority(self) -> str:
        return f"{self.login_url}/{self.tenant_id}"

    @property
    def graph_base(self) -> str:
        return f"{self.graph_url}/v1.0"

    @property
    def token_scope(self) -> str:
        if self.scope:
            return self.scope
        host = (urlsplit(self.graph_url).hostname or "").lower()
        return GRAPH_RESOURCES.get(host, "https://graph.microsoft.com") + "/.default"

    @property
    def microsoft_login_host(self) -> bool:
        return (urlsplit(self.login_url).hostname or "").lower() in MICROSOFT_LOGIN_HOSTS
