"""Errors carry what an operator needs and never a secret."""

from __future__ import annotations

import logging

from okrsync.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    HierarchyError,
    OkrSyncError,
    PolicyViolation,
    RecordsFailed,
    RetriableApiError,
    excerpt,
    redact_text,
    redact_url,
)
from okrsync.logs import RedactingFilter, configure


def test_exit_codes_follow_the_documented_table() -> None:
    assert OkrSyncError("x").exit_code == 1
    assert ConfigError("x").exit_code == 2
    assert PolicyViolation("x").exit_code == 3
    assert RecordsFailed("x").exit_code == 4 and HierarchyError("x").exit_code == 4
    for cls in (ConnectorError, AuthenticationError, ApiError, RetriableApiError):
        assert cls("x").exit_code == 5


def test_connector_error_names_connector_operation_url_status_request_id() -> None:
    err = ApiError(
        "Graph refused the write",
        connector="entra",
        operation="PATCH user",
        status=403,
        url="https://graph.example/v1.0/users/1?access_token=abc123secret&$select=id",
        request_id="req-42",
        code="Authorization_RequestDenied",
        body='{"error":{"code":"Authorization_RequestDenied","client_secret":"hunter2hunter2"}}',
    )
    text = str(err)
    for part in ("entra", "PATCH user", "403", "req-42", "Authorization_RequestDenied", "/v1.0/users/1"):
        assert part in text
    assert "abc123secret" not in text and "hunter2" not in text


def test_redaction_of_urls_text_and_soap() -> None:
    assert "pw" not in redact_url("https://user:pw@host/x?password=pw&a=1")
    assert redact_text("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc.def") == "Authorization: Bearer ***"
    assert "s3cret" not in redact_text("client_secret=s3cret&grant_type=x")
    assert "topsecret" not in redact_text('<wsse:Password Type="PasswordText">topsecret</wsse:Password>')
    assert len(excerpt("x" * 5000)) < 600


def test_logging_filter_masks_configured_secrets_and_tokens(caplog: object) -> None:
    flt = RedactingFilter(("my-very-secret-value",))
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "login with %s and Bearer abcdefghijkl",
        ("my-very-secret-value",),
        None,
    )
    assert flt.filter(record)
    assert record.getMessage() == "login with *** and Bearer ***"
    configure("info", "json")


def test_vendor_error_codes_are_not_mistaken_for_secrets() -> None:
    text = redact_text('[{"errorCode":"INVALID_FIELD","message":"No such column"}] code=authcode123')
    assert "INVALID_FIELD" in text and "authcode123" not in text
