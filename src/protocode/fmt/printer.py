"""The rule printer: a rule's AST back to text, in the one canonical layout.

The layout (docs/fmt.md has the full list with examples):

* one spelling per construct: ``<=`` ``>=`` ``!=`` (not ``≤ ≥ ≠``), ``3 x ULN`` (not
  ``×``), ``not in``, ``is known``, ``f(a, b)``, ``{a, b}``, ``-x``; single spaces
  around every operator and keyword;
* literals as written: a number keeps its digits (``2.0 x ULN`` stays ``2.0``), a unit
  its text; a code is double-quoted unless it contains a double quote;
* parentheses only where the grammar needs them, plus two for the reader: an ``and``
  inside an ``or`` (``a or (b and c)``) and an ``as`` conversion inside ``*`` or ``/``
  (``(weight as kg) * 2``); a nested ``if`` in a condition or ``then`` branch; a data
  item named ``ULN`` or ``LLN`` right after a comparison (``a <= (ULN)``), which would
  otherwise read as the reference limit;
* a rule that fits in the width is one line. A longer rule is broken before the
  operators of its ``and`` / ``or`` chains and its arithmetic chains, and before
  ``then`` / ``else``; a continuation line starts at the column of the expression it
  continues. Where a long rule breaks is partly the author's: every break the author
  made at one of those places is kept (it groups conditions that belong together), and
  a break is added wherever a line would otherwise pass the width. A line may still pass
  it when a single comparison is longer than the width.

The printer reads the author's line breaks through a `RuleText`: the YAML file, not the
scalar's value, says where lines were broken, since a folded scalar folds them away.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from protocode.document.model import RuleText
from protocode.language.syntax import ast, parse_rule

WIDTH = 88
"""The line width a formatted rule keeps to, counted from the start of the YAML line."""

# Binding levels, loosest first, as in grammar/rules.lark.
_IF, _OR, _AND, _NOT, _PRED, _SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = range(10)

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _level(node: ast.Expr) -> int:
    if isinstance(node, ast.If):
        return _IF
    if isinstance(node, ast.Or):
        return _OR
    if isinstance(node, ast.And):
        return _AND
    if isinstance(node, ast.Not):
        return _NOT
    if isinstance(node, ast.Compare | ast.RefCompare | ast.Between | ast.Member | ast.IsKnown):
        return _PRED
    if isinstance(node, ast.Arith):
        return _SUM if node.op in ("+", "-") else _PRODUCT
    if isinstance(node, ast.Neg):
        return _UNARY
    if isinstance(node, ast.AsUnit):
        return _POSTFIX
    return _ATOM


def _ends_with_unit(node: ast.Expr) -> bool:
    """Whether the node's text ends with a unit (which would swallow a following ``}``)."""
    if isinstance(node, ast.Quantity | ast.AsUnit):
        return True
    if isinstance(node, ast.Arith):
        return _ends_with_unit(node.right)
    if isinstance(node, ast.Neg):
        return _ends_with_unit(node.operand)
    return False


def _starts_with_limit(node: ast.Expr) -> bool:
    """Whether the node's text starts with the name ``ULN`` or ``LLN``."""
    while isinstance(node, ast.Arith | ast.AsUnit):
        node = node.left if isinstance(node, ast.Arith) else node.operand
    name = (
        node.name if isinstance(node, ast.Name) else node.func if isinstance(node, ast.Call) else ""
    )
    return name in ("ULN", "LLN")


def has_comment(text: str) -> bool:
    """Whether rule text that parses holds a ``#`` comment (a ``#`` outside quotes)."""
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return True
    return False


def shape(node: object) -> object:
    """A node as nested tuples without its spans: equal shapes mean the same rule."""
    if isinstance(node, tuple):
        return tuple(shape(item) for item in node)
    if is_dataclass(node) and not isinstance(node, type):
        kept = (f.name for f in fields(node) if not f.name.endswith("span"))
        return (type(node).__name__, *(shape(getattr(node, name)) for name in kept))
    return node


Part = str | tuple[ast.Expr, bool]
"""A piece of a node's text: literal text, or a child and whether it is parenthesized."""

Lines = list[str]
"""Rendered text: the first line without its indentation, every other line with it."""


@dataclass(frozen=True, slots=True)
class _Piece:
    """One operand of a chain (``a and b and c``), with the operator before it."""

    op: str
    child: ast.Expr
    parens: bool


