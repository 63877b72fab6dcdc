"""``$filter`` for the SuccessFactors emulator: SF's OData v2 dialect, parsed and evaluated.

Supports ``eq ne gt ge lt le``, ``and or not``, parentheses, SF's ``in`` list
(``status in 't','f'``, also parenthesised), navigation paths (``manager/userId``), typed
literals (``datetime'…'``, ``datetimeoffset'…'``, ``12L``) and the common string functions.
Unknown names fail the whole request with ``COE_PROPERTY_NOT_FOUND`` listing every bad name,
as SF does, instead of silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from okrsync.sandbox.successfactors.odata import (
    EntityType,
    Record,
    Schema,
    Tok,
    as_utc,
    bad_request,
    property_not_found,
    tokenize,
)

# AST nodes are tuples: ("lit", v) | ("path", (seg, ...)) | ("cmp", op, a, b) | ("and"/"or", a, b)
# | ("not", a) | ("in", a, (v, ...)) | ("call", name, (args...))
Node = tuple[Any, ...]
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCS = {"substringof", "startswith", "endswith", "tolower", "toupper", "length", "trim"}


class FilterParser:
    """Recursive descent over SF's ``$filter`` dialect, validating names against the schema."""

    def __init__(self, text: str, etype: EntityType, schema: Schema) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.etype = etype
        self.schema = schema
        self.paths: list[tuple[str, ...]] = []
        self.unknown: list[str] = []

    def parse(self) -> Node:
        if not self.toks:
            raise bad_request("[COE0010]Empty $filter.")
        node = self._or()
        if self.i != len(self.toks):
            raise bad_request(f"[COE0010]Unexpected {self.toks[self.i].text!r} in $filter.")
        if self.unknown:
            raise property_not_found(self.etype.name, self.unknown)
        return node

    def _peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _word(self, *words: str) -> str | None:
        t = self._peek()
        if t is not None and t.kind == "name" and t.value.lower() in words:
            self.i += 1
            return str(t.value).lower()
        return None

    def _expect(self, text: str) -> None:
        t = self._peek()
        if t is None or t.text != text:
            raise bad_request(f"[COE0010]Expected {text!r} in $filter.")
        self.i += 1

    def _or(self) -> Node:
        node = self._and()
        while self._word("or"):
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._word("and"):
            node = ("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._word("not"):
            return ("not", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._primary()
        op = self._word(*_COMPARE)
        if op:
            return ("cmp", op, left, self._primary())
        if self._word("in"):
            values: list[Any] = []
            paren = self._peek() is not None and self._peek().text == "("  # type: ignore[union-attr]
            if paren:
                self.i += 1
            while True:
                t = self._peek()
                if t is None or t.kind != "lit":
                    raise bad_request("[COE0010]'in' needs a list of literals.")
                values.append(t.value)
                self.i += 1
                t = self._peek()
                if t is not None and t.text == ",":
                    self.i += 1
                    continue
                break
            if paren:
                self._expect(")")
            return ("in", left, tuple(values))
        return left

    def _primary(self) -> Node:
        t = self._peek()
        if t is None:
            raise bad_request("[COE0010]Unexpected end of $filter.")
        self.i += 1
        if t.text == "(":
            node = self._or()
            self._expect(")")
            return node
        if t.kind == "lit":
            return ("lit", t.value)
        if t.kind == "name":
            nxt = self._peek()
            if t.value in _FUNCS and nxt is not None and nxt.text == "(":
                self.i += 1
                args = [self._or()]
                while self._peek() is not None and self._peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    args.append(self._or())
                self._expect(")")
                return ("call", t.value, tuple(args))
            segs = [str(t.value)]
            while self._peek() is not None and self._peek().text == "/":  # type: ignore[union-attr]
                self.i += 1
                seg = self._peek()
                if seg is None or seg.kind != "name":
                    raise bad_request("[COE0010]Invalid property path in $filter.")
                segs.append(str(seg.value))
                self.i += 1
            self._check_path(segs)
            self.paths.append(tuple(segs))
            return ("path", tuple(segs))
        raise bad_request(f"[COE0010]Unexpected {t.text!r} in $filter.")

    def _check_path(self, segs: list[str]) -> None:
        etype = self.etype
        for k, seg in enumerate(segs):
            last = k == len(segs) - 1
            nav = etype.nav(seg)
            if not last and nav is not None and nav.target in self.schema:
                etype = self.schema[nav.target]
                continue
            if last and etype.prop(seg) is not None:
                return
            self.unknown.append("/".join(segs))
            return


Resolver = Callable[[Record, tuple[str, ...]], Any]


def evaluate(node: Node, record: Record, resolve: Resolver) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        return resolve(record, node[1])
    if kind == "and":
        return bool(evaluate(node[1], record, resolve)) and bool(evaluate(node[2], record, resolve))
    if kind == "or":
        return bool(evaluate(node[1], record, resolve)) or bool(evaluate(node[2], record, resolve))
    if kind == "not":
        return not evaluate(node[1], record, resolve)
    if kind == "in":
        left = evaluate(node[1], record, resolve)
        return any(_compare("eq", left, v) for v in node[2])
    if kind == "cmp":
        return _compare(node[1], evaluate(node[2], record, resolve), evaluate(node[3], record, resolve))
    if kind == "call":
        args = [evaluate(a, record, resolve) for a in node[2]]
        return _call(node[1], args)
    raise AssertionError(kind)


def _compare(op: str, a: Any, b: Any) -> bool:
    a, b = as_utc(a), as_utc(b)
    if isinstance(a, str) and isinstance(b, int | float) and not isinstance(b, bool):
        b = str(b)
    if isinstance(b, str) and isinstance(a, int | float) and not isinstance(a, bool):
        try:
            b = type(a)(b)
        except ValueError:
            return op == "ne"
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        raise bad_request(f"[COE0010]Cannot compare {a} with {b}: the types differ.") from None


def _call(name: str, args: list[Any]) -> Any:
    s = [("" if a is None else str(a)) for a in args]
    if name == "substringof" and len(s) == 2:
        return s[0].lower() in s[1].lower()
    if name == "startswith" and len(s) == 2:
        return s[0].startswith(s[1])
    if name == "endswith" and len(s) == 2:
        return s[0].endswith(s[1])
    if name == "tolower" and len(s) == 1:
        return s[0].lower()
    if name == "toupper" and len(s) == 1:
        return s[0].upper()
    if name == "trim" and len(s) == 1:
        return s[0].strip()
    if name == "length" and len(s) == 1:
        return len(s[0])
    raise bad_request(f"[COE0010]Wrong arguments for {name}().")


def references(node: Node, name: str) -> bool:
    """Whether a filter mentions a top-level property (SF's implicit ``status eq 't'`` test)."""
    if node[0] == "path":
        return bool(node[1] == (name,))
    return any(isinstance(child, tuple) and references(child, name) for child in node[1:])
