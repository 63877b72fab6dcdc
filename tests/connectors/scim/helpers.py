"""A files → SCIM job driven through SyncEngine, with every HTTP request the connector sends recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from okrsync.config import load_config
from okrsync.connectors.base import Connector, ConnectorConfig, ConnectorContext
from okrsync.connectors.scim import ScimConnector
from okrsync.engine import SyncEngine
from okrsync.io import write_people
from okrsync.models import Person
from okrsync.report import RunReport
from okrsync.state import open_state

CONFIG = """\
[state]
path = "state.db"

[connections.hris]
type = "files"
path = "source.jsonl"

[connections.scim]
type = "scim"
base_url = "{url}"
{extra}

[jobs.nightly]
source = "hris"
targets = ["scim"]
max_deletes = "5%"
{job_extra}
"""


@dataclass
class Sent:
    method: str
    url: str
    body: Any
    status: int
    response: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # the request's


@dataclass
class Run:
    report: RunReport
    connector: ScimConnector
    sent: list[Sent] = field(default_factory=list)

    @property
    def after_discovery(self) -> list[Sent]:
        return [s for s in self.sent if not s.url.split("?")[0].endswith(DISCOVERY)]

    @property
    def writes(self) -> list[Sent]:
        return [s for s in self.sent if s.method in {"POST", "PATCH", "PUT", "DELETE"}]


DISCOVERY = ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas")


class ScimJob:
    def __init__(self, folder: Path, base_url: str, extra: str = "", job_extra: str = "") -> None:
        self.folder = folder
        self.config = folder / "okrsync.toml"
        self.config.write_text(CONFIG.format(url=base_url, extra=extra, job_extra=job_extra))

    def write_source(self, people: list[Person]) -> None:
        write_people(self.folder / "source.jsonl", people)

    def run(self, **kwargs: Any) -> Run:
        config = load_config(self.config)
        made: list[ScimConnector] = []
        sent: list[Sent] = []

        def factory(cfg: ConnectorConfig, ctx: ConnectorContext) -> Connector:
            from okrsync import connectors

            conn = connectors.load(cfg.type)(cfg, ctx)
            if isinstance(conn, ScimConnector):
                made.append(conn)
                conn.client.http.session.hooks["response"].append(recorder(sent))
            return conn

        state = open_state(str(self.folder / "state.db"))
        engine = SyncEngine(config, state, connector_factory=factory)
        try:
            report = engine.sync("nightly", **kwargs)
        finally:
            engine.close()
            state.close()
        return Run(report, made[0], sent)


def recorder(sent: list[Sent]) -> Any:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        sent.append(
            Sent(
                str(request.method),
                str(request.url),
                json.loads(body) if body else None,
                response.status_code,
                answer,
                dict(request.headers),
            )
        )

    return hook
