"""``[connections.X] type = "xapi"``: where the LRS is, how to log in, which IRIs okrsync mints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from okrsync.config import Secret
from okrsync.connectors.base import ConnectorConfig, HttpOptions


class XapiConfig(ConnectorConfig, HttpOptions):
    """An xAPI 1.0.3 Learning Record Store (statements resource, Basic auth)."""

    type: Literal["xapi"] = "xapi"
    endpoint: str = Field(
        description="LRS xAPI endpoint, e.g. https://lrs.example.com/xAPI (statements live below it)."
    )
    username: str = Field(min_length=1, description="Basic auth key/user of the LRS.")
    password: Secret = Field(description='Basic auth secret ("${ENV}" or "file:").')
    homepage: str = Field(
        description="account.homePage of learners: the HR system whose person ids are the account names."
    )
    activity_base: str | None = Field(
        default=None,
        description="IRI base of objectives, key results and catalogue items; default: {homepage}/okrsync.",
    )
    item_iri: Literal["url", "base"] = Field(
        default="url",
        description="Learning item IRI: its url when it has one (url), or always {activity_base}/items/{id}.",
    )
    profile: str | None = Field(
        default=None,
        description="IRI of okrsync's xAPI profile as you deploy it (category, activity types, extensions); "
        "default: {activity_base}/xapi/profile. xAPI wants IRIs you control.",
    )
    version: str = Field(default="1.0.3", description="X-Experience-API-Version header.")
    statements_per_post: int = Field(
        default=100, ge=1, le=1000, description="Statements per POST (a JSON array)."
    )
    page_size: int = Field(default=100, ge=1, le=1000, description="limit of statement queries.")

    @field_validator("endpoint", "homepage", "activity_base", "profile")
    @classmethod
    def _iri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must be an http(s) URL")
        return value

    @property
    def base(self) -> str:
        return self.activity_base or f"{self.homepage}/okrsync"

    @property
    def profile_iri(self) -> str:
        """xAPI 1.0.3 (Data §3.1): new IRIs MUST be ones the provider controls, so by default the
        profile lives under the deployment's own activity base, never under a domain of ours."""
        return self.profile or f"{self.base}/xapi/profile"
