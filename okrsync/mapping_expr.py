"""The mapping expression language: tokenizer, parser, AST and closure compiler.

Mapping files are written by HR admins and may come from anywhere, so expressions are never
handed to ``eval``/``exec``/``compile``: a hand-written tokenizer and recursive-descent parser
build an AST of frozen dataclasses, and the AST is turned once, at load time, into a tree of
Python closures. ``apply`` on the hot path (100,000 records per sync) then only calls those
closures; no text is ever looked at again.

Grammar (whitespace is free between tokens)::

    expr    := primary ('&' primary)*
    primary := literal | call | path | '(' expr ')'
    call    := NAME '(' [expr (',' expr)*] ')'
    path    := segment ('.' segment | '[' INT ']')*
    segment := NAME | `backquoted name` | [Entra style name]
    literal := 'single' | "double" | number | true | false | null

Function names are matched case-insensitively and ignoring underscores, so Entra's
``NormalizeDiacritics`` and ``normalize_diacritics`` are the same function. The null rules
(what each function does with a missing value) are documented in ``docs/mapping.md`` and on
each implementation below.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from operator import methodcaller
from typing import Any

from okrsync.errors import MappingError

Record = abc.Mapping[str, Any]
Evaluator = Callable[[Record], Any]

MAX_EXPRESSION_LENGTH = 100_000  # characters of one expression; anything longer is a mistake
MAX_DEPTH = 64  # nesting of calls/parentheses; keeps parser and evaluator far from RecursionError
MAX_TEXT = 1_000_000  # characters a function may produce (replace() can multiply its input)


# --------------------------------------------------------------------------------------------
# errors


class ExpressionError(MappingError):
    """An expression is malformed; ``column`` (1-based) points into ``text``."""

    def __init__(self, reason: str, *, text: str, column: int, hint: str = "") -> None:
        self.reason = reason
        self.text = text
        self.column = column
        self.hint = hint
        super().__init__(f"{reason} at column {column}")

    def __str__(self) -> str:
        hint = f"\n    {self.hint}" if self.hint else ""
        return f"{self.message}\n{caret(self.text, self.column)}{hint}"


class EvalError(MappingError):
    """An expression failed on a record; ``Mapping.apply`` turns it into a RecordMappingError.

    ``source`` is the source field the failing function was reading (its first path argument),
    so the error can name the record's offending field and not just the rule.
    """

    def __init__(self, reason: str, *, function: str | None = None, source: str | None = None) -> None:
        self.reason = reason
        self.function = function
        self.source = source
        super().__init__(reason)


def caret(text: str, column: int, width: int = 60) -> str:
    """Two lines showing ``text`` around ``column`` with a ``^`` under it (long texts are windowed)."""
    start = max(0, column - 1 - width // 2)
    piece = text[start : start + width].replace("\n", " ").replace("\t", " ")
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    return f"    {prefix}{piece}{suffix}\n    {' ' * (len(prefix) + column - 1 - start)}^"


def _show(value: Any, limit: int = 60) -> str:
    """repr() of a record value for an error message, cut short so a huge field stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    column: int


@dataclass(frozen=True, slots=True)
class Path:
    """A source field; ``steps`` are dict keys (str) and list indexes (int)."""

    steps: tuple[str | int, ...]
    column: int

    @property
    def text(self) -> str:
        """The field as ``source_fields()`` reports it: keys joined with dots, indexes dropped."""
        return ".".join(s for s in self.steps if isinstance(s, str))


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # the function's canonical (snake_case) name
    args: tuple[Node, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Concat:
    """``a & b & c``: kept flat so a long chain is not a deep tree."""

    parts: tuple[Node, ...]
    column: int


Node = Literal | Path | Call | Concat


def paths(node: Node) -> list[Path]:
    """Every source field an expression reads, in order (iterative: trees can be wide)."""
    found: list[Path] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Path):
            found.append(n)
        elif isinstance(n, Call):
            stack.extend(reversed(n.args))
        elif isinstance(n, Concat):
            stack.extend(reversed(n.parts))
    return found


