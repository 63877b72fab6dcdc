"""Reports-as-a-Service: one custom report (``customreport2``), streamed entry by entry.

A RaaS report answers in one response (no paging) that can run to hundreds of MB, so the body
is read in chunks and the ``Report_Entry`` array is decoded one object at a time with
``json.JSONDecoder.raw_decode``: memory holds one chunk plus one entry, never the whole body.

Keys are the report's field aliases; the mapping (``workday-raas`` by default) names them. The
connector itself reads only ``report_keys`` (worker id, WID, Active) to keep one entry per
worker: a conversion leaves an inactive entry with the same id, and the active one owns the
person (if none is active, the last one wins). No change feed: every pull is full.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import requests

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.workday.config import WorkdayConfig
from okrsync.errors import ApiError
from okrsync.http import HttpClient

CHUNK = 256 * 1024
_START = re.compile(r'"Report_Entry"\s*:\s*\[')
_SPACE = " \t\r\n"


def iter_report_entries(chunks: Iterable[bytes], *, connector: str = "workday") -> Iterator[dict[str, Any]]:
    """The objects of ``{"Report_Entry": [...]}`` from a byte stream, one at a time."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")()
    source = iter(chunks)
    buf, pos, ended = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, ended
        if ended:
            return False
        chunk = next(source, None)
        if chunk is None:
            ended = True
            tail = text.decode(b"", final=True)
        else:
            tail = text.decode(chunk)
        buf = buf[pos:] + tail
        pos = 0
        return True

    while True:  # find the array
        m = _START.search(buf, pos)
        if m:
            pos = m.end()
            break
        pos = max(pos, len(buf) - 64)
        if not more():
            if buf.strip() in ("", "{}"):
                return
            raise ApiError(
                "the report has no Report_Entry array", connector=connector, operation="RaaS report"
            )
    while True:
        while pos < len(buf) and buf[pos] in _SPACE:
            pos += 1
        if pos >= len(buf):
            if not more():
                raise ApiError("the report body ended inside Report_Entry (truncated)", connector=connector)
            continue
        ch = buf[pos]
        if ch == "]":
            return
        if ch == ",":
            pos += 1
            continue
        try:
            entry, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError:
            if more():
                continue
            raise ApiError(
                "a Report_Entry item is not valid JSON (truncated body?)", connector=connector
            ) from None
        pos = end
        if isinstance(entry, dict):
            yield entry


class RaasPuller:
    def __init__(self, cfg: WorkdayConfig, http: HttpClient, name: str = "workday") -> None:
        self.cfg = cfg
        self.http = http
        self.name = name

    def pull(self, request: PullRequest) -> Pull:
        pull = Pull(
            records=iter(()),
            mode=PullMode.FULL,
            notices=["Workday RaaS has no change feed: a full pull (the engine diffs it)"],
        )

        def run() -> Iterator[RawRecord]:
            response = self.http.request(
                "GET",
                self.cfg.report_url,
                operation="RaaS report",
                params={"format": "json", **self.cfg.prompts},
                stream=True,
            )
            pull.requests = 1
            try:
                yield from self._dedupe(self._entries(response))
            finally:
                response.close()

        pull.records = run()
        return pull

    def _entries(self, response: requests.Response) -> Iterator[dict[str, Any]]:
        try:
            yield from iter_report_entries(response.iter_content(CHUNK), connector=self.name)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise ApiError(
                f"the report stream broke off: {type(exc).__name__}",
                connector=self.name,
                operation="RaaS report",
                url=self.cfg.report_url,
            ) from None

    def _dedupe(self, entries: Iterator[dict[str, Any]]) -> Iterator[RawRecord]:
        keys = self.cfg.report_keys
        emitted: set[str] = set()
        held: dict[str, dict[str, Any]] = {}
        for n, entry in enumerate(entries, 1):
            raw_id = entry.get(keys.id)
            wid = entry.get(keys.wid) if keys.wid else None
            number = str(raw_id) if raw_id not in (None, "") else None
            external = {k: str(v) for k, v in (("workday_wid", wid), ("employee_id", number)) if v}
            entry["External_IDs"] = external
            if number is None:
                yield RawRecord(key=f"entry {n}", data=entry, ref=f"Report_Entry {n}")
                continue
            if number in emitted:
                continue
            if str(entry.get(keys.active, "")).lower() in ("1", "true"):
                emitted.add(number)
                held.pop(number, None)
                yield RawRecord(key=number, data=entry, ref=f"Report_Entry {n}")
            else:
                held[number] = entry | {"__entry__": n}
        for number, entry in held.items():
            n = entry.pop("__entry__")
            yield RawRecord(key=number, data=entry, ref=f"Report_Entry {n}")
