"""People files (CSV or JSONL) in, people files out.

Reading keeps every row, even a broken one, with its line number, so the engine can
quarantine it by name instead of a parser dropping it silently. Writing neutralises
spreadsheet formulas (a name such as ``=HYPERLINK(...)``) because HR exports get opened in
Excel, and writes atomically so a crash never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from okrsync.errors import ConfigError
from okrsync.models import PERSON_FILE_FIELDS, Person

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# fields whose default is not None: a missing value falls back to the default
_DEFAULTED = frozenset(
    name
    for name, info in Person.model_fields.items()
    if info.default is not None or info.default_factory is not None
)


@dataclass(frozen=True)
class Row:
    """One row of a people file: ``data`` is None when the line itself could not be decoded."""

    line: int
    data: dict[str, Any] | None
    error: str | None = None


def file_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    raise ConfigError(f'{path}: cannot tell the format from the extension; set format = "csv" or "jsonl"')


def iter_rows(path: Path, fmt: str = "auto") -> Iterator[Row]:
    """Yield every row of a people file; undecodable lines come back with ``error`` set."""
    fmt = file_format(path, fmt)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read people file {path}: {exc.strerror or exc}") from None
    if fmt == "jsonl":
        yield from _jsonl_rows(raw)
    else:
        yield from _csv_rows(raw, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def _decode(line: bytes) -> tuple[str | None, str | None]:
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}"


def _jsonl_rows(raw: bytes) -> Iterator[Row]:
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        text, err = _decode(line)
        if text is None:
            yield Row(n, None, err)
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Row(n, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield Row(n, None, "invalid JSON: nested too deeply")
            continue
        if not isinstance(data, dict):
            yield Row(n, None, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield Row(n, data)


def _csv_rows(raw: bytes, delimiter: str) -> Iterator[Row]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        bad = next((c for c in cells if _has_surrogate(c)), None)
        if bad is not None:
            yield Row(line, None, "invalid UTF-8 in this row")
            continue
        if len(cells) != len(header):
            yield Row(line, None, f"expected {len(header)} columns, found {len(cells)}")
            continue
        yield Row(line, {h: (c if c != "" else None) for h, c in zip(header, cells, strict=True)})


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_people(path: str | os.PathLike[str], fmt: str = "auto") -> list[Person]:
    """Strict loader for tools (org check, cascade): the first bad row raises with its line number."""
    people = []
    p = Path(path)
    for row in iter_rows(p, fmt):
        if row.data is None:
            raise ConfigError(f"{p}:{row.line}: {row.error}")
        try:
            people.append(person_from_row(row.data))
        except ValueError as exc:
            raise ConfigError(f"{p}:{row.line}: {exc}") from None
    return people


_PERSON_FIELDS = frozenset(Person.model_fields)
_ID_FIELDS = ("id", "manager_id")
MAX_FIELD_CHARS = 4096  # no HR field is longer; a megabyte "name" is an attack or a broken export
_CONTROL = {c for c in range(32)} | {127}
# explicit bidi embeddings/overrides/isolates: how "evil\u202egnp.exe" displays as "evilexe.png"
_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
# the same three sets as one character class: a C-speed scan for the common, clean case
_REFUSED = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_CONTROL | _BIDI)) + "\ud800-\udfff]")


class FieldValueError(ValueError):
    """A value refused before model validation; ``field`` names where it was."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field
        self.reason = reason


def check_text(field_name: str, value: str) -> None:
    """Refuse values no HR system should hold, naming the field and the reason."""
    if len(value) > MAX_FIELD_CHARS:
        raise FieldValueError(
            field_name, f"{len(value):,} characters; at most {MAX_FIELD_CHARS:,} are accepted"
        )
    found = _REFUSED.search(value)
    if found is not None:
        bad = found.group()
        code = ord(bad)
        kind = (
            "lone surrogate (invalid Unicode)"
            if 0xD800 <= code <= 0xDFFF
            else "bidirectional control character"
            if code in _BIDI
            else "control character"
        )
        raise FieldValueError(field_name, f"contains {kind} U+{ord(bad):04X} at position {value.index(bad)}")