class Printer:
    """Prints one parsed rule. `text` is the rule's text (the node's spans index into it);
    `broken(a, b)` says whether the author started a new line between characters `a` and
    `b` of it."""

    def __init__(self, text: str, broken: Callable[[int, int], bool], width: int = WIDTH) -> None:
        self.text = text
        self.broken = broken
        self.width = width
        self._flat: dict[int, str] = {}
        self._breaks: dict[int, bool] = {}

    # ---- one line

    def flat(self, node: ast.Expr) -> str:
        """The node on one line."""
        key = id(node)
        if key not in self._flat:
            self._flat[key] = "".join(
                part if isinstance(part, str) else self._flat_part(*part)
                for part in self._parts(node)
            )
        return self._flat[key]

    def _flat_part(self, child: ast.Expr, parens: bool) -> str:
        return f"({self.flat(child)})" if parens else self.flat(child)

    def _parts(self, node: ast.Expr) -> list[Part]:
        """The node as text and children, for every node but chains and `if`, which have
        their own line breaking (their parts here are their one-line form)."""
        if isinstance(node, ast.And | ast.Or | ast.Arith):
            parts: list[Part] = []
            for piece in self._chain(node):
                parts += [f" {piece.op} "] if piece.op else []
                parts.append((piece.child, piece.parens))
            return parts
        if isinstance(node, ast.If):
            return [
                "if ",
                (node.cond, node.cond.__class__ is ast.If),
                " then ",
                (node.then, node.then.__class__ is ast.If),
                " else ",
                (node.orelse, False),
            ]
        if isinstance(node, ast.Not):
            return ["not ", (node.operand, _level(node.operand) < _NOT)]
        if isinstance(node, ast.Compare):
            right = node.right
            # After a comparison `ULN` and `LLN` are the reference limits, so a data item of
            # that name keeps its parentheses: `a <= (ULN)`.
            kept = _starts_with_limit(right) or _level(right) < _SUM
            return [self._sum(node.left), f" {node.op} ", (right, kept)]
        if isinstance(node, ast.RefCompare):
            return [self._sum(node.left), f" {node.op} {self._limit(node)}"]
        if isinstance(node, ast.Between):
            low, high = self._sum(node.low), self._sum(node.high)
            return [self._sum(node.operand), " between ", low, " and ", high]
        if isinstance(node, ast.Member):
            parts = [self._sum(node.operand), " not in {" if node.negated else " in {"]
            for i, item in enumerate(node.items):
                parts += [", "] if i else []
                parts.append(self._sum(item))
            tail = " }" if node.items and _ends_with_unit(node.items[-1]) else "}"
            return [*parts, tail]
        if isinstance(node, ast.IsKnown):
            return [self._sum(node.operand), " is known" if node.known else " is missing"]
        if isinstance(node, ast.Neg):
            return ["-", (node.operand, _level(node.operand) < _UNARY)]
        if isinstance(node, ast.AsUnit):
            return [(node.operand, _level(node.operand) < _POSTFIX), f" as {node.unit}"]
        if isinstance(node, ast.Call):
            parts = [f"{node.func}("]
            for i, arg in enumerate(node.args):
                parts += [", "] if i else []
                parts.append((arg, False))
            return [*parts, ")"]
        return [self._atom(node)]

    def _sum(self, child: ast.Expr) -> Part:
        return (child, _level(child) < _SUM)

    def _atom(self, node: ast.Expr) -> str:
        if isinstance(node, ast.Number):
            return self.text[node.span.start : node.span.end]
        if isinstance(node, ast.Quantity):
            return f"{self.text[node.span.start : node.unit_span.start].strip()} {node.unit}"
        if isinstance(node, ast.DateLit):
            return node.value.isoformat()
        if isinstance(node, ast.String):
            return f"'{node.value}'" if '"' in node.value else f'"{node.value}"'
        if isinstance(node, ast.Bool):
            return "true" if node.value else "false"
        if isinstance(node, ast.Name):
            return node.name
        if isinstance(node, ast.Temporal):
            head = f"{node.op} {node.item}"
            return head if node.window is None else f"{head} {self._window(node.window)}"
        raise AssertionError(f"not an atom: {type(node).__name__}")

    def _window(self, window: ast.Window) -> str:
        kind, anchor = window.kind, window.anchor
        if kind in ("before", "after"):
            return f"{kind} {anchor}"
        written = _NUMBER.search(self.text, window.span.start, window.span.end)
        assert written is not None, "a 'within' window has an amount"
        relation = {"within_before": "before", "within_after": "after"}.get(kind, "of")
        return f"within {written[0]} {window.unit} {relation} {anchor}"

    def _limit(self, node: ast.RefCompare) -> str:
        written = _NUMBER.match(self.text[node.limit_span.start : node.limit_span.end].lstrip())
        return node.limit if written is None else f"{written[0]} x {node.limit}"

    def _chain(self, node: ast.And | ast.Or | ast.Arith) -> list[_Piece]:
        """A left-nested chain of one binding level, ``a or b or c``, as its operands."""
        level = _level(node)
        pieces: list[_Piece] = []
        current: ast.Expr = node
        while _level(current) == level and isinstance(current, ast.And | ast.Or | ast.Arith):
            op = current.op if isinstance(current, ast.Arith) else _level_word(level)
            pieces.append(_Piece(op, current.right, self._parens(current.right, level, False)))
            current = current.left
        pieces.append(_Piece("", current, self._parens(current, level, True)))
        return pieces[::-1]

    @staticmethod
    def _parens(child: ast.Expr, level: int, first: bool) -> bool:
        """Whether an operand of a chain at `level` is parenthesized."""
        child_level = _level(child)
        if level == _OR and child_level == _AND:
            return True  # a or (b and c): the reader need not know which binds tighter
        if level == _PRODUCT and child_level == _POSTFIX:
            return True  # (weight as kg) * 2: the conversion applies to weight alone
        # Chains nest to the left: the first operand may be the same level, others not.
        return child_level < level if first else child_level <= level

    # ---- several lines

    def has_break(self, node: ast.Expr) -> bool:
        """Whether the author broke a line at any place where the printer may break one."""
        key = id(node)
        if key not in self._breaks:
            own: Sequence[tuple[ast.Expr, ast.Expr]] = ()
            if isinstance(node, ast.And | ast.Or | ast.Arith):
                own = [(node.left, node.right)]
            elif isinstance(node, ast.If):
                own = [(node.cond, node.then), (node.then, node.orelse)]
            self._breaks[key] = any(self.broken(a.span.end, b.span.start) for a, b in own) or any(
                self.has_break(child) for child in _children(node)
            )
        return self._breaks[key]

    def render(self, node: ast.Expr, col: int) -> Lines:
        """The node starting at column `col`: on one line if that fits and the author did
        not break it, else broken."""
        flat = self.flat(node)
        if col + len(flat) <= self.width and not self.has_break(node):
            return [flat]
        if isinstance(node, ast.And | ast.Or | ast.Arith):
            return self._render_chain(self._chain(node), col)
        if isinstance(node, ast.If):
            _, cond, _, then, _, orelse = self._parts(node)
            lines = self._render_parts(["if ", cond], col)
            for word, part in (("then ", then), ("else ", orelse)):
                more = self._render_parts([word, part], col)
                lines += [" " * col + more[0], *more[1:]]
            return lines
        return self._render_parts(self._parts(node), col)

    def _render_parts(self, parts: Sequence[Part], col: int) -> Lines:
        lines = [""]
        for part in parts:
            at = col + len(lines[0]) if len(lines) == 1 else len(lines[-1])
            more = [part] if isinstance(part, str) else self._render_part(*part, at)
            lines[-1] += more[0]
            lines += more[1:]
        return lines

    def _render_part(self, child: ast.Expr, parens: bool, col: int) -> Lines:
        if not parens:
            return self.render(child, col)
        lines = self.render(child, col + 1)
        lines[0] = "(" + lines[0]
        lines[-1] += ")"
        return lines

    def _render_chain(self, pieces: Sequence[_Piece], col: int) -> Lines:
        """Operands joined on a line while they fit, unless the author broke the line
        before one, or the operand before spans lines; a new line starts at `col`."""
        lines = self._render_part(pieces[0].child, pieces[0].parens, col)
        spans_lines = len(lines) > 1
        previous = pieces[0].child
        for piece in pieces[1:]:
            at = col + len(lines[0]) if len(lines) == 1 else len(lines[-1])
            text = f" {piece.op} {self._flat_part(piece.child, piece.parens)}"
            if (
                not spans_lines
                and not self.broken(previous.span.end, piece.child.span.start)
                and at + len(text) <= self.width
            ):
                more = self._render_part(piece.child, piece.parens, at + len(piece.op) + 2)
                lines[-1] += f" {piece.op} {more[0]}"
            else:
                more = self._render_part(piece.child, piece.parens, col + len(piece.op) + 1)
                lines.append(f"{' ' * col}{piece.op} {more[0]}")
            lines += more[1:]
            spans_lines = len(more) > 1
            previous = piece.child
        return lines


