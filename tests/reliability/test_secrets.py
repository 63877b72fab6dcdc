"""Secrets: no configured secret and no token an emulator issued may appear anywhere okrsync writes.

The pipeline (Workday SOAP password, Entra client secret, SuccessFactors SAML private key and
every SAML assertion the connector signed and presented, SCIM bearer token) and a Salesforce
pull job (password + security token, session ids) run through the CLI with ``--log-level
debug --log-format json``; then stderr, stdout, the state DB file's bytes, the run reports
(JSON + HTML), ``runs show`` and ``why`` output, and the texts of errors from runs with wrong
credentials are scanned for every secret and for every bearer token or session id the
emulators' ``TokenStore`` issued during the runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from okrsync.sandbox import SandboxOrg
from tests.conftest import StartEmulator
from tests.reliability.pipeline import Pipeline, to_toml
from tests.reliability.summary import record

SCIM_TOKEN = "scim-Bearer-7f3c9a1e5b2d4f6a8c0e1b3d5f7a9c2e"


def run_cli(pipe: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "okrsync.cli", "--log-level", "debug", "--log-format", "json"]
    command += ["-c", str(pipe.config_path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def secrets_of(pipe: Pipeline) -> dict[str, str]:
    conns = pipe.data["connections"]
    found = {
        "workday password": conns["workday"]["password"],
        "entra client_secret": conns["entra"]["client_secret"],
        "scim token": SCIM_TOKEN,
    }
    key = Path(conns["successfactors"]["private_key_path"]).read_text()
    body = [line for line in key.splitlines() if line and not line.startswith("-----")]
    for i, line in enumerate(body[:: max(1, len(body) // 4)]):
        found[f"SF private key line {i}"] = line
    for n, assertion in enumerate(getattr(pipe.runs["successfactors"].emulator, "assertions", [])):
        found[f"SF SAML assertion {n}"] = assertion  # base64 of the signed XML, as posted
    for system, run in pipe.runs.items():
        tokens = getattr(run.emulator, "tokens", None)
        for n, token in enumerate(list(getattr(tokens, "_tokens", {}))):
            found[f"{system} issued token {n}"] = token
    return found


def scan(texts: dict[str, bytes], secrets: dict[str, str]) -> list[str]:
    return [
        f"{secret_name} in {where}"
        for where, blob in texts.items()
        for secret_name, value in secrets.items()
        if value and value.encode() in blob
    ]


def test_no_secret_or_issued_token_appears_in_any_output(tmp_path: Path) -> None:
    with Pipeline(tmp_path / "job", 60, scim_token=SCIM_TOKEN) as pipe:
        outputs: dict[str, bytes] = {}
        entra = pipe.data["connections"]["entra"]
        for key in ("certificate_path", "private_key_path", "certificate_thumbprint"):
            entra.pop(key, None)  # authenticate with the client secret, so that it is really sent
        pipe.config_path.write_text(to_toml(pipe.data), encoding="utf-8")
        first = run_cli(pipe, "sync", "nightly")
        assert first.returncode == 0, first.stderr[-3000:]
        pipe.org.random_edits(4, seed=2)
        second = run_cli(pipe, "sync", "nightly", "--json")
        assert second.returncode in {0, 4}, second.stderr[-3000:]
        for n, proc in enumerate((first, second)):
            outputs[f"sync {n} stderr"] = proc.stderr.encode()
            outputs[f"sync {n} stdout"] = proc.stdout.encode()
        lines = [line for line in first.stderr.splitlines() if line.strip()]
        assert len(lines) > 10, "debug logging produced almost nothing to scan"
        for args in (("runs", "show", "1"), ("runs", "show", "2", "--json"), ("why", "100002")):
            proc = run_cli(pipe, *args)
            outputs[" ".join(args)] = (proc.stdout + proc.stderr).encode()
        outputs["state DB"] = b"".join(p.read_bytes() for p in pipe.folder.glob("state.db*") if p.is_file())
        reports = sorted((pipe.folder / "reports").glob("run-*"))
        assert {p.suffix for p in reports} == {".json", ".html"}
        outputs.update({f"report {p.name}": p.read_bytes() for p in reports})

        # wrong credentials: the error texts name the problem, never the secret that was sent
        good = dict(pipe.data["connections"])
        bad_password = "Wr0ng-Passw0rd-4b9f1c7e2d"
        bad_secret = "Wr0ng~ClientSecret-8e1d3a5c7f9b"
        pipe.data["connections"]["workday"] = {**good["workday"], "password": bad_password}
        pipe.config_path.write_text(
            pipe.config_path.read_text().replace(good["workday"]["password"], bad_password)
        )
        failed = run_cli(pipe, "sync", "nightly", "--full")
        assert failed.returncode != 0
        outputs["wrong workday password"] = (failed.stdout + failed.stderr).encode()
        text = pipe.config_path.read_text().replace(bad_password, good["workday"]["password"])
        pipe.config_path.write_text(text.replace(good["entra"]["client_secret"], bad_secret))
        failed = run_cli(pipe, "sync", "nightly", "--full")
        assert failed.returncode != 0
        outputs["wrong entra secret"] = (failed.stdout + failed.stderr).encode()

        secrets = {**secrets_of(pipe), "bad workday password": bad_password, "bad entra secret": bad_secret}
        pipe.data["connections"] = good
    issued = [k for k in secrets if "issued token" in k]
    assert len(issued) >= 3, "the emulators issued tokens during the runs: they must be scanned for"
    assert any("SAML assertion" in k for k in secrets), "the SF connector signed assertions: scan for them"
    leaks = scan(outputs, secrets)
    record("secrets_scanned", len(secrets))
    record("artifacts_scanned", len(outputs))
    record("leaks", len(leaks))
    assert leaks == []


def test_salesforce_password_token_and_issued_sessions_never_appear(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    """A Salesforce → files pull job (SOAP login: password + security token) with debug JSON logs."""
    run = start_emulator("salesforce", org=SandboxOrg(40, seed=9))
    conn = run.connection()
    keys = ("username", "password", "security_token", "ca_bundle", "login_url")
    data = {
        "state": {"path": "state.db"},
        "reports": {"dir": "reports"},
        "connections": {
            "salesforce": {"type": "salesforce", "auth": "password", **{k: conn[k] for k in keys}},
            "people": {"type": "files", "path": "people.jsonl"},
        },
        "jobs": {"crm": {"source": "salesforce", "targets": ["people"]}},
    }
    config = tmp_path / "okrsync.toml"
    config.write_text(to_toml(data), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "okrsync.cli", "--log-level", "debug", "--log-format", "json"]
        return subprocess.run(
            [*command, "-c", str(config), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ),
        )

    outputs: dict[str, bytes] = {}
    for n in range(2):
        proc = cli("sync", "crm", "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[f"sync {n}"] = (proc.stdout + proc.stderr).encode()
    assert len([line for line in outputs["sync 0"].splitlines() if line.strip()]) > 10
    shown = cli("runs", "show", "1")
    outputs["runs show 1"] = (shown.stdout + shown.stderr).encode()
    bad_token = "Wr0ngSecurityT0ken9f3a"
    config.write_text(config.read_text().replace(conn["security_token"], bad_token), encoding="utf-8")
    failed = cli("sync", "crm", "--full")
    assert failed.returncode != 0
    outputs["wrong security token"] = (failed.stdout + failed.stderr).encode()
    outputs["state DB"] = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.is_file())
    outputs.update({f"report {p.name}": p.read_bytes() for p in (tmp_path / "reports").glob("run-*")})
    outputs["people file"] = (tmp_path / "people.jsonl").read_bytes()

    secrets = {
        "salesforce password": conn["password"],
        "salesforce security_token": conn["security_token"],
        "salesforce password+token": conn["password"] + conn["security_token"],
        "bad security token": bad_token,
    }
    issued = list(getattr(getattr(run.emulator, "tokens", None), "_tokens", {}))
    secrets.update({f"salesforce session id {n}": token for n, token in enumerate(issued)})
    assert len(issued) >= 2, "each CLI run logged in: its session ids must be scanned for"
    leaks = scan(outputs, secrets)
    record("secrets_scanned", len(secrets))
    record("artifacts_scanned", len(outputs))
    record("leaks", len(leaks))
    assert leaks == []