# --------------------------------------------------------------------------------------------
# tokenizer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[^\W0-9]\w*)
  | (?P<string>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
  | (?P<bq>`[^`]*`)
  | (?P<punct>[(),.&\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_VALUE_END = frozenset({"name", "bq", "string", "number", ")", "]"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name | bq | string | number | one of ( ) , . & [ ] | end
    value: Any
    column: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; anything unexpected raises ExpressionError, never another error."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long (limit {MAX_EXPRESSION_LENGTH})", text=text, column=1
        )
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while pos < end:
        ch = text[pos]
        if ch == "[" and (not tokens or tokens[-1].kind not in _VALUE_END):
            # Entra style [attribute name]: a whole key, like a backquoted name
            close = text.find("]", pos + 1)
            if close < 0:
                raise ExpressionError("unterminated [name]", text=text, column=pos + 1)
            tokens.append(Token("bq", _check_key(text[pos + 1 : close], text, pos), pos + 1))
            pos = close + 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            if ch in "'\"":
                raise ExpressionError("unterminated string", text=text, column=pos + 1)
            if ch == "`":
                raise ExpressionError("unterminated `name`", text=text, column=pos + 1)
            raise ExpressionError(f"unexpected character {ch!r}", text=text, column=pos + 1)
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "number":
            if "." in raw or "e" in raw or "E" in raw:
                tokens.append(Token(kind, float(raw), pos + 1))
            else:
                tokens.append(Token(kind, int(raw), pos + 1))
        elif kind == "name":
            tokens.append(Token(kind, raw, pos + 1))
        elif kind == "string":
            tokens.append(Token(kind, _unescape(raw[1:-1], text, pos), pos + 1))
        elif kind == "bq":
            tokens.append(Token(kind, _check_key(raw[1:-1], text, pos), pos + 1))
        elif kind == "punct":
            tokens.append(Token(raw, raw, pos + 1))
        pos = m.end()
    tokens.append(Token("end", None, end + 1))
    return tokens


def _check_key(key: str, text: str, pos: int) -> str:
    if not key:
        raise ExpressionError("empty field name", text=text, column=pos + 1)
    return key


def _unescape(body: str, text: str, pos: int) -> str:
    if "\\" not in body:
        return body

    def one(m: re.Match[str]) -> str:
        try:
            return _ESCAPES[m.group(1)]
        except KeyError:
            raise ExpressionError(
                f"unknown escape \\{m.group(1)} (known: \\n \\t \\r \\\\ \\' \\\" \\0)",
                text=text,
                column=pos + 2 + m.start(),
            ) from None

    return _ESCAPE.sub(one, body)


# --------------------------------------------------------------------------------------------
# parser


class _Parser:
    """Recursive descent over the token list, with an explicit depth limit."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def error(self, reason: str, token: Token | None = None, hint: str = "") -> ExpressionError:
        tok = token or self.tokens[self.i]
        return ExpressionError(reason, text=self.text, column=tok.column, hint=hint)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self, kind: str) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != kind:
            raise self.error(f"expected {_describe(kind)}, found {_describe_token(tok)}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty expression")
        node = self.expr()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {_describe_token(self.peek())} after a complete expression")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        first = self.primary()
        if self.peek().kind != "&":
            self.depth -= 1
            return first
        parts = [first]
        while self.peek().kind == "&":
            self.i += 1
            parts.append(self.primary())
        self.depth -= 1
        return Concat(tuple(parts), first.column)

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind in ("string", "number"):
            self.i += 1
            return Literal(tok.value, tok.column)
        if tok.kind == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        if tok.kind == "name" and self.tokens[self.i + 1].kind == "(":
            return self.call()
        if tok.kind == "name" and tok.value.lower() in _KEYWORDS and self.tokens[self.i + 1].kind not in ".[":
            self.i += 1
            return Literal(_KEYWORDS[tok.value.lower()], tok.column)
        if tok.kind in ("name", "bq"):
            return self.path()
        raise self.error(f"expected a value, found {_describe_token(tok)}")

    def path(self) -> Path:
        first = self.tokens[self.i]
        self.i += 1
        steps: list[str | int] = [first.value]
        while True:
            tok = self.peek()
            if tok.kind == ".":
                self.i += 1
                nxt = self.peek()
                if nxt.kind not in ("name", "bq"):
                    raise self.error(f"expected a field name after '.', found {_describe_token(nxt)}")
                self.i += 1
                steps.append(nxt.value)
            elif tok.kind == "[":
                self.i += 1
                idx = self.peek()
                if idx.kind != "number" or not isinstance(idx.value, int):
                    raise self.error(f"expected a list index, found {_describe_token(idx)}")
                self.i += 1
                self.take("]")
                steps.append(idx.value)
            else:
                return Path(tuple(steps), first.column)

    def call(self) -> Call:
        name_tok = self.take("name")
        spec = lookup_function(name_tok.value)
        if spec is None:
            raise self.error(
                unknown_function_message(name_tok.value),
                name_tok,
                hint="known functions: " + ", ".join(function_names()),
            )
        self.take("(")
        args: list[Node] = []
        if self.peek().kind != ")":
            args.append(self.expr())
            while self.peek().kind == ",":
                self.i += 1
                args.append(self.expr())
        self.take(")")
        problem = spec.check_arity(len(args))
        if problem:
            raise self.error(f"{spec.name}() {problem}", name_tok)
        return Call(spec.name, tuple(args), name_tok.column)


_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _describe(kind: str) -> str:
    return {"end": "end of expression", "name": "a name", "number": "a number", "string": "a string"}.get(
        kind, repr(kind)
    )


def _describe_token(tok: Token) -> str:
    if tok.kind == "end":
        return "end of expression"
    if tok.kind in ("name", "bq"):
        return f"name {tok.value!r}"
    if tok.kind in ("string", "number"):
        return f"{tok.kind} {_show(tok.value, 30)}"
    return repr(tok.kind)


def parse_expression(text: str) -> Node:
    """Parse ``text`` to an AST; every problem (syntax, unknown function, arity) is an ExpressionError."""
    return _Parser(text).parse()


def parse_path(text: str) -> Path:
    """Parse a direct source field (``manager.id``, ``emails[0].value``, `` `Cost Center` ``)."""
    node = parse_expression(text)
    if not isinstance(node, Path):
        raise ExpressionError("not a field path", text=text, column=1)
    return node


# --------------------------------------------------------------------------------------------
# value helpers shared by the functions


def absent(value: Any) -> bool:
    """No usable value: None, an empty string or an empty list (what coalesce skips)."""
    return value is None or (isinstance(value, str | list | tuple) and len(value) == 0)


def text_of(value: Any, what: str = "text") -> str:
    """A scalar as text: bools are 'true'/'false', dates ISO 8601; lists/dicts are an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | date):  # datetime is a date
        return value.isoformat() if isinstance(value, date) else str(value)
    raise EvalError(f"expected {what}, got {type(value).__name__} {_show(value)}")


