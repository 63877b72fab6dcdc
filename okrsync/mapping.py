"""Declarative field mappings: TOML files that turn a source's raw records into canonical fields.

Every connector ships a default mapping (package data in ``okrsync/mappings/``) and a connection
may name its own file instead, or one that ``extends`` a default and overrides a few fields.
A mapping is parsed and every expression compiled once, at load time, so a broken mapping fails
before any network call, with the file's line and the expression's column; ``Mapping.apply`` then
runs per record (100,000 per sync) doing only dict look-ups and precompiled closures.

This module is pure: the only I/O is reading the mapping file (or package data) in
``load_mapping``. The expression language itself lives in :mod:`okrsync.mapping_expr`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from operator import methodcaller
from pathlib import Path
from typing import Any, Literal

from okrsync.errors import MappingError
from okrsync.mapping_expr import (
    EvalError,
    Evaluator,
    Expression,
    ExpressionError,
    compile_expression,
    parse_path,
    path_getter,
)

__all__ = [
    "FieldRule",
    "Mapping",
    "MappingFileError",
    "MappingIssue",
    "RecordMappingError",
    "builtin_mappings",
    "load_mapping",
    "parse_mapping",
]

NullPolicy = Literal["skip", "clear"]
# apply() walks a plan of steps (kind, target, read, rule):
# - _PLAIN: a run of consecutive [fields] rules that each copy one top-level key, with
#   null = "skip" and no default: ``target`` and ``read`` are the tuples of targets and keys,
#   read with one C-level ``map(record.get, keys)``;
# - _SIMPLE: one other [fields] rule with null = "skip" and no default (a None result is left out);
# - _GENERAL: any other rule (a default, null = "clear", an attribute).
# ``read`` is the rule's evaluator (``record.get(key)`` as a C-level methodcaller for a plain key).
_PLAIN, _SIMPLE, _GENERAL = 0, 1, 2
_Step = tuple[int, Any, Any, "FieldRule | None"]


# --------------------------------------------------------------------------------------------
# errors


@dataclass(frozen=True)
class MappingIssue:
    """One problem found while loading a mapping; ``column`` points into the rule's expression."""

    message: str
    line: int | None = None
    field: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "mapping"
        if self.field:
            where += f" ({self.field})"
        return f"{where}: {self.message}"


class MappingFileError(MappingError):
    """A mapping file is invalid; ``issues`` lists every problem, each with its line."""

    def __init__(self, mapping: str, issues: Iterable[MappingIssue], *, source: str | None = None) -> None:
        self.mapping = mapping
        self.source = source
        self.issues = tuple(issues)
        where = f"mapping {mapping!r}" + (f" ({source})" if source and source != mapping else "")
        count = len(self.issues)
        super().__init__(
            f"invalid {where}: {count} problem{'s' if count != 1 else ''}",
            problems=[str(issue) for issue in self.issues],
        )

    @property
    def line(self) -> int | None:
        """The line of the first problem (what an editor should jump to)."""
        return self.issues[0].line if self.issues else None

    @property
    def column(self) -> int | None:
        return self.issues[0].column if self.issues else None


class RecordMappingError(MappingError):
    """A rule failed on one record: names the mapping, its line, the field and why.

    The mapping does not know which record it was given; the engine sets ``record_key``
    (``RawRecord.key``) before reporting, and ``str()`` then names the record too.
    """

    def __init__(
        self,
        *,
        mapping: str,
        line: int,
        field: str,
        reason: str,
        rule: str = "",
        source_field: str | None = None,
        record_key: str | None = None,
    ) -> None:
        self.mapping = mapping
        self.line = line
        self.field = field
        self.reason = reason
        self.rule = rule
        self.source_field = source_field
        self.record_key = record_key
        shown = f" = {rule}" if rule else ""
        # ``message`` (what quarantine reports store) is complete without the record key
        super().__init__(f"mapping {mapping!r} line {line} ({field}{shown}): {reason}")

    def __str__(self) -> str:
        head = f"record {self.record_key!r}: " if self.record_key is not None else ""
        return head + self.message


# --------------------------------------------------------------------------------------------
# rules and mappings


