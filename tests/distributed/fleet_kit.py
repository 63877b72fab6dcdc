"""Shared by the fleet tests and bench/fleet.py: services, tenant folders, worker processes."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from okrsync.distributed.settings import FleetSettings
from okrsync.io import write_people
from okrsync.sandbox import RunningEmulator, create_emulator, serve
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.state.base import RunInfo

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("OKRSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("OKRSYNC_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("OKRSYNC_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def services_available() -> tuple[bool, str]:
    """PostgreSQL, Redis and RabbitMQ all answering (and the Python clients installed)."""
    try:
        import kombu
        import psycopg
        import redis
    except ImportError as exc:
        return False, f"fleet packages missing ({exc}); pip install -e '.[test]'"
    problems = []
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL at {PG_URL}: {str(exc).strip().splitlines()[0]}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {REDIS_URL}: {exc}")
    try:
        with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        problems.append(f"RabbitMQ at {AMQP_URL}: {exc}")
    return (not problems), "; ".join(problems)


def tenant_size(i: int, low: int, high: int) -> int:
    return low + (i * 397) % (high - low + 1)


# The vendor mix, by tenant number modulo 4: a files→files tenant, a Workday (SOAP) source, a
# SuccessFactors (OData, SAML bearer) source, and an Entra (Graph, HTTPS) target that starts empty.
KINDS = ("files", "workday", "successfactors", "entra")
SECRET_FIELDS = ("password", "client_secret")


def tenant_kind(i: int, vendors: bool) -> str:
    return KINDS[i % len(KINDS)] if vendors else "files"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _connection_toml(name: str, settings: dict[str, object]) -> str:
    lines = [f"[connections.{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


class Emulators:
    """Vendor emulators served in this process (threads on 127.0.0.1 free ports); workers use HTTP.

    Source emulators are read-only, so one per distinct org serves every tenant reading it.
    An Entra target holds state (its directory), so each Entra tenant gets its own emulator,
    and a solo run gets yet another fresh one (:meth:`retarget_entra`). Secrets go to files
    under ``secrets`` and the tenant configs hold ``file:`` references only.
    """

    def __init__(self, secrets: Path) -> None:
        self._stack = ExitStack()
        self._sources: dict[tuple[str, int, int], dict[str, object]] = {}
        self.secrets = secrets
        secrets.mkdir(parents=True, exist_ok=True)
        self.started: list[RunningEmulator] = []

    def __enter__(self) -> Emulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def _start(self, system: str, org: SandboxOrg, **options: object) -> RunningEmulator:
        running = self._stack.enter_context(serve(create_emulator(system, org, **options)))
        self.started.append(running)
        return running

    def _referenced(self, settings: dict[str, object]) -> dict[str, object]:
        out = dict(settings)
        for key in SECRET_FIELDS:
            if key in out:
                path = self.secrets / f"secret-{len(list(self.secrets.iterdir()))}"
                path.write_text(str(out[key]), encoding="utf-8")
                out[key] = f"file:{path}"
        return out

    def source(self, system: str, size: int, seed: int) -> dict[str, object]:
        """Connection settings for a source emulator of org (size, seed), started once."""
        key = (system, size, seed)
        if key not in self._sources:
            self._sources[key] = self._referenced(
                self._start(system, SandboxOrg(size, seed=seed)).connection()
            )
        return self._sources[key]

    def entra(self, size: int, seed: int) -> dict[str, object]:
        """A fresh Graph emulator whose directory starts empty: the first sync creates every user."""
        return self._referenced(
            self._start("entra", SandboxOrg(size, seed=seed), directory="empty").connection()
        )

    def retarget_entra(self, folder: Path) -> None:
        """Point every Entra tenant in ``folder`` (a copy) at a fresh, empty emulator of its own."""
        for path in sorted(folder.glob("*.toml")):
            text = path.read_text(encoding="utf-8")
            match = re.search(r"^# entra-org (\d+) (\d+)$", text, re.M)
            if match is None:
                continue
            size, seed = int(match[1]), int(match[2])
            head, _, _ = text.partition("[connections.directory]")
            body = _connection_toml("directory", self.entra(size, seed))
            path.write_text(head + body + JOB_TOML, encoding="utf-8")


JOB_TOML = """
[jobs.nightly]
source = "hr"
targets = ["directory"]
"""
FILES_HR = {"type": "files", "path": "data/{name}/people.csv"}
FILES_DIRECTORY = {"type": "files", "path": "data/{name}/directory.jsonl"}


def make_tenants(
    folder: Path,
    count: int,
    low: int,
    high: int,
    prefix: str = "t",
    emulators: Emulators | None = None,
    source_orgs: int = 3,
) -> dict[str, int]:
    """``count`` tenants with sandbox orgs of ``low``–``high`` people; name → size.

    Without ``emulators`` every tenant is files→files. With them the tenants follow
    :data:`KINDS`: vendor sources read one of ``source_orgs`` orgs per vendor (several tenants
    share an org, and so an emulator), Entra targets each get their own empty directory.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i in range(count):
        name = f"{prefix}{i:03d}"
        kind = tenant_kind(i, emulators is not None)
        data = folder / "data" / name
        data.mkdir(parents=True, exist_ok=True)
        hr: dict[str, object] = {k: v.format(name=name) for k, v in FILES_HR.items()}
        directory: dict[str, object] = {k: v.format(name=name) for k, v in FILES_DIRECTORY.items()}
        note = f"# {kind}\n"
        if kind in ("workday", "successfactors") and emulators is not None:
            slot = (i // len(KINDS)) % source_orgs
            size = tenant_size(slot * len(KINDS) + KINDS.index(kind), low, high)
            hr = emulators.source(kind, size, seed=1000 + slot)
        else:
            size = tenant_size(i, low, high)
            write_people(data / "people.csv", SandboxOrg(size, seed=i).expected_people())
            if kind == "entra" and emulators is not None:
                directory = emulators.entra(size, seed=i)
                note += f"# entra-org {size} {i}\n"
        text = note + "\n" + _connection_toml("hr", hr) + "\n" + _connection_toml("directory", directory)
        (folder / f"{name}.toml").write_text(text + JOB_TOML, encoding="utf-8")
        sizes[name] = size
    return sizes


def target_state(folder: Path, name: str, *, version: bool = False) -> object:
    """What a tenant's sync wrote: the files target's bytes, or the Entra emulator's directory.

    Entra object ids are minted by the emulator on create, so users are keyed by employeeId and
    managers named by employeeId; everything else (every attribute written) is compared as is.
    ``version`` adds the directory's change counter (to show that a rerun changed nothing).
    """
    import tomllib

    import requests

    config = tomllib.loads((folder / f"{name}.toml").read_text(encoding="utf-8"))
    conn = config["connections"]["directory"]
    if conn["type"] == "files":
        return (folder / conn["path"]).read_bytes()
    session = requests.Session()
    session.trust_env = False
    resp = session.get(f"{conn['graph_url']}/_sandbox/directory", verify=conn["ca_bundle"], timeout=60)
    resp.raise_for_status()
    users = resp.json()["users"]
    eid_of = {u["id"]: u.get("employeeId") for u in users}
    out = {}
    for u in users:
        row = {k: v for k, v in u.items() if k != "id" and not k.endswith("DateTime")}
        row["manager"] = eid_of.get(u["manager"]) if u.get("manager") else None
        out[u.get("employeeId") or u["userPrincipalName"]] = row
    return {"version": resp.json().get("version"), "users": out} if version else out


@dataclass
class FleetRun:
    """A unique namespace for one test run: queue, PostgreSQL schemas, Redis keys."""

    folder: Path
    broker: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    rate_limits: dict[str, str] = field(default_factory=dict)

    @property
    def schema_prefix(self) -> str:
        return f"fleet_{self.tag}"

    def settings(self) -> FleetSettings:
        return FleetSettings(
            broker_url=self.broker,
            result_backend=REDIS_URL.rsplit("/", 1)[0] + "/1",
            registry=str(self.folder),
            state_template=f"{PG_URL}?schema={self.schema_prefix}_{{tenant_id}}",
            lock_url=PG_URL,
            ratelimit_url=REDIS_URL,
            rate_limits=self.rate_limits,
            namespace=f"okrsync-test-{self.tag}",
            queue=f"okrsync-test-{self.tag}",
            busy_retry_after=0.5,
            retry_backoff=0.5,
            visibility_timeout=60,
        )

    def cleanup(self) -> None:
        import psycopg
        import redis

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{self.schema_prefix}%",)
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # type: ignore[arg-type]
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"*{self.tag}*"):
            r.delete(key)
        r.delete(self.settings().queue)
        if self.broker.startswith("amqp"):
            import kombu

            with kombu.Connection(self.broker) as conn, suppress(Exception):
                conn.default_channel.queue_delete(self.settings().queue)