def _level_word(level: int) -> str:
    return "and" if level == _AND else "or"


def _children(node: ast.Expr) -> tuple[ast.Expr, ...]:
    out: list[ast.Expr] = []
    for f in fields(node):
        value: Any = getattr(node, f.name)
        if isinstance(value, tuple):
            out += [v for v in value if not isinstance(v, str)]
        elif hasattr(value, "span") and not isinstance(value, ast.Window):
            out.append(value)
    return tuple(out)


def format_rule(text: str, width: int = WIDTH) -> str:
    """`text` in the canonical layout, lines broken to keep within `width` columns.

    Raises `RuleSyntaxError` when the text does not parse. A rule holding a ``#`` comment is
    returned unchanged, since the AST does not keep comments.
    """
    printer, node = rule_printer(RuleText.detached(text), width)
    if has_comment(text):
        return text
    flat = printer.flat(node)
    return flat if len(flat) <= width else "\n".join(printer.render(node, 0))


def rule_printer(rule: RuleText, width: int = WIDTH) -> tuple[Printer, ast.Expr]:
    """A printer for one rule and the rule's AST; the author's line breaks are read from
    the file the rule is in. Raises `RuleSyntaxError` pointing into that file."""
    parse_rule(rule)  # the errors, with the file's positions
    node = parse_rule(RuleText.detached(rule.text))  # spans that index the rule's own text
    source, offsets = rule.source.text, rule.offsets

    def broken(start: int, end: int) -> bool:
        # From just past the character before `start`: YAML may have matched the space at
        # `start` to the indentation after a folded line break rather than to the break.
        after = offsets[start - 1] + 1 if start > 0 else offsets[0]
        return start < end and "\n" in source[after : offsets[end]]

    return Printer(rule.text, broken, width), node
