"""Salesforce connector (simple-salesforce, unpatched): org source, key-result metrics, manager push.

Capabilities:

* ``OrgSource`` — Users with ``query_all_iter``, keyed by ``id_field`` (``EmployeeNumber`` by
  default), managers in the same id space through ``Manager.<id_field>``; incremental on
  ``LastModifiedDate``/``SystemModstamp`` from the run-start watermark (:mod:`.pull`).
* ``MetricSource`` — a key result's ``data_source = "salesforce:SELECT SUM(...) ..."`` evaluated
  over the owner's team, chunked under the URI limit (:mod:`.metrics`, :mod:`.keyresults`).
* ``OrgTarget`` + ``OrgReader`` — ManagerId and mapped attributes written with sObject
  Collections, ≤ 200 records a call, managers first, only what differs (:mod:`.push`).

Transport, retries, typed errors and the daily API budget: :mod:`.client`; logins: :mod:`.auth`.
Configuration: :class:`~.config.SalesforceConfig`; documentation: ``docs/connectors/salesforce.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    Operation,
    OpResult,
    Pull,
    PullRequest,
)
from okrsync.connectors.salesforce.auth import SalesforceAuth
from okrsync.connectors.salesforce.client import SalesforceClient, SalesforceSession
from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.connectors.salesforce.directory import UserDirectory
from okrsync.connectors.salesforce.keyresults import MetricResult, push_progress, update_key_results
from okrsync.connectors.salesforce.metrics import Evaluation, MetricEvaluator, MetricQuery, TeamScope
from okrsync.connectors.salesforce.pull import UserPuller
from okrsync.connectors.salesforce.push import UserPusher
from okrsync.hierarchy import Hierarchy
from okrsync.models import KeyResult, OkrSet, Person
from okrsync.state import StateStore


class SalesforceConnector(Connector):
    """Salesforce (simple-salesforce): Users as org source and target, key-result metrics from SOQL.

    One org per connector; the session logs in on first use and is closed with the connector.
    """

    name = "salesforce"
    Config = SalesforceConfig
    default_mapping = "salesforce"

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        assert isinstance(config, SalesforceConfig)
        if config.mapping is None:  # the mapping that matches id_field, unless one is named
            config = config.model_copy(update={"mapping": config.mapping_name})
        super().__init__(config, context)
        self.cfg = config

        def make_auth(session: SalesforceSession) -> SalesforceAuth:
            return SalesforceAuth(config, session, base_dir=context.base_dir, clock=context.clock)

        self.client = SalesforceClient(config, make_auth, rate_limiter=context.rate_limiter)
        self.directory = UserDirectory(config, self.client)
        self._puller = UserPuller(config, self.client)
        self._pusher = UserPusher(config, self.client, self.directory)
        self._metrics = MetricEvaluator(config, self.client, self.directory)
        self.batch_size = config.batch_size

    @property
    def managed_fields(self) -> tuple[str, ...]:
        return tuple(self.cfg.push_fields)

    @property
    def write_calls(self) -> int:
        """sObject Collections calls sent by this connector (for reports and tests)."""
        return self._pusher.write_calls

    @property
    def api_usage(self) -> str:
        return self.client.usage.describe()

    def close(self) -> None:
        self.client.close()

    # ---- OrgSource ----
    def pull(self, request: PullRequest) -> Pull:
        return self._puller.pull(request)

    # ---- OrgReader / OrgTarget ----
    def read_current(self, id_map: Mapping[str, str]) -> Iterable[Person]:
        return self._pusher.read_current(id_map)

    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        results = self._pusher.apply(ops, id_map)
        self.context.logger.info("salesforce apply: %d operations; API usage %s", len(ops), self.api_usage)
        return results

    # ---- MetricSource ----
    def evaluate(self, key_result: KeyResult, team: Sequence[Person], **window: Any) -> float:
        return self._metrics.evaluate(key_result, team, **window)

    def evaluate_detailed(self, key_result: KeyResult, team: Sequence[Person], **window: Any) -> Evaluation:
        """Like :meth:`evaluate`, with the query asked, the team matched and the queries sent."""
        return self._metrics.run(key_result, team, **window)

    def update_key_results(
        self, okrs: OkrSet, hierarchy: Hierarchy, state: StateStore | None = None
    ) -> tuple[OkrSet, list[dict[str, Any]]]:
        """Evaluate every ``salesforce:`` key result of ``okrs``; what the engine's goals step calls."""
        updated, results = update_key_results(okrs, hierarchy, self, okrs.cycle, state)
        return updated, [dataclasses.asdict(r) for r in results]


__all__ = [
    "Evaluation",
    "MetricQuery",
    "MetricResult",
    "SalesforceConfig",
    "SalesforceConnector",
    "TeamScope",
    "push_progress",
    "update_key_results",
]
