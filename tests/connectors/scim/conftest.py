"""A real, independent SCIM service for the connector's tests: ``scim2-server`` as a subprocess.

scim2-server keeps its directory in memory, so a clean directory is a new process: the
session-scoped ``scim_servers`` factory starts one on a free port of 127.0.0.1 (optionally
with a service-provider configuration, e.g. without bulk), waits until it answers, and stops
every server it started when the session ends. ``scim_server`` is one fresh server per module.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

DEFAULT_SPC = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576},
    "filter": {"supported": True, "maxResults": 1000},
    "changePassword": {"supported": False},
    "sort": {"supported": True},
    "etag": {"supported": True},
}


class ScimServer:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log
        self.base_url = f"http://127.0.0.1:{port}/v2"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # direct access, bypassing okrsync: what the service really holds
    def user(self, scim_id: str) -> dict[str, Any] | None:
        response = requests.get(f"{self.base_url}/Users/{scim_id}", timeout=60)
        return response.json() if response.status_code == 200 else None

    def users(self, filter_: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            params: dict[str, Any] = {"startIndex": start, "count": 1000}
            if filter_:
                params["filter"] = filter_
            page = requests.get(f"{self.base_url}/Users", params=params, timeout=60).json()
            resources = page.get("Resources") or []
            out += resources
            start += len(resources)
            if not resources or start > int(page.get("totalResults") or 0):
                return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartServer = Callable[..., ScimServer]


@pytest.fixture(scope="session")
def scim_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """``start(spc=None, bearer_token=None)`` → a fresh scim2-server; all are stopped at session end."""
    started: list[ScimServer] = []
    folder = tmp_path_factory.mktemp("scim2-server")
    exe = shutil.which("scim2-server")
    command = [exe] if exe else [sys.executable, "-c", "from scim2_server.testserver.cli import main; main()"]

    def start(spc: dict[str, Any] | None = None, bearer_token: str | None = None) -> ScimServer:
        port = _free_port()
        config = folder / f"spc-{port}.json"
        config.write_text(json.dumps(spc or DEFAULT_SPC))
        args = [
            *command,
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            "--service-provider-config",
            str(config),
        ]
        if bearer_token:
            args += ["--bearer-token", bearer_token]
        log = folder / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        server = ScimServer(port, process, log)
        started.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"scim2-server exited: {log.read_text()[-2000:]}")
            try:
                headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
                if requests.get(f"{server.base_url}/ServiceProviderConfig", headers=headers, timeout=2).ok:
                    return server
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        server.stop()
        raise RuntimeError("scim2-server did not answer within 30 s")

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def scim_server(scim_servers: StartServer) -> Iterator[ScimServer]:
    """One fresh server per test module."""
    server = scim_servers()
    yield server
    server.stop()