def int_of(value: Any, what: str) -> int:
    """An integer argument (a count, a position): ints, integral floats and digit strings."""
    if isinstance(value, bool):
        raise EvalError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise EvalError(f"{what} must be an integer, got {_show(value)}")


_INT_TEXT = re.compile(r"[+-]?[0-9]{1,30}")
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


def bool_of(value: Any) -> bool | None:
    """to_bool: True/False, 1/0, and the strings true/false/t/f/1/0/yes/no/y/n in any case."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        if not low:
            return None
    raise EvalError(f"cannot convert {_show(value)} to a boolean (expected true/false, 1/0, t/f, yes/no)")


def truth(value: Any) -> bool:
    """The truth of a condition (iif, not, and, or): null and '' are false, strings follow to_bool."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        try:
            return bool(bool_of(value))
        except EvalError:
            raise EvalError(
                f"condition {_show(value)} is not a boolean; use is_present(x) to test for a value"
            ) from None
    if isinstance(value, list | tuple | abc.Mapping):
        return len(value) > 0
    return True


def equal(a: Any, b: Any) -> bool:
    """eq() and switch() matching: exact for same types, otherwise by meaning ('1' == 1, 'True' == true)."""
    if a is None or b is None:
        return a is None and b is None
    if type(a) is type(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        other = b if isinstance(a, bool) else a
        flag = a if isinstance(a, bool) else b
        try:
            return bool_of(other) is flag
        except EvalError:
            return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    try:
        return text_of(a) == text_of(b)
    except EvalError:
        return False


# --------------------------------------------------------------------------------------------
# dates

_MS_DATE = re.compile(r"/Date\((-?[0-9]{1,16})(?:([+-])([0-9]{2})([0-9]{2}))?\)/")
_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(Z|[+-][0-9]{2}:?[0-9]{2})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _offset(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[-2:])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# Hire and start dates repeat across a directory (a few thousand distinct values for 100,000
# people): parsing each distinct text once saves a regex match and a datetime build per record.
@lru_cache(maxsize=8192)
def _parse_instant(value: str, fmt: str | None) -> tuple[datetime, bool]:
    """Parse to a datetime (aware when the text says so) and whether it was a bare day.

    Raises ValueError/OverflowError on text that is not a date; callers turn that into EvalError.
    """
    if fmt is not None:
        return datetime.strptime(value, fmt), False
    m = _MS_DATE.fullmatch(value)
    if m:
        # Microsoft JSON dates (SuccessFactors OData v2): ms since the epoch in UTC, the
        # optional +hhmm is the local offset of that instant.
        instant = _EPOCH + timedelta(milliseconds=int(m.group(1)))
        if m.group(2):
            sign = -1 if m.group(2) == "-" else 1
            tz = timezone(sign * timedelta(hours=int(m.group(3)), minutes=int(m.group(4))))
            return instant.astimezone(tz), False
        return instant, False
    m = _ISO_DAY.fullmatch(value)
    if m:
        # Workday writes dates with an offset: 1960-01-01-07:00 is the first of January.
        day = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=_offset(m.group(4)))
        return day, True
    return datetime.fromisoformat(value), False