@dataclass(frozen=True)
class FieldRule:
    """How one target field is produced: exactly one of ``source``, ``const`` or ``expr``.

    ``null`` says what a None result means: ``skip`` leaves the key out (the target keeps its
    value or the model default), ``clear`` sets it to None (the target field is emptied).
    ``default`` replaces a None result before that policy applies.
    """

    target: str
    line: int
    null: NullPolicy = "skip"
    source: str | None = None
    const: Any = None
    expr: str | None = None
    default: Any = None
    attribute: bool = False  # declared under [attributes]: lands in result["attributes"]
    origin: str = ""  # the mapping that declared the rule (differs from Mapping.name under extends)
    reads: tuple[str, ...] = ()  # source field paths, dotted, list indexes dropped
    key: str | None = field(default=None, repr=False, compare=False)  # plain top-level key: dict look-up
    evaluate: Evaluator | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> Literal["source", "const", "expr"]:
        if self.expr is not None:
            return "expr"
        return "source" if self.source is not None else "const"

    @property
    def label(self) -> str:
        """The target as error messages name it (``attributes.x`` for attributes)."""
        return f"attributes.{self.target}" if self.attribute else self.target

    @property
    def text(self) -> str:
        """The rule's right-hand side as written, for error messages."""
        if self.expr is not None:
            return self.expr
        return self.source if self.source is not None else repr(self.const)


@dataclass(frozen=True)
class Mapping:
    """A compiled mapping: ``apply`` it to raw records."""

    name: str
    fields: tuple[FieldRule, ...]
    attributes: tuple[FieldRule, ...] = ()
    description: str = ""
    blank_is_null: bool = False  # an empty or all-blank string result counts as None
    source: str | None = None  # file path or package resource it was loaded from
    _rules: tuple[FieldRule, ...] = field(init=False, repr=False, compare=False)
    _plan: tuple[_Step, ...] = field(init=False, repr=False, compare=False)
    _roots: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = self.fields + self.attributes
        missing = [r.label for r in rules if r.key is None and r.evaluate is None]
        if missing:
            raise ValueError(f"rules without an evaluator (build rules with parse_mapping): {missing}")
        object.__setattr__(self, "_rules", rules)
        plan: list[_Step] = []
        for r in rules:
            simple = r.default is None and r.null == "skip" and not r.attribute
            if simple and r.key is not None:
                if plan and plan[-1][0] == _PLAIN:
                    _, targets, keys, _ = plan.pop()
                    plan.append((_PLAIN, (*targets, r.target), (*keys, r.key), None))
                else:
                    plan.append((_PLAIN, (r.target,), (r.key,), None))
                continue
            read = methodcaller("get", r.key) if r.key is not None else r.evaluate
            plan.append((_SIMPLE if simple else _GENERAL, r.target, read, r))
        object.__setattr__(self, "_plan", tuple(plan))
        object.__setattr__(self, "_roots", frozenset(p.split(".", 1)[0] for r in rules for p in r.reads))

    def apply(self, record: abc.Mapping[str, Any], *, keep_unmapped: bool = False) -> dict[str, Any]:
        """Map one raw record to target fields.

        A None result (after ``default``) is left out under ``null = "skip"`` and set to None under
        ``null = "clear"``. ``[attributes]`` rules fill ``result["attributes"]``; with
        ``keep_unmapped`` every record key no rule reads is copied there too (a record's own
        ``attributes`` dict is merged, so a pulled JSONL file reads back unchanged), without
        overriding a declared attribute. Raises RecordMappingError when an expression fails.
        """
        out: dict[str, Any] = {}
        attrs: dict[str, Any] | None = {} if (self.attributes or keep_unmapped) else None
        blank_is_null = self.blank_is_null
        rule: FieldRule | None = None
        # plain tuples, unpacked once per step, and one ``try`` around the loop (free in 3.11):
        # the cheapest way through 100,000 records. Only an expression raises EvalError.
        try:
            for kind, target, read, rule in self._plan:
                if kind == _PLAIN:
                    for name, value in zip(target, map(record.get, read), strict=True):
                        if value is None or (
                            blank_is_null and isinstance(value, str) and (not value or value.isspace())
                        ):
                            continue
                        out[name] = value
                    continue
                value = read(record)
                if kind == _SIMPLE:
                    if value is None or (
                        blank_is_null and isinstance(value, str) and (not value or value.isspace())
                    ):
                        continue
                    out[target] = value
                    continue
                assert rule is not None
                if blank_is_null and isinstance(value, str) and (not value or value.isspace()):
                    value = None
                if value is None:
                    value = rule.default
                    if value is None and rule.null != "clear":
                        continue
                if rule.attribute:
                    attrs[target] = value  # type: ignore[index]  # not None when attributes exist
                else:
                    out[target] = value
        except EvalError as exc:
            assert rule is not None
            raise self._record_error(rule, exc) from exc
        if keep_unmapped:
            assert attrs is not None
            self._keep_unmapped(record, attrs)
        if attrs is not None:
            out["attributes"] = attrs
        return out

    def _keep_unmapped(self, record: abc.Mapping[str, Any], attrs: dict[str, Any]) -> None:
        roots = self._roots
        for key, value in record.items():
            if key in roots:
                continue
            if key == "attributes" and isinstance(value, abc.Mapping):
                for k, v in value.items():
                    attrs.setdefault(k, v)
                continue
            if value is None or (self.blank_is_null and isinstance(value, str) and not value.strip()):
                continue
            attrs.setdefault(key, value)

    def _record_error(self, rule: FieldRule, exc: EvalError) -> RecordMappingError:
        return RecordMappingError(
            mapping=rule.origin or self.name,
            line=rule.line,
            field=rule.label,
            reason=exc.reason,
            rule=rule.text,
            source_field=exc.source,
        )

    def source_fields(self) -> set[str]:
        """Every source field the mapping reads, as dotted paths (``manager.id``; list indexes dropped).

        Connectors build ``$select``/``Response_Group`` from it; the first segment of each path
        is the top-level key.
        """
        return {path for rule in self._rules for path in rule.reads}

    def targets(self) -> list[str]:
        """The top-level fields the mapping can produce, in file order."""
        return [rule.target for rule in self.fields]

    def validate_targets(self, allowed: Iterable[str]) -> None:
        """Raise MappingFileError naming each ``[fields]`` rule whose target is not in ``allowed``.

        The engine calls it with the model's field names (``Person.model_fields``), so a typo
        like ``emial`` fails at load time instead of being dropped by the model.
        """
        names = set(allowed)
        issues = [
            MappingIssue(
                f"unknown target field {r.target!r}; known: {', '.join(sorted(names))}", r.line, r.target
            )
            for r in self.fields
            if r.target not in names
        ]
        if issues:
            raise MappingFileError(self.name, issues, source=self.source)


