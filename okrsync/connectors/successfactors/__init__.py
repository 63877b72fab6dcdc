"""SAP SuccessFactors connector: org pull (User + effective-dated EmpJob) and Goal Management.

Capabilities: ``OrgSource`` (:mod:`.pull`), ``GoalSource`` and ``GoalTarget`` (:mod:`.goals`).
Authentication is OAuth 2.0 SAML bearer (:mod:`.auth`), Basic only for sandboxes; every
request goes through the shared HTTP client (retries honour ``Retry-After`` up to
``max_retry_after``; waits are reported in the pull's notices). See
``docs/connectors/successfactors.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    GoalResult,
    Pull,
    PullRequest,
    RawRecord,
)
from okrsync.connectors.successfactors.auth import BasicAuth, SamlBearerAuth, build_assertion
from okrsync.connectors.successfactors.config import SuccessFactorsConfig
from okrsync.connectors.successfactors.goals import GoalPlan, GoalSync
from okrsync.connectors.successfactors.odata import ODataReader, sf_error_parser
from okrsync.connectors.successfactors.pull import OrgPuller
from okrsync.errors import ConfigError
from okrsync.http import HttpClient
from okrsync.models import AlignmentEdge, KeyResult, Objective, OkrSet

__all__ = ["SuccessFactorsConfig", "SuccessFactorsConnector", "build_assertion"]


class SuccessFactorsConnector(Connector):
    """People and reporting lines from SuccessFactors; goals both ways."""

    name = "successfactors"
    Config = SuccessFactorsConfig
    default_mapping = "successfactors"

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, SuccessFactorsConfig)
        self.cfg = config
        self.client = HttpClient(
            self.name, config.http_settings(), error_parser=sf_error_parser, rate_limiter=context.rate_limiter
        )
        self.auth: SamlBearerAuth | BasicAuth
        if config.auth == "saml":
            assert config.client_id and config.user_id
            self.auth = SamlBearerAuth(
                self.client,
                token_url=config.oauth_token_url,
                company_id=config.company_id,
                client_id=config.client_id,
                user_id=config.user_id,
                private_key_pem=self._key_pem(),
                certificate_pem=self._read(config.certificate_path) if config.certificate_path else None,
                audience=config.audience,
                lifetime=timedelta(seconds=config.assertion_lifetime),
                clock=context.clock,
            )
        else:
            assert config.password is not None
            user = config.username or config.user_id or ""
            self.auth = BasicAuth(user, config.company_id, config.password.get_secret_value())
        self.client.auth = self.auth
        self.reader = ODataReader(self.client, config.service_url, config.page_size, config.paging)
        self.goals = GoalSync(self.reader, config)

    def _read(self, path: str) -> bytes:
        p = Path(path).expanduser()
        p = p if p.is_absolute() else self.context.base_dir / p
        try:
            return p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"successfactors: cannot read {p}: {exc.strerror or exc}") from None

    def _key_pem(self) -> bytes:
        if self.cfg.private_key is not None:
            return self.cfg.private_key.get_secret_value().encode()
        assert self.cfg.private_key_path
        return self._read(self.cfg.private_key_path)

    # ---- OrgSource ----
    def pull(self, request: PullRequest) -> Pull:
        before_retries, before_wait = self.client.stats.retries, self.client.stats.waited
        pull = OrgPuller(self.reader, self.cfg, lambda: self.client.stats.requests).pull(request)
        inner = pull.records

        def records() -> Iterator[RawRecord]:
            yield from inner
            retries = self.client.stats.retries - before_retries
            waited = self.client.stats.waited - before_wait
            if retries:
                pull.notices.append(
                    f"{retries} request(s) retried; {waited:.0f}s spent waiting (Retry-After)"
                )

        pull.records = records()
        return pull

    # ---- GoalSource / GoalTarget ----
    def goal_plan(self) -> GoalPlan:
        return self.goals.plan()

    def pull_goals(self) -> OkrSet:
        return self.goals.pull()

    def push_goals(
        self,
        objectives: Sequence[Objective],
        key_results: Sequence[KeyResult],
        id_map: Mapping[str, str],
        alignments: Sequence[AlignmentEdge] = (),
    ) -> list[GoalResult]:
        """Create/update goals (objectives) and milestones (key results).

        ``alignments`` are taken only to be reported: SF goal plans have no alignment property
        in the OData API, so the edges are counted in :attr:`notices`, not written.
        """
        return self.goals.push(objectives, key_results, id_map, alignments)

    @property
    def notices(self) -> list[str]:
        return self.goals.notices

    def close(self) -> None:
        self.client.close()