def person_from_row(data: Mapping[str, Any], ref: str | None = None) -> Person:
    """A people-file row → Person: canonical columns as fields, any other column kept in attributes.

    Ids arrive as numbers from JSON exports and padded from spreadsheets: both are normalised.
    ``data`` is never changed.
    """
    fields = dict(data)  # the one copy: what is validated (the caller's dict stays as it was)
    for key in _ID_FIELDS:
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            fields[key] = str(value)
        elif isinstance(value, str):
            fields[key] = value.strip() or None
    _check_texts(fields)
    if fields.keys() <= _PERSON_FIELDS:
        # canonical keys only (a mapping's output, a people file written by okrsync): nothing
        # moves to attributes, so the row is the fields once blanks and "attributes" are settled
        if None in fields.values():
            for key in _DEFAULTED:
                if key in fields and fields[key] is None:
                    del fields[key]  # a blank cell means "not given", not an invalid null
        if "attributes" in fields:
            given = fields.pop("attributes")
            if isinstance(given, dict) and given:
                fields["attributes"] = dict(given)
    else:
        fields = _split_attributes(fields)
    extra = fields.get("additional_manager_ids")
    if isinstance(extra, str):
        fields["additional_manager_ids"] = tuple(x.strip() for x in extra.split(";") if x.strip())
    if isinstance(fields.get("external_ids"), str):
        fields["external_ids"] = json.loads(fields["external_ids"])
    if ref is not None and fields.get("raw_ref") is None:
        fields["raw_ref"] = ref
    return _validate_person(fields)


# Person.model_validate without its Python wrapper: the same validator, the same errors
_validate_person: Callable[[Any], Person] = Person.__pydantic_validator__.validate_python


def _check_texts(data: dict[str, Any]) -> None:
    """``check_text`` on every string value, in key order, as one C-level scan in the clean case.

    The refused characters are single characters, so a match in the concatenation is a match in
    one value; and no value is over the limit when all of them together are not. Only on a hit
    are the values checked one by one, for the same error, naming the same (first) field.
    """
    texts = "".join(filter(_is_text, data.values()))
    if len(texts) <= MAX_FIELD_CHARS and _REFUSED.search(texts) is None:
        return
    for key, value in data.items():
        if isinstance(value, str):
            check_text(key, value)


_is_text = str.__instancecheck__  # isinstance(value, str), as a C function filter() can call


def _split_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """Canonical columns as fields; every other non-null column into attributes."""
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = (
        dict(data.get("attributes") or {}) if isinstance(data.get("attributes"), dict) else {}
    )
    for key, value in data.items():
        if key == "attributes":
            continue
        if key in _PERSON_FIELDS:
            if value is None and key in _DEFAULTED:
                continue  # a blank cell means "not given", not an invalid null
            fields[key] = value
        elif value is not None:
            attributes[key] = value
    if attributes:
        fields["attributes"] = attributes
    return fields


def person_to_row(person: Person) -> dict[str, Any]:
    """The flat shape a people file holds (the inverse of :func:`person_from_row`)."""
    data = person.model_dump(mode="json", exclude_defaults=True, exclude={"raw_ref"})
    data.setdefault("id", person.id)
    return data


def neutralise_formula(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    elif isinstance(value, date | datetime):
        value = value.isoformat()
    return neutralise_formula(str(value))


def person_to_jsonl(person: Person) -> str:
    return json.dumps(person_to_row(person), ensure_ascii=False, separators=(",", ":"))


@contextmanager
def atomic_text_file(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A file that appears complete or not at all: temp file, fsync, rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Write pre-serialised JSONL lines atomically."""
    count = 0
    with atomic_text_file(path) as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
            count += 1
    return count


def write_people(path: str | os.PathLike[str], people: Iterable[Person], fmt: str = "auto") -> int:
    """Write atomically so readers and crashes never see half a file."""
    p = Path(path)
    if file_format(p, fmt) == "jsonl":
        return write_lines(p, (person_to_jsonl(person) for person in people))
    rows = [person_to_row(x) for x in people]
    extra = sorted({k for r in rows for k in r.get("attributes", {})} - set(PERSON_FILE_FIELDS))
    header = [*PERSON_FILE_FIELDS, "external_ids", *extra]
    with atomic_text_file(p) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            attrs = r.pop("attributes", {})
            writer.writerow([_csv_cell(r.get(h, attrs.get(h))) for h in header])
    return len(rows)
