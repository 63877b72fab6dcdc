"""The HTTP machinery every vendor emulator shares: routing, TLS, faults, tokens, stats.

An emulator is a set of routes over one :class:`~okrsync.sandbox.orgs.SandboxOrg`. This
module serves them on 127.0.0.1 (HTTP/1.1 keep-alive, so clients' pooled sessions behave
as against a vendor), optionally over TLS with a throwaway CA, and misbehaves on request:
deterministic 429/5xx, connection resets, truncated bodies, slow answers, expiring tokens.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import re
import secrets
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from okrsync.sandbox.orgs import SandboxOrg


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path without the query string (what routes match)
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match[str] | None = None
    base_url: str = ""
    raw_path: str = ""  # the path exactly as sent (percent-encoded); "" for synthetic requests

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class FaultSpec:
    """Faults as a compact spec: ``429=0.1,503=0.05,500=0.01,reset=0.02,truncate=0.01,slow=0.05,
    slow_seconds=0.2,retry_after=1,token_ttl=60,delta_ttl=30,seed=7``."""

    rates: dict[str, float] = field(default_factory=dict)  # "429", "500", "503", "reset", "truncate", "slow"
    slow_seconds: float = 0.2
    retry_after: float = 1.0
    token_ttl: float | None = None  # seconds a token stays valid
    delta_ttl: float | None = None  # seconds a delta/incremental token stays valid
    seed: int = 0

    KINDS: ClassVar[tuple[str, ...]] = ("429", "500", "503", "reset", "truncate", "slow")

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        if not spec:
            return cls()
        rates: dict[str, float] = {}
        opts: dict[str, float] = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"fault {part!r} needs a value, e.g. 429=0.1")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"fault {key!r}: {value!r} is not a number") from None
            if key in cls.KINDS:
                if not 0 <= number <= 1:
                    raise ValueError(f"fault {key!r}: rate {number} is not between 0 and 1")
                rates[key] = number
            elif key in {"slow_seconds", "retry_after", "token_ttl", "delta_ttl", "seed"}:
                opts[key] = number
            else:
                raise ValueError(
                    f"unknown fault {key!r}; known: {', '.join(cls.KINDS)}, "
                    "slow_seconds, retry_after, token_ttl, delta_ttl, seed"
                )
        return cls(
            rates=rates,
            slow_seconds=opts.get("slow_seconds", 0.2),
            retry_after=opts.get("retry_after", 1.0),
            token_ttl=opts.get("token_ttl"),
            delta_ttl=opts.get("delta_ttl"),
            seed=int(opts.get("seed", 0)),
        )

    @property
    def active(self) -> bool:
        return any(self.rates.values())


class FaultInjector:
    """Draws faults deterministically (seeded) for every vendor request, and counts them."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.enabled = True

    def draw(self) -> str | None:
        if not self.enabled or not self.spec.active:
            return None
        with self._lock:
            roll = self._rng.random()
        acc = 0.0
        for kind in FaultSpec.KINDS:
            acc += self.spec.rates.get(kind, 0.0)
            if roll < acc:
                with self._lock:
                    self.injected[kind] += 1
                return kind
        return None


class TokenStore:
    """Bearer tokens an emulator issued, with optional expiry (for token-expiry-mid-run faults)."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._tokens: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def issue(self, claims: dict[str, Any] | None = None) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (time.monotonic(), dict(claims or {}))
        return token, int(self.ttl) if self.ttl else 3599

    def check(self, authorization: str | None) -> str | None:
        """None when valid; else the reason ("missing", "invalid", "expired")."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "missing"
        token = authorization[7:].strip()
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            return "invalid"
        if self.ttl is not None and time.monotonic() - entry[0] > self.ttl:
            return "expired"
        return None


