"""A small, safe SOQL parser: the subset okrsync (and simple-salesforce users) send.

Supported: ``SELECT`` fields (relationship paths such as ``Manager.Email``), ``COUNT()``,
``COUNT/COUNT_DISTINCT/SUM/AVG/MIN/MAX(field) [alias]``; ``FROM`` one sObject; ``WHERE`` with
``= != <> < > <= >= IN, NOT IN, LIKE``, ``AND``/``OR``/``NOT`` and parentheses (mixing AND and
OR without parentheses is refused, as Salesforce does); string/number/boolean/null/date/
dateTime literals and relative date literals; ``GROUP BY``; ``ORDER BY … ASC|DESC NULLS
FIRST|LAST``; ``LIMIT``; ``OFFSET``. Anything else (semi-joins, HAVING, TYPEOF, subqueries)
is a ``MALFORMED_QUERY`` instead of a silent misreading.

The query text is tokenised with one regular expression and parsed by recursive descent into
plain dataclasses that :mod:`.query` evaluates; nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from okrsync.sandbox.salesforce import dates

MAX_SOQL_LENGTH = 100_000

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[(),:])
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
# fmt: off
_KEYWORDS = frozenset((
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "GROUP", "BY", "ORDER", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "HAVING", "INCLUDES", "EXCLUDES", "TRUE", "FALSE", "NULL",
    "WITH", "FOR", "USING", "TYPEOF", "ROLLUP", "CUBE",
))
# fmt: on
_AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is its errorCode (MALFORMED_QUERY, INVALID_FIELD …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | range
    value: Any
    raw: str = ""


@dataclass(frozen=True)
class FieldRef:
    name: str  # dotted, as written


@dataclass(frozen=True)
class Aggregate:
    func: str
    arg: FieldRef | None  # None only for COUNT()


@dataclass(frozen=True)
class SelectItem:
    expr: FieldRef | Aggregate
    alias: str | None = None


@dataclass(frozen=True)
class Compare:
    ref: FieldRef
    op: str  # = != < > <= >= IN NOTIN LIKE
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Compare | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    expr: FieldRef | Aggregate
    desc: bool = False
    nulls_first: bool | None = None


@dataclass
class Query:
    select: list[SelectItem]
    sobject: str
    where: Condition | None = None
    group_by: list[FieldRef] = field(default_factory=list)
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


# ---------------------------------------------------------------- parsing
def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos : pos + 20].split()[0]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def unescape(raw: str, *, like: bool) -> str:
    """SOQL string escapes; in a LIKE pattern ``\\%``/``\\_`` stay escaped for the matcher."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]
            if nxt in _ESCAPES:
                out.append(("\\" + nxt) if like and nxt == "\\" else _ESCAPES[nxt])
            elif nxt in "%_":
                out.append(("\\" + nxt) if like else nxt)
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{raw}'. Illegal character sequence "
                    f"'\\{nxt}' in string literal.",
                )
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers --
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _kw(self, *words: str) -> bool:
        t = self.tok
        return t.kind == "ident" and t.text.upper() in words

    def _take_kw(self, *words: str) -> bool:
        if self._kw(*words):
            self.i += 1
            return True
        return False

    def _expect_kw(self, word: str) -> None:
        if not self._take_kw(word):
            self._unexpected()

    def _punct(self, p: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == p:
            self.i += 1
            return True
        return False

    def _expect(self, p: str) -> None:
        if not self._punct(p):
            self._unexpected()

    def _unexpected(self) -> None:
        t = self.tok
        raise SoqlError(
            "MALFORMED_QUERY",
            "unexpected end of query" if t.kind == "eof" else f"unexpected token: '{t.text}'",
        )

    def _ident(self) -> str:
        t = self.tok
        if t.kind != "ident" or t.text.upper() in _KEYWORDS:
            self._unexpected()
        self.i += 1
        return t.text

    # -- grammar --
    def parse(self) -> Query:
        self._expect_kw("SELECT")
        select = [self._select_item()]
        while self._punct(","):
            select.append(self._select_item())
        self._expect_kw("FROM")
        q = Query(select, self._ident())
        if self._take_kw("WHERE"):
            q.where = self._condition()
        if self._take_kw("GROUP"):
            self._expect_kw("BY")
            if self._kw("ROLLUP", "CUBE"):
                raise SoqlError("MALFORMED_QUERY", "GROUP BY ROLLUP/CUBE is not supported by the sandbox")
            q.group_by = [FieldRef(self._ident())]
            while self._punct(","):
                q.group_by.append(FieldRef(self._ident()))
        if self._kw("HAVING"):
            raise SoqlError("MALFORMED_QUERY", "HAVING is not supported by the sandbox")
        if self._take_kw("ORDER"):
            self._expect_kw("BY")
            q.order_by = [self._order_item()]
            while self._punct(","):
                q.order_by.append(self._order_item())
        if self._take_kw("LIMIT"):
            q.limit = self._integer("LIMIT")
        if self._take_kw("OFFSET"):
            q.offset = self._integer("OFFSET")
        if self.tok.kind != "eof":
            self._unexpected()
        return q

    def _integer(self, what: str) -> int:
        t = self.tok
        if t.kind != "number" or not t.text.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"{what} must be a non-negative integer, not '{t.text}'")
        self.i += 1
        return int(t.text)

    def _expr(self) -> FieldRef | Aggregate:
        t = self.tok
        if t.kind == "punct" and t.text == "(":
            raise SoqlError("MALFORMED_QUERY", "relationship subqueries are not supported by the sandbox")
        name = self._ident()
        if not self._punct("("):
            return FieldRef(name)
        func = name.upper()
        if func not in _AGGREGATES:
            raise SoqlError("MALFORMED_QUERY", f"function {name}() is not supported by the sandbox")
        if self._punct(")"):
            if func != "COUNT":
                raise SoqlError("MALFORMED_QUERY", f"{func}() needs a field")
            return Aggregate(func, None)
        arg = FieldRef(self._ident())
        self._expect(")")
        return Aggregate(func, arg)

    def _select_item(self) -> SelectItem:
        expr = self._expr()
        alias = None
        if self.tok.kind == "ident" and self.tok.text.upper() not in _KEYWORDS and "." not in self.tok.text:
            alias = self.tok.text
            self.i += 1
        return SelectItem(expr, alias)

    def _order_item(self) -> OrderItem:
        expr = self._expr()
        desc = False
        if self._take_kw("DESC"):
            desc = True
        else:
            self._take_kw("ASC")
        nulls_first = None
        if self._take_kw("NULLS"):
            if self._take_kw("FIRST"):
                nulls_first = True
            else:
                self._expect_kw("LAST")
                nulls_first = False
        return OrderItem(expr, desc, nulls_first)

    def _condition(self) -> Condition:
        first = self._unary()
        if not self._kw("AND", "OR"):
            return first
        op = self.tok.text.upper()
        parts = [first]
        while self._kw("AND", "OR"):
            if self.tok.text.upper() != op:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"unexpected token: '{self.tok.text}' (use parentheses when mixing AND and OR)",
                )
            self.i += 1
            parts.append(self._unary())
        return BoolOp(op, tuple(parts))

    def _unary(self) -> Condition:
        if self._take_kw("NOT"):
            return Not(self._unary())
        if self._punct("("):
            inner = self._condition()
            self._expect(")")
            return inner
        ref = FieldRef(self._ident())
        t = self.tok
        if t.kind == "op":
            self.i += 1
            op = "!=" if t.text == "<>" else t.text
            return Compare(ref, op, self._literal())
        if self._take_kw("LIKE"):
            lit = self._literal()
            if lit.kind != "string":
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "LIKE needs a quoted string pattern")
            return Compare(ref, "LIKE", lit)
        negated = self._take_kw("NOT")
        if self._take_kw("IN"):
            self._expect("(")
            if self._kw("SELECT"):
                raise SoqlError("MALFORMED_QUERY", "semi-join subqueries are not supported by the sandbox")
            values = [self._literal()]
            while self._punct(","):
                values.append(self._literal())
            self._expect(")")
            return Compare(ref, "NOTIN" if negated else "IN", tuple(values))
        if self._kw("INCLUDES", "EXCLUDES"):
            raise SoqlError("MALFORMED_QUERY", "INCLUDES/EXCLUDES are not supported by the sandbox")
        self._unexpected()
        raise AssertionError("unreachable")

    def _literal(self) -> Literal:
        t = self.tok
        self.i += 1
        try:
            if t.kind == "string":
                return Literal("string", unescape(t.text[1:-1], like=False), t.text[1:-1])
            if t.kind == "number":
                return Literal("number", float(t.text), t.text)
            if t.kind == "date":
                return Literal("date", date.fromisoformat(t.text), t.text)
            if t.kind == "datetime":
                text = t.text.replace("Z", "+00:00")
                head, dot, rest = text.partition(".")
                if dot:  # keep microseconds at most; Python wants 3 or 6 digits
                    frac, tz = rest[: len(rest) - 6], rest[-6:]
                    text = f"{head}.{(frac + '000000')[:6]}{tz}"
                return Literal("datetime", datetime.fromisoformat(text).astimezone(UTC), t.text)
        except ValueError:
            raise SoqlError("MALFORMED_QUERY", f"value '{t.text}' is not a valid date or dateTime") from None
        if t.kind == "ident":
            word = t.text.upper()
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", t.text)
            if word == "NULL":
                return Literal("null", None, t.text)
            if word in dates.LITERALS:
                n = None
                if dates.LITERALS[word]:
                    if not self._punct(":"):
                        raise SoqlError("MALFORMED_QUERY", f"date literal {word} needs :n, e.g. {word}:30")
                    n = self._integer(word)
                return Literal("range", (word, n), t.text)
        self.i -= 1
        self._unexpected()
        raise AssertionError("unreachable")


def parse(text: str) -> Query:
    if len(text) > MAX_SOQL_LENGTH:
        raise SoqlError(
            "MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_SOQL_LENGTH:,} characters."
        )
    return _Parser(text).parse()