def _date_text(value: Any, fn: str) -> str | None:
    if not isinstance(value, str):
        raise EvalError(f"{fn}() expects text, got {type(value).__name__} {_show(value)}")
    value = value.strip()
    return value or None


def parse_date(value: Any, fmt: Any = None) -> date | None:
    """ISO 8601 (with a Workday offset or a time), SuccessFactors /Date(ms)/, or strptime ``fmt``."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    text = _date_text(value, "parse_date")
    if text is None:
        return None
    fmt_text = None if fmt is None else text_of(fmt, "a format")
    try:
        return _parse_instant(text, fmt_text)[0].date()
    except (ValueError, OverflowError):
        how = f" with format {fmt_text!r}" if fmt_text else " (expected ISO 8601 or /Date(ms)/)"
        raise EvalError(f"cannot parse {_show(text)} as a date{how}") from None


def parse_datetime(value: Any, fmt: Any = None) -> datetime | None:
    """Like parse_date but keeps the time; the result is always aware and in UTC (naive = UTC)."""
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            instant = value
        elif isinstance(value, date):
            instant = datetime(value.year, value.month, value.day)
        else:
            text = _date_text(value, "parse_datetime")
            if text is None:
                return None
            instant = _parse_instant(text, None if fmt is None else text_of(fmt, "a format"))[0]
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)
    except (ValueError, OverflowError):
        how = f" with format {fmt!r}" if fmt is not None else " (expected ISO 8601 or /Date(ms)/)"
        raise EvalError(f"cannot parse {_show(value)} as a date and time{how}") from None


def format_date(value: Any, fmt: Any = None) -> str | None:
    """strftime ``fmt`` (ISO 8601 when omitted); text input is parsed as parse_date/parse_datetime do."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            instant, bare_day = _parse_instant(text, None)
        except (ValueError, OverflowError):
            raise EvalError(f"cannot parse {_show(value)} as a date") from None
        value = instant.date() if bare_day else parse_datetime(instant)
    if not isinstance(value, date):
        raise EvalError(f"format_date() expects a date, got {type(value).__name__} {_show(value)}")
    if fmt is None:
        return value.isoformat()
    try:
        return value.strftime(text_of(fmt, "a format"))
    except (ValueError, OverflowError) as exc:
        raise EvalError(f"cannot format {value.isoformat()} with {fmt!r}: {exc}") from None


# --------------------------------------------------------------------------------------------
# functions (eager ones take already-evaluated values)

_STROKES = str.maketrans(
    {
        "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ħ": "h",
        "Ħ": "H", "ı": "i", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th",
    }
)  # fmt: skip


def normalize_diacritics(s: str) -> str:
    """Drop accents (NFD, remove nonspacing marks, NFC) and spell out letters that do not decompose."""
    if s.isascii():
        return s
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", s.translate(_STROKES)) if unicodedata.category(c) != "Mn"
    )
    return unicodedata.normalize("NFC", stripped)