# --------------------------------------------------------------------------------------------
# loading


_TOP_TABLES = ("mapping", "fields", "attributes")
_MAPPING_KEYS = ("name", "description", "blank_is_null", "extends")
_RULE_KEYS = ("source", "expr", "const", "null", "default", "drop")
_TOML_ERROR_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def builtin_mappings() -> list[str]:
    """Names of the mappings shipped in ``okrsync/mappings/`` (usable wherever a path is)."""
    folder = resources.files("okrsync").joinpath("mappings")
    if not folder.is_dir():
        return []
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_mapping(name_or_path: str | os.PathLike[str]) -> Mapping:
    """A built-in mapping by name (``"files"``) or a mapping file by path."""
    return _load(name_or_path, base_dir=None, seen=())


def parse_mapping(
    text: str, *, name: str, source: str | None = None, base_dir: str | os.PathLike[str] | None = None
) -> Mapping:
    """Build a Mapping from TOML text, compiling every rule; all problems raise one MappingFileError.

    ``name`` labels messages until the file's ``[mapping] name`` is read; ``base_dir`` resolves a
    relative ``extends`` path (default: the current directory).
    """
    return _parse(text, name=name, source=source, base_dir=Path(base_dir) if base_dir else None, seen=())


def _load(name_or_path: str | os.PathLike[str], *, base_dir: Path | None, seen: tuple[str, ...]) -> Mapping:
    ref = os.fspath(name_or_path)
    builtins = builtin_mappings()
    if ref in builtins:
        label = f"builtin:{ref}"
        if label in seen:
            raise MappingError(f"mapping extends itself: {' -> '.join((*seen, label))}")
        resource = resources.files("okrsync").joinpath("mappings", f"{ref}.toml")
        return _parse(resource.read_text(encoding="utf-8"), name=ref, source=label, base_dir=None, seen=seen)
    path = Path(ref)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    label = str(path)
    if label in seen:
        raise MappingError(f"mapping extends itself: {' -> '.join((*seen, label))}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(
            f"no mapping {ref!r}: not a built-in ({', '.join(builtins) or 'none installed'}) "
            "and no such file",
            path=label,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read mapping file {label}: {exc}") from None
    return _parse(text, name=path.stem, source=label, base_dir=path.parent, seen=seen)


def _parse(
    text: str, *, name: str, source: str | None, base_dir: Path | None, seen: tuple[str, ...]
) -> Mapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_ERROR_AT.search(str(exc))
        issue = MappingIssue(f"not valid TOML: {exc}", int(m.group(1)) if m else None)
        raise MappingFileError(name, [issue], source=source) from None
    lines = _key_lines(text)
    issues: list[MappingIssue] = []

    for table in data:
        if table not in _TOP_TABLES:
            issues.append(
                MappingIssue(
                    f"unknown table [{table}]; expected {', '.join(_TOP_TABLES)}", lines.get((table,))
                )
            )
    meta = _table(data, "mapping", lines, issues)
    for key in meta:
        if key not in _MAPPING_KEYS:
            issues.append(
                MappingIssue(
                    f"unknown key {key!r} in [mapping]; expected {', '.join(_MAPPING_KEYS)}",
                    lines.get(("mapping", key)),
                )
            )
    declared = meta.get("name", name)
    if not isinstance(declared, str) or not declared:
        issues.append(
            MappingIssue("[mapping] name must be a non-empty string", lines.get(("mapping", "name")))
        )
        declared = name
    description = meta.get("description", "")
    if not isinstance(description, str):
        issues.append(MappingIssue("description must be a string", lines.get(("mapping", "description"))))
        description = ""
    blank = meta.get("blank_is_null")
    if blank is not None and not isinstance(blank, bool):
        issues.append(
            MappingIssue("blank_is_null must be true or false", lines.get(("mapping", "blank_is_null")))
        )
        blank = None

    base: Mapping | None = None
    extends = meta.get("extends")
    if extends is not None:
        if not isinstance(extends, str) or not extends:
            issues.append(
                MappingIssue("extends must be a mapping name or path", lines.get(("mapping", "extends")))
            )
        else:
            base = _load(extends, base_dir=base_dir, seen=(*seen, source or f"builtin:{name}"))

    fields, dropped = _rules(_table(data, "fields", lines, issues), "fields", declared, lines, issues)
    attributes, dropped_attrs = _rules(
        _table(data, "attributes", lines, issues), "attributes", declared, lines, issues
    )
    if not data.get("fields") and not data.get("attributes") and base is None:
        issues.append(MappingIssue("no rules: add a [fields] table"))
    if base is not None:
        fields = _merge(base.fields, fields, dropped, issues)
        attributes = _merge(base.attributes, attributes, dropped_attrs, issues)
    elif dropped or dropped_attrs:
        for target, line in {**dropped, **dropped_attrs}.items():
            issues.append(MappingIssue("drop = true needs [mapping] extends", line, target))
    if issues:
        raise MappingFileError(declared, issues, source=source)
    return Mapping(
        name=declared,
        fields=tuple(fields),
        attributes=tuple(attributes),
        description=description,
        blank_is_null=blank if blank is not None else (base.blank_is_null if base else False),
        source=source,
    )


def _table(
    data: dict[str, Any], name: str, lines: dict[tuple[str, ...], int], issues: list[MappingIssue]
) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        issues.append(MappingIssue(f"{name} must be a table: [{name}]", lines.get((name,))))
        return {}
    return value


def _rules(
    table: dict[str, Any],
    where: str,
    mapping: str,
    lines: dict[tuple[str, ...], int],
    issues: list[MappingIssue],
) -> tuple[list[FieldRule], dict[str, int]]:
    """Compile one table's rules; also return the targets marked ``drop = true`` with their lines."""
    rules: list[FieldRule] = []
    dropped: dict[str, int] = {}
    for target, spec in table.items():
        line = lines.get((where, target), 0)
        label = target if where == "fields" else f"attributes.{target}"
        if not target:
            issues.append(MappingIssue("empty field name", line, label))
            continue
        if where == "fields" and target == "attributes":
            issues.append(
                MappingIssue("'attributes' is reserved: declare extra fields under [attributes]", line)
            )
            continue
        try:
            rule = _rule(target, spec, line=line, attribute=where == "attributes", mapping=mapping)
        except ExpressionError as exc:
            issues.append(MappingIssue(str(exc), line, label, exc.column))
            continue
        except _RuleProblem as problem:
            issues.append(MappingIssue(str(problem), line, label))
            continue
        if rule is None:
            dropped[target] = line
        else:
            rules.append(rule)
    return rules, dropped


class _RuleProblem(Exception):
    """A rule's TOML value is malformed (collected into a MappingIssue, never escapes)."""


def _rule(target: str, spec: Any, *, line: int, attribute: bool, mapping: str) -> FieldRule | None:
    """Compile one rule; None means ``drop = true`` (remove the inherited rule)."""
    common: dict[str, Any] = {"target": target, "line": line, "attribute": attribute, "origin": mapping}
    if isinstance(spec, str):
        return _source_rule(spec, common)
    if not isinstance(spec, dict):
        raise _RuleProblem(
            f"expected a source field name or a table with source/expr/const, got {type(spec).__name__}"
        )
    unknown = [k for k in spec if k not in _RULE_KEYS]
    if unknown:
        raise _RuleProblem(f"unknown key {unknown[0]!r}; expected {', '.join(_RULE_KEYS)}")
    if spec.get("drop") is not None:
        if spec["drop"] is not True or len(spec) != 1:
            raise _RuleProblem("drop = true stands alone (it removes the field inherited through extends)")
        return None
    kinds = [k for k in ("source", "expr", "const") if k in spec]
    if len(kinds) != 1:
        raise _RuleProblem("give exactly one of source, expr, const")
    null = spec.get("null", "skip")
    if null not in ("skip", "clear"):
        raise _RuleProblem(f"null must be 'skip' or 'clear', got {null!r}")
    common.update(null=null, default=spec.get("default"))
    if "source" in spec:
        if not isinstance(spec["source"], str):
            raise _RuleProblem("source must be a field name")
        return _source_rule(spec["source"], common)
    if "const" in spec:
        value = spec["const"]
        return FieldRule(const=value, evaluate=lambda r: value, **common)
    if not isinstance(spec["expr"], str):
        raise _RuleProblem("expr must be a string")
    expression: Expression = compile_expression(spec["expr"])
    reads = tuple(dict.fromkeys(p.text for p in expression.source_paths()))
    return FieldRule(expr=expression.text, reads=reads, evaluate=expression.evaluate, **common)


def _source_rule(text: str, common: dict[str, Any]) -> FieldRule:
    try:
        node = parse_path(text)
    except ExpressionError as exc:
        raise _RuleProblem(
            f"{text!r} is not a field path ({exc.message}): write {{ expr = ... }} for an expression, "
            "and quote names with spaces or dots in backquotes (`Cost Center`)"
        ) from None
    plain = node.steps[0] if len(node.steps) == 1 and isinstance(node.steps[0], str) else None
    return FieldRule(source=text, reads=(node.text,), key=plain, evaluate=path_getter(node.steps), **common)


def _merge(
    base: tuple[FieldRule, ...], own: list[FieldRule], dropped: dict[str, int], issues: list[MappingIssue]
) -> list[FieldRule]:
    """Base rules in their order, each replaced (or dropped) by the extending file; new ones last."""
    known = {r.target for r in base}
    for target, line in dropped.items():
        if target not in known:
            issues.append(MappingIssue("drop = true, but the base mapping has no such field", line, target))
    mine = {r.target: r for r in own}
    merged = [mine.pop(r.target, r) for r in base if r.target not in dropped]
    return merged + list(mine.values())


# --------------------------------------------------------------------------------------------
# line numbers: tomllib gives none, so find each key by scanning the text

_HEADER = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?")
_KEY_PART = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY_LINE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """(table, key) -> 1-based line of its first appearance; (table,) -> its header line.

    Handles bare, "quoted" and 'literal' keys, dotted keys (``email.expr = ...``), sub-table
    headers (``[fields.email]``) and skips the inside of multi-line strings.
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if line.count(in_multiline) % 2:
                in_multiline = None
            continue
        header = _HEADER.fullmatch(line)
        if header:
            table = _dotted(header.group(1))
            for size in (1, 2):
                if len(table) >= size:
                    found.setdefault(table[:size], number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            full = table + _dotted(key.group(1))
            for size in (1, 2):
                if len(full) >= size:
                    found.setdefault(full[:size], number)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2:
                    in_multiline = quote
    return found


def _dotted(key: str) -> tuple[str, ...]:
    """Split a TOML dotted key into its parts, letting tomllib unquote them."""
    try:
        parsed: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return ()
    parts: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        name, parsed = next(iter(parsed.items()))
        parts.append(name)
    return tuple(parts)
