"""Microsoft Entra ID (Azure AD) connector: org pull with delta queries, manager and attribute push.

Modules by concern: ``config`` (the validated connection model), ``auth`` (msal client
credentials, secret or certificate), ``graph`` (HttpClient + paging + ``$batch`` with per-item
retries), ``pull`` (full listings, cursor), ``delta`` (incremental rounds → complete records),
``push`` (directory read, creates, attribute and manager writes). See ``docs/connectors/entra.md``.
"""

from __future__ import annotations

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
from okrsync.connectors.entra.config import EntraConfig
from okrsync.connectors.entra.graph import Graph
from okrsync.connectors.entra.pull import EntraSource
from okrsync.connectors.entra.push import EntraTarget
from okrsync.mapping import load_mapping
from okrsync.models import Person


class EntraConnector(Connector):
    """Entra ID as a source (``pull``) and as a target (``read_current``, ``apply``)."""

    name = "entra"
    Config = EntraConfig
    default_mapping = "entra"

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, EntraConfig)
        self.cfg = config
        self.graph = Graph(config, context)
        mapping_name = config.mapping or self.default_mapping or "entra"
        if mapping_name.endswith(".toml") and not mapping_name.startswith("/"):
            mapping_name = str(context.base_dir / mapping_name)
        self.mapping = load_mapping(mapping_name)
        push_name = config.push_mapping
        if push_name.endswith(".toml") and not push_name.startswith("/"):
            push_name = str(context.base_dir / push_name)
        self._source = EntraSource(self.graph, config, self.mapping)
        self._target = EntraTarget(self.graph, config, self.mapping, load_mapping(push_name), context.logger)
        self.batch_size = self._target.batch_size
        self.managed_fields = self._target.managed_fields

    # ---- OrgSource ----
    def pull(self, request: PullRequest) -> Pull:
        return self._source.pull(request)

    # ---- OrgReader ----
    def read_current(self, id_map: Mapping[str, str]) -> Iterable[Person]:
        return self._target.read_current(id_map)

    # ---- OrgTarget ----
    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        return self._target.apply(ops, id_map)

    # ---- LearningTarget (Viva Learning): okrsync.connectors.entra.learning ----
    def push_learning(
        self, items: Sequence[Any], links: Sequence[Any], id_map: Mapping[str, str]
    ) -> list[Any]:
        from okrsync.connectors.entra.learning import viva

        return viva(self).push_learning(items, links, id_map)

    def close(self) -> None:
        self.graph.close()


__all__ = ["EntraConfig", "EntraConnector"]
