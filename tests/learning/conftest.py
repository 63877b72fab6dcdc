"""A real xAPI LRS (Ralph, file backend) on 127.0.0.1 for the learning tests.

Ralph runs in a subprocess from whichever interpreter has it: this one (``pip install
"ralph-malph[lrs]"``, in the ``test`` extra), ``$OKRSYNC_RALPH_PYTHON``, or the isolated venv
``/opt/okrsync-ralph`` (Ralph's ``[cli]`` extra pins click<8.2.1, which this project's env
does not accept). It is started the way ``ralph runserver -b fs`` starts it (uvicorn on
``ralph.api:app``, backend and directory from ``RALPH_*`` variables, a Basic-auth users file)
minus the auto-reloader, with one documented work-around: Ralph 5.1's file backend opens its
single statements file in "create" mode, so only the first POST succeeds; the launcher makes
the backend append instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import require_or_skip

LAUNCHER = """
import sys
from ralph.backends.data.base import BaseOperationType
from ralph.backends.data.fs import FSDataBackend
FSDataBackend.default_operation_type = BaseOperationType.APPEND
import uvicorn
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class Lrs:
    endpoint: str
    username: str
    password: str
    data_dir: Path

    def stored(self) -> list[dict[str, object]]:
        """Every statement in the file backend, read from disk (independent of the query API)."""
        out = []
        for f in self.data_dir.glob("*.jsonl"):
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return out

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.auth = (self.username, self.password)
        s.headers["X-Experience-API-Version"] = "1.0.3"
        return s


def _ralph_python() -> str | None:
    if importlib.util.find_spec("ralph") is not None and importlib.util.find_spec("uvicorn") is not None:
        return sys.executable
    for candidate in (os.environ.get("OKRSYNC_RALPH_PYTHON"), "/opt/okrsync-ralph/bin/python"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lrs(tmp_path: Path) -> Iterator[Lrs]:
    python = _ralph_python()
    require_or_skip(python is not None, "Ralph LRS is not installed", "OKRSYNC_REQUIRE_SERVICES")
    assert python is not None
    home = tmp_path / "ralph"
    data = home / "data"
    data.mkdir(parents=True)
    password = "lrs-test-secret"
    hashed = subprocess.run(
        [
            python,
            "-c",
            f"import bcrypt; print(bcrypt.hashpw({password!r}.encode(), bcrypt.gensalt(4)).decode())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    require_or_skip(
        hashed.returncode == 0, f"Ralph's bcrypt failed: {hashed.stderr[-300:]}", "OKRSYNC_REQUIRE_SERVICES"
    )
    auth_file = home / "auth.json"
    auth_file.write_text(
        json.dumps(
            [
                {
                    "agent": {"mbox": "mailto:okrsync@example.com", "objectType": "Agent"},
                    "scopes": ["all"],
                    "hash": hashed.stdout.strip(),
                    "username": "okrsync",
                }
            ]
        )
    )
    env = {
        **os.environ,
        "RALPH_APP_DIR": str(home),
        "RALPH_AUTH_FILE": str(auth_file),
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(data),
    }
    port = _free_port()
    log = (home / "server.log").open("w")
    proc = subprocess.Popen([python, "-c", LAUNCHER, str(port)], env=env, cwd=home, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                up = requests.get(f"{base}/__heartbeat__", timeout=2).ok
            except requests.ConnectionError:
                up = False
            if up:
                break
            time.sleep(0.3)
        require_or_skip(
            up, f"Ralph did not start: {(home / 'server.log').read_text()[-500:]}", "OKRSYNC_REQUIRE_SERVICES"
        )
        yield Lrs(f"{base}/xAPI", "okrsync", password, data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