def _text_fn(op: Callable[[str], str]) -> Callable[[Any], Any]:
    def fn(value: Any) -> Any:
        return None if value is None else op(text_of(value))

    return fn


def _left(s: Any, n: Any) -> Any:
    if s is None:
        return None
    count = int_of(n, "left() length")
    return text_of(s)[: max(count, 0)]


def _right(s: Any, n: Any) -> Any:
    if s is None:
        return None
    count = int_of(n, "right() length")
    return text_of(s)[-count:] if count > 0 else ""


def _mid(s: Any, start: Any, length: Any) -> Any:
    if s is None:
        return None
    first = int_of(start, "mid() start")
    size = int_of(length, "mid() length")
    if first < 1:
        raise EvalError(f"mid() start is 1-based, got {first}")
    if size < 0:
        raise EvalError(f"mid() length must not be negative, got {size}")
    return text_of(s)[first - 1 : first - 1 + size]


def _replace(s: Any, old: Any, new: Any) -> Any:
    if s is None:
        return None
    text, old_t, new_t = text_of(s), text_of(old, "text to replace"), text_of(new, "replacement text")
    if not old_t:
        raise EvalError("replace() needs a non-empty text to replace")
    if len(new_t) > len(old_t) and len(text) + text.count(old_t) * (len(new_t) - len(old_t)) > MAX_TEXT:
        raise EvalError(f"replace() result would exceed {MAX_TEXT} characters")
    return text.replace(old_t, new_t)


def _split(s: Any, sep: Any = None) -> Any:
    if s is None:
        return None
    if sep is None:
        return text_of(s).split()
    sep_t = text_of(sep, "separator")
    if not sep_t:
        raise EvalError("split() needs a non-empty separator")
    return text_of(s).split(sep_t)


