"""People from a YAML file: a complete, minimal okrsync source connector.

Shows the three things every connector has: a pydantic ``Config`` (validated by
``okrsync config check`` before anything runs), a class registered in the
``okrsync.connectors`` entry-point group, and capability methods (here ``pull``, which
makes it an ``OrgSource``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from okrsync.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorContext,
    Pull,
    PullMode,
    PullRequest,
    RawRecord,
)
from okrsync.errors import ConfigError


class YamlPeopleConfig(ConnectorConfig):
    type: Literal["yaml-people"] = "yaml-people"
    path: str = Field(description="YAML file with a top-level `people:` list")


class YamlPeopleConnector(Connector):
    """People from a YAML file (example plug-in)."""

    name = "yaml-people"
    Config = YamlPeopleConfig

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, YamlPeopleConfig)
        path = Path(config.path)
        self.path = path if path.is_absolute() else context.base_dir / path

    def pull(self, request: PullRequest) -> Pull:
        return Pull(records=self._records(), mode=PullMode.FULL)

    def _records(self) -> Iterator[RawRecord]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        for n, person in enumerate(data.get("people", []), start=1):
            yield RawRecord(key=str(person.get("id", f"item {n}")), data=person, ref=f"{self.path.name}#{n}")