class Emulator:
    """Base class: subclasses add routes in ``__init__`` and override the vendor-shaped errors."""

    system: ClassVar[str] = "base"
    tls: ClassVar[bool] = False

    def __init__(self, org: SandboxOrg, *, faults: FaultSpec | None = None) -> None:
        self.org = org
        self.faults = FaultInjector(faults or FaultSpec())
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: Counter[str] = Counter()  # "METHOD /path" -> count, vendor routes only
        self.request_log: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self._stats_lock = threading.Lock()
        self.base_url = ""
        self.route("POST", r"/_sandbox/edit", self._edit)
        self.route("GET", r"/_sandbox/stats", self._stats)
        self.route("POST", r"/_sandbox/faults", self._set_faults)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    # ---- vendor-shaped answers; override per emulator ----
    def begin(self, req: Request) -> None:
        """Called with every request before faults are drawn or a route runs; the default does nothing.

        An emulator that speaks several wire formats on one port (Workday: SOAP faults on
        ``/ccx/service``, JSON on ``/ccx/api``) remembers the request here, per thread, so that
        :meth:`error` and :meth:`throttled` (which take no request) answer in the right format.
        """

    def error(self, status: int, code: str, message: str) -> Response:
        return Response.json({"error": {"code": code, "message": message}}, status)

    def throttled(self) -> Response:
        r = self.error(429, "TooManyRequests", "Too many requests; retry later.")
        r.headers["Retry-After"] = f"{self.faults.spec.retry_after:g}"
        return r

    def connection(self) -> dict[str, Any]:
        """The ``[connections.X]`` settings that reach this emulator."""
        return {"type": self.system, "base_url": self.base_url}

    # ---- sandbox control routes ----
    def _edit(self, req: Request) -> Response:
        payload = req.json()
        edits = payload if isinstance(payload, list) else [payload]
        done = []
        try:
            for edit in edits:
                w = self.org.apply_edit(edit)
                done.append({"id": w.employee_id, "version": w.version})
        except (KeyError, ValueError, TypeError) as exc:
            return Response.json({"error": str(exc), "applied": done}, 400)
        return Response.json({"applied": done, "version": self.org.version})

    def _stats(self, req: Request) -> Response:
        with self._stats_lock:
            return Response.json(
                {
                    "requests": dict(self.requests),
                    "total": sum(self.requests.values()),
                    "faults": dict(self.faults.injected),
                    "workers": len(self.org),
                    "version": self.org.version,
                }
            )

    def _set_faults(self, req: Request) -> Response:
        body = req.json() or {}
        try:
            spec = FaultSpec.parse(str(body.get("spec", "")))
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)
        self.faults = FaultInjector(spec)
        return Response.json({"faults": spec.rates})

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.requests.clear()
            self.request_log.clear()

    # ---- dispatch ----
    def dispatch(self, req: Request) -> Response:
        for method, pattern, handler in self.routes:
            if method != req.method:
                continue
            m = pattern.match(req.path)
            if m:
                req.match = m
                return handler(req)
        return self.error(404, "NotFound", f"no route for {req.method} {req.path}")


class _TLS:
    """One throwaway CA per process; clients trust it through ``ca_path``."""

    _lock = threading.Lock()
    _instance: _TLS | None = None

    def __init__(self) -> None:
        import trustme

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        fd, path = tempfile.mkstemp(prefix="okrsync-sandbox-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.ca.cert_pem.bytes())
        self.ca_path = path
        atexit.register(_remove_quietly, path)  # one file per process, not one left behind per run

    @classmethod
    def get(cls) -> _TLS:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def sandbox_ca_path() -> str:
    """Path of the PEM file of the CA that signs every TLS emulator in this process."""
    return _TLS.get().ca_path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this, 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stats instead
        pass

    def _serve(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=unquote(parts.path),
            raw_query=parts.query,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=emulator.base_url,
            raw_path=parts.path,
        )
        control = req.path.startswith("/_sandbox/")
        emulator.begin(req)
        fault = None if control else emulator.faults.draw()
        if fault == "reset":
            self._reset()
            self._count(req, 0)
            return
        if fault == "slow":
            time.sleep(emulator.faults.spec.slow_seconds)
        if fault == "429":
            resp = emulator.throttled()
        elif fault in {"500", "503"}:
            resp = emulator.error(
                int(fault),
                "ServiceUnavailable" if fault == "503" else "InternalServerError",
                "injected fault",
            )
            if fault == "503":
                resp.headers.setdefault("Retry-After", f"{emulator.faults.spec.retry_after:g}")
        else:
            try:
                resp = emulator.dispatch(req)
            except Exception as exc:  # an emulator bug must answer, not hang the client
                resp = emulator.error(500, "EmulatorError", f"{type(exc).__name__}: {exc}")
        if not control:
            self._count(req, resp.status)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "truncate" and len(resp.body) > 1:
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(resp.body)

    def _count(self, req: Request, status: int) -> None:
        emulator = self.server.emulator
        with emulator._stats_lock:
            emulator.requests[f"{req.method} {req.path}"] += 1
            emulator.request_log.append((time.time(), req.method, req.path, status))

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
    do_MERGE = _serve  # OData v2 partial update (SuccessFactors, pyodata)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emulator: Emulator, port: int) -> None:
        self.emulator = emulator
        super().__init__(("127.0.0.1", port), _Handler)
        if emulator.tls:
            self.socket = _TLS.get().context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out, reset) is routine for an
        emulator that rehearses crashes; anything else is an emulator bug and is printed."""
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError | TimeoutError):
            return
        super().handle_error(request, client_address)


class RunningEmulator:
    """A started emulator: its URL, its CA (for TLS ones), and a stop()."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        self._server = _Server(emulator, port)
        bound = self._server.server_address[1]
        scheme = "https" if emulator.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{bound}"
        emulator.base_url = self.url
        self.ca_path = sandbox_ca_path() if emulator.tls else None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sandbox-{emulator.system}", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def connection(self) -> dict[str, Any]:
        settings = self.emulator.connection()
        if self.ca_path:
            settings.setdefault("ca_bundle", self.ca_path)
        return settings

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve(emulator: Emulator, port: int = 0) -> Iterator[RunningEmulator]:
    """Serve an emulator in this process for the duration of the block."""
    running = RunningEmulator(emulator, port)
    try:
        yield running
    finally:
        running.stop()