def _split_list(value: Any, sep: Any = ";") -> Any:
    """A list from a list (JSONL) or from ``sep``-separated text (CSV); items trimmed, blanks dropped."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        items = [text_of(v).strip() for v in value if v is not None]
    else:
        sep_t = text_of(sep, "separator")
        if not sep_t:
            raise EvalError("split_list() needs a non-empty separator")
        items = [part.strip() for part in text_of(value).split(sep_t)]
    return [item for item in items if item]


def _join(sep: Any, *parts: Any) -> Any:
    sep_t = "" if sep is None else text_of(sep, "separator")
    texts: list[str] = []
    for part in parts:
        for item in part if isinstance(part, list | tuple) else (part,):
            if not absent(item):
                texts.append(text_of(item))
    return sep_t.join(texts) if texts else None


def _concat(*parts: Any) -> Any:
    return _join("", *parts)


def _append(s: Any, suffix: Any) -> Any:
    return None if s is None else text_of(s) + ("" if suffix is None else text_of(suffix))


def _strip_prefix(s: Any, prefix: Any) -> Any:
    return None if s is None else text_of(s).removeprefix(text_of(prefix, "prefix"))


def _strip_suffix(s: Any, suffix: Any) -> Any:
    return None if s is None else text_of(s).removesuffix(text_of(suffix, "suffix"))


def _to_int(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int_of(value, "to_int() value")


def _to_string(value: Any) -> Any:
    return None if value is None else text_of(value)


def _not(value: Any) -> bool:
    return not truth(value)


# --------------------------------------------------------------------------------------------
# lazy functions: they decide which arguments to evaluate


def _lazy_coalesce(args: Sequence[Evaluator]) -> Evaluator:
    def coalesce(r: Record) -> Any:
        for arg in args:
            value = arg(r)
            if value is None:
                continue
            if type(value) is str:  # the common case, without absent()'s call
                if value:
                    return value
            elif not absent(value):
                return value
        return None

    return coalesce


def _lazy_iif(args: Sequence[Evaluator]) -> Evaluator:
    cond, then, other = args

    def iif(r: Record) -> Any:
        return then(r) if truth(cond(r)) else other(r)

    return iif


def _lazy_switch(args: Sequence[Evaluator]) -> Evaluator:
    subject, default = args[0], args[1]
    pairs = [(args[i], args[i + 1]) for i in range(2, len(args), 2)]

    def switch(r: Record) -> Any:
        value = subject(r)
        for key, result in pairs:
            if equal(value, key(r)):
                return result(r)
        return default(r)

    return switch


def _lazy_and(args: Sequence[Evaluator]) -> Evaluator:
    def and_(r: Record) -> bool:
        return all(truth(arg(r)) for arg in args)

    return and_


def _lazy_or(args: Sequence[Evaluator]) -> Evaluator:
    def or_(r: Record) -> bool:
        return any(truth(arg(r)) for arg in args)

    return or_


# --------------------------------------------------------------------------------------------
# the function table


@dataclass(frozen=True)
class Function:
    """One function of the language; ``impl`` for eager ones, ``lazy`` builds the closure itself."""

    name: str
    min_args: int
    max_args: int | None
    impl: Callable[..., Any] | None = None
    lazy: Callable[[Sequence[Evaluator]], Evaluator] | None = None
    aliases: tuple[str, ...] = ()
    pairs_after: int | None = field(default=None)  # switch: key/value pairs after this many args

    def check_arity(self, n: int) -> str | None:
        """None when ``n`` arguments are acceptable, else what is wrong, for the error message."""
        if self.max_args == self.min_args and n != self.min_args:
            return f"takes {self.min_args} argument{'s' if self.min_args != 1 else ''}, got {n}"
        if n < self.min_args:
            return f"takes at least {self.min_args} argument{'s' if self.min_args != 1 else ''}, got {n}"
        if self.max_args is not None and n > self.max_args:
            return f"takes at most {self.max_args} arguments, got {n}"
        if self.pairs_after is not None and (n - self.pairs_after) % 2:
            return "takes value, default, then key/result pairs; a result is missing"
        return None


_FUNCTION_LIST = (
    Function("coalesce", 1, None, lazy=_lazy_coalesce),
    Function("concat", 1, None, impl=_concat),
    Function("join", 1, None, impl=_join),
    Function("append", 2, 2, impl=_append),
    Function("split", 1, 2, impl=_split),
    Function("split_list", 1, 2, impl=_split_list),
    Function("lower", 1, 1, impl=_text_fn(str.lower), aliases=("tolower",)),
    Function("upper", 1, 1, impl=_text_fn(str.upper), aliases=("toupper",)),
    Function("trim", 1, 1, impl=_text_fn(str.strip)),
    Function("strip_spaces", 1, 1, impl=_text_fn(lambda s: s.replace(" ", ""))),
    Function("left", 2, 2, impl=_left),
    Function("mid", 3, 3, impl=_mid),
    Function("right", 2, 2, impl=_right),
    Function("replace", 3, 3, impl=_replace),
    Function("strip_prefix", 2, 2, impl=_strip_prefix),
    Function("strip_suffix", 2, 2, impl=_strip_suffix),
    Function("normalize_diacritics", 1, 1, impl=_text_fn(normalize_diacritics)),
    Function("parse_date", 1, 2, impl=parse_date),
    Function("parse_datetime", 1, 2, impl=parse_datetime, aliases=("cdate",)),
    Function("format_date", 1, 2, impl=format_date),
    Function("iif", 3, 3, lazy=_lazy_iif),
    Function("switch", 2, None, lazy=_lazy_switch, pairs_after=2),
    Function("not", 1, 1, impl=_not),
    Function("and", 1, None, lazy=_lazy_and),
    Function("or", 1, None, lazy=_lazy_or),
    Function("eq", 2, 2, impl=equal),
    Function("isnull", 1, 1, impl=lambda v: v is None),
    Function("is_present", 1, 1, impl=lambda v: not absent(v)),
    Function("is_null_or_empty", 1, 1, impl=absent),
    Function("to_bool", 1, 1, impl=bool_of, aliases=("cbool",)),
    Function("to_int", 1, 1, impl=_to_int),
    Function("to_string", 1, 1, impl=_to_string, aliases=("cstr",)),
)


def _key(name: str) -> str:
    return name.lower().replace("_", "")


FUNCTIONS: dict[str, Function] = {}
for _fn in _FUNCTION_LIST:
    for _alias in (_fn.name, *_fn.aliases):
        FUNCTIONS[_key(_alias)] = _fn

# Entra functions whose arguments differ from ours: say what to write instead.
_HINTS = {
    "formatdatetime": "use format_date(parse_datetime(x, in_fmt), out_fmt) with strftime formats",
    "now": "mappings are pure and read no clock",
    "isnullorwhitespace": "use is_present(trim(x))",
}


def lookup_function(name: str) -> Function | None:
    """The function called ``name``, case-insensitively and ignoring underscores."""
    return FUNCTIONS.get(_key(name))


def function_names() -> list[str]:
    """The canonical names of every function, sorted (for docs and error messages)."""
    return sorted(f.name for f in _FUNCTION_LIST)


def unknown_function_message(name: str) -> str:
    shown = name if len(name) <= 40 else name[:39] + "…"
    message = f"unknown function {shown!r}"
    hint = _HINTS.get(_key(name))
    close = difflib.get_close_matches(_key(name), list(FUNCTIONS), n=1)
    if hint:
        message += f" ({hint})"
    elif close:
        message += f" (did you mean {FUNCTIONS[close[0]].name}?)"
    return message


# --------------------------------------------------------------------------------------------
# compiler: AST -> closures


def compile_node(node: Node) -> Evaluator:
    """Turn an AST into one closure that evaluates it against a record (recursion depth ≤ MAX_DEPTH)."""
    if isinstance(node, Literal):
        value = node.value
        return lambda r: value
    if isinstance(node, Path):
        return path_getter(node.steps)
    if isinstance(node, Concat):
        parts = [compile_node(p) for p in node.parts]
        return lambda r: _concat(*[p(r) for p in parts])
    spec = lookup_function(node.name)
    assert spec is not None  # the parser only builds calls to known functions
    args = [compile_node(a) for a in node.args]
    first_path = next((a.text for a in node.args if isinstance(a, Path)), None)
    if spec.name == "switch" and all(isinstance(a, Literal) for a in node.args[2::2]):
        keys = [a.value for a in node.args[2::2] if isinstance(a, Literal)]
        spec = Function("switch", spec.min_args, spec.max_args, lazy=lambda ev: _literal_switch(ev, keys))
    return _guarded(spec, args, first_path)


def _literal_switch(args: Sequence[Evaluator], keys: Sequence[Any]) -> Evaluator:
    """switch() whose keys are all literals (the usual case): a text value finds its result by a
    dict look-up; ``equal`` is exact between two ``str``, so the first equal key is the one found."""
    subject, default = args[0], args[1]
    results = args[3::2]
    pairs = list(zip(keys, results, strict=True))
    table: dict[str, Evaluator] = {}
    if all(type(k) is str for k in keys):
        for k, result in pairs:
            table.setdefault(k, result)

    def switch(r: Record) -> Any:
        value = subject(r)
        if type(value) is str and table:
            return table.get(value, default)(r)
        for k, result in pairs:
            if equal(value, k):
                return result(r)
        return default(r)

    return switch


def _guarded(spec: Function, args: Sequence[Evaluator], source: str | None) -> Evaluator:
    """The call closure: eager args evaluated first, then the function; failures become EvalError.

    One closure per call: arguments are evaluated inside the same ``try`` as the function (so a
    failing nested call keeps the name it set), without an extra frame in between.
    """
    name = spec.name

    def failed(exc: Exception) -> EvalError:
        if isinstance(exc, EvalError):
            if exc.function is None:
                exc.function = name
            if exc.source is None:
                exc.source = source
            return exc
        return EvalError(f"{name}(): {exc}", function=name, source=source)

    if spec.lazy is not None:
        inner = spec.lazy(args)

        def call(r: Record) -> Any:
            try:
                return inner(r)
            except (EvalError, ValueError, TypeError, ArithmeticError) as exc:
                error = failed(exc)
                if error is exc:
                    raise
                raise error from exc

        return call
    impl = spec.impl
    assert impl is not None
    if len(args) == 1:
        (a,) = args

        def call1(r: Record) -> Any:
            try:
                return impl(a(r))
            except (EvalError, ValueError, TypeError, ArithmeticError) as exc:
                error = failed(exc)
                if error is exc:
                    raise
                raise error from exc

        return call1
    if len(args) == 2:
        a, b = args

        def call2(r: Record) -> Any:
            try:
                return impl(a(r), b(r))
            except (EvalError, ValueError, TypeError, ArithmeticError) as exc:
                error = failed(exc)
                if error is exc:
                    raise
                raise error from exc

        return call2

    def calln(r: Record) -> Any:
        try:
            return impl(*[f(r) for f in args])
        except (EvalError, ValueError, TypeError, ArithmeticError) as exc:
            error = failed(exc)
            if error is exc:
                raise
            raise error from exc

    return calln


def path_getter(steps: tuple[str | int, ...]) -> Evaluator:
    """Read a field: a missing key, a non-dict, or an index out of range is None, never an error."""
    key = steps[0]
    if len(steps) == 1 and isinstance(key, str):
        return methodcaller("get", key)  # r.get(key), without a Python frame
    if len(steps) == 2 and isinstance(key, str) and isinstance(steps[1], str):
        inner = steps[1]

        def get2(r: Record) -> Any:  # `a.b`, the common dotted path, without the generic loop
            if not (type(r) is dict or isinstance(r, abc.Mapping)):
                return None
            cur = r.get(key)
            if cur is None or not (type(cur) is dict or isinstance(cur, abc.Mapping)):
                return None
            return cur.get(inner)

        return get2

    def get(r: Record) -> Any:
        cur: Any = r
        for step in steps:
            if isinstance(step, str):
                if not (type(cur) is dict or isinstance(cur, abc.Mapping)):
                    return None
                cur = cur.get(step)
            else:
                if not isinstance(cur, list | tuple) or not -len(cur) <= step < len(cur):
                    return None
                cur = cur[step]
            if cur is None:
                return None
        return cur

    return get


@dataclass(frozen=True)
class Expression:
    """A parsed and compiled expression: call it with a record to evaluate it."""

    text: str
    node: Node
    evaluate: Evaluator = field(repr=False, compare=False)

    def __call__(self, record: Record) -> Any:
        return self.evaluate(record)

    def source_paths(self) -> list[Path]:
        return paths(self.node)


def compile_expression(text: str) -> Expression:
    """Parse and compile ``text``; raises ExpressionError (a MappingError) when it is invalid."""
    node = parse_expression(text)
    return Expression(text, node, _memoized(node, compile_node(node)))


MEMO_LIMIT = 16_384  # results remembered per expression (distinct types, statuses, hire dates)
_MEMO_RESULTS = frozenset({str, int, float, bool, type(None), date, datetime})  # immutable: shareable
_MISS = object()


def _memoized(node: Node, evaluate: Evaluator) -> Evaluator:
    """Remember the results of an expression that reads one field, by that field's value.

    Every function is pure, so such an expression's result depends only on that value: the
    usual ``switch(lower(employeeType), ...)``, ``iif(accountEnabled, ...)`` or
    ``parse_date(hireDate)`` then costs one look-up for the few hundred distinct values of
    100,000 records. Only text and boolean inputs and immutable results are remembered, failures
    never are (they raise again, identically), and an expression whose inputs do not repeat
    (``lower(mail)``) stops remembering once ``MEMO_LIMIT`` values gave fewer hits than that.
    """
    if isinstance(node, Literal | Path):
        return evaluate
    steps = {p.steps for p in paths(node)}
    if len(steps) != 1:
        return evaluate
    read = path_getter(steps.pop())
    by_text: dict[str, Any] = {}
    by_flag: dict[bool, Any] = {}
    hits = 0
    remembering = True  # False once MEMO_LIMIT results are kept
    useful = True  # False when those inputs did not repeat: evaluate directly from then on

    def memo(r: Record) -> Any:
        nonlocal hits, remembering, useful
        if not useful:
            return evaluate(r)
        value = read(r)
        kind = type(value)
        if kind is str:
            cache: dict[Any, Any] = by_text
        elif kind is bool:
            cache = by_flag
        else:
            return evaluate(r)
        result = cache.get(value, _MISS)
        if result is not _MISS:
            hits += 1
            return result
        result = evaluate(r)
        if remembering and type(result) in _MEMO_RESULTS:
            cache[value] = result
            if len(by_text) >= MEMO_LIMIT:
                remembering = False
                if hits < MEMO_LIMIT:
                    useful = False
                    by_text.clear()
                    by_flag.clear()
        return result

    return memo