class Worker:
    """``celery -A okrsync.distributed.worker worker`` as a subprocess in its own process group."""

    def __init__(self, run: FleetRun, name: str, pool: str = "prefork", log: Path | None = None) -> None:
        env = {
            **os.environ,
            **run.settings().to_env(),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.log_path = log or run.folder / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "okrsync.distributed.worker",
                "worker",
                "-Q",
                run.settings().queue,
                "-n",
                f"{name}-{run.tag}@%h",
                "--concurrency=1",
                "-P",
                pool,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> set[int]:
        import psutil

        try:
            me = psutil.Process(self.proc.pid)
            return {self.proc.pid, *(c.pid for c in me.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@contextmanager
def workers(run: FleetRun, count: int, pool: str = "prefork") -> Iterator[list[Worker]]:
    started = [Worker(run, f"w{i}", pool) for i in range(count)]
    try:
        yield started
    finally:
        for w in started:
            w.stop()


def overlaps(runs: list[RunInfo]) -> list[tuple[int, int]]:
    """Pairs of runs of one job whose lifetimes overlap.

    A run's life is [started_at, finished_at]; for a run taken over after its holder died
    (``interrupted``), its last heartbeat is the last moment it is known to have been alive.
    """

    def end(r: RunInfo) -> datetime:
        if r.status == "interrupted" and r.heartbeat_at is not None:
            return r.heartbeat_at
        assert r.finished_at is not None, f"run {r.id} never finished"
        return r.finished_at

    ordered = sorted(runs, key=lambda r: r.started_at)
    return [(a.id, b.id) for a, b in itertools.pairwise(ordered) if end(a) > b.started_at]


def wait_results(results: list, timeout: float) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    out = []
    for res in results:
        out.append(res.get(timeout=max(1.0, deadline - time.monotonic()), propagate=True))
    return out
