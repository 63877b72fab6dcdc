"""Workday connector: people from SOAP ``Get_Workers``, REST or a RaaS report; goals via ``Manage_Goals``.

- ``api = "soap"`` (:mod:`.pull`): full pulls paged at one entry moment, incremental pulls over
  three transaction-log windows, conversions deduplicated; ``Response_Group`` follows the mapping.
- ``api = "rest"`` (:mod:`.rest`): OAuth refresh-token grant, ``/workers`` paged by 100, managers
  through supervisory organizations (cached per organization). No change feed: full pulls.
- ``api = "raas"`` (:mod:`.raas`): one custom report, streamed entry by entry. Full pulls.
- Goals (:mod:`.goals`): ``Manage_Goals``, one request per worker whose goals changed, idempotent
  through ``Goal_Reference_ID``; read back with ``Get_Workers`` ``Include_Goals``.

All HTTP goes through :class:`okrsync.http.HttpClient`; SOAP validation faults are final errors
carrying the fault code, message and XPath, authentication faults :class:`AuthenticationError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    GoalResult,
    Pull,
    PullRequest,
)
from okrsync.connectors.workday import soap
from okrsync.connectors.workday.config import WorkdayConfig
from okrsync.connectors.workday.pull import SoapPuller, response_group
from okrsync.http import HttpClient
from okrsync.mapping import load_mapping
from okrsync.models import AlignmentEdge, KeyResult, Objective, OkrSet


class WorkdayConnector(Connector):
    """``type = "workday"``: an ``OrgSource`` over SOAP, REST or RaaS, and a goal source/target."""

    name = "workday"
    Config = WorkdayConfig

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, WorkdayConfig)
        self.cfg = config
        self.http = HttpClient(
            self.name,
            config.http_settings(),
            error_parser=soap.error_parser,
            rate_limiter=context.rate_limiter,
        )
        self._api_http: HttpClient | None = None

    @property  # per instance: the default mapping depends on the api
    def default_mapping(self) -> str:  # type: ignore[override]
        return f"workday-{self.cfg.api}"

    def close(self) -> None:
        self.http.close()
        if self._api_http is not None:
            self._api_http.close()

    def mapping_fields(self) -> set[str]:
        """Source fields the connection's mapping reads (its own, or the api's default)."""
        name = self.cfg.mapping or self.default_mapping
        if name.endswith(".toml") and not Path(name).is_absolute():
            name = str(self.context.base_dir / name)
        return load_mapping(name).source_fields()

    # ---- OrgSource ----
    def pull(self, request: PullRequest) -> Pull:
        if self.cfg.api == "soap":
            return SoapPuller(self.cfg, self.http, response_group(self.mapping_fields()), self.name).pull(
                request
            )
        if self.cfg.api == "rest":
            from okrsync.connectors.workday.rest import RestPuller

            return RestPuller(self.cfg, self._rest_http(), self.name).pull(request)
        from okrsync.connectors.workday.raas import RaasPuller

        return RaasPuller(self.cfg, self._rest_http(), self.name).pull(request)

    def _rest_http(self) -> HttpClient:
        """The JSON client of REST/RaaS (token or Basic auth), made once."""
        if self._api_http is None:
            from okrsync.connectors.workday.rest import api_auth

            self._api_http = HttpClient(
                self.name,
                self.cfg.http_settings(),
                auth=api_auth(self.cfg, self.http),
                rate_limiter=self.context.rate_limiter,
            )
        return self._api_http

    # ---- GoalSource / GoalTarget ----
    def push_goals(
        self,
        objectives: Sequence[Objective],
        key_results: Sequence[KeyResult],
        id_map: Mapping[str, str],
        alignments: Sequence[AlignmentEdge] = (),
    ) -> list[GoalResult]:
        from okrsync.connectors.workday.goals import GoalWriter

        return GoalWriter(self.cfg, self.http, self.name).push(objectives, key_results, id_map, alignments)

    def pull_goals(self) -> OkrSet:
        from okrsync.connectors.workday.goals import read_goals

        return read_goals(self.cfg, self.http, self.name, self.context.clock())

    def __repr__(self) -> str:
        return f"WorkdayConnector(api={self.cfg.api!r}, tenant={self.cfg.tenant!r})"


__all__ = ["WorkdayConfig", "WorkdayConnector"]
