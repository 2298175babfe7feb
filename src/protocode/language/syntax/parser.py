"""Parse stage: rule text → AST.

The Lark parser is built once (LALR, contextual lexer, cached) from the grammar shipped in
the package. `parse_rule` converts Lark's tree into `protocode.language.syntax.ast` nodes at once,
mapping every position back to the YAML file through `RuleText`.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta

from protocode.core.errors import Diagnostic, RuleSyntaxError
from protocode.core.exact import decimal
from protocode.core.source import Span
from protocode.document.model import RuleText
from protocode.language.syntax import ast

GRAMMAR_FILE = "rules.lark"
MAX_DEPTH = 64


def grammar_text() -> str:
    """The rule grammar, read through the package (never from the working directory)."""
    return (
        resources.files("protocode").joinpath("grammar").joinpath(GRAMMAR_FILE).read_text("utf-8")
    )


@cache
def rule_parser(*, strict: bool = False) -> Lark:
    """The one LALR parser for rules. `strict=True` also proves the lexer is collision-free."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        strict=strict,
        cache=not strict,
    )


def parse_rule(rule: RuleText) -> ast.Expr:
    """Parse one rule's text into an AST, or raise `RuleSyntaxError` pointing into the file."""
    try:
        tree = rule_parser().parse(rule.text)
    except UnexpectedInput as exc:
        raise RuleSyntaxError([_syntax_diagnostic(rule, exc)]) from None
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        # Every later stage walks the tree recursively; a bound here keeps them all safe.
        message = (
            f"the rule nests {depth} levels deep (at most {MAX_DEPTH}); write a long list of "
            "alternatives as `x in {a, b, …}`, or split the rule into definitions"
        )
        raise RuleSyntaxError.at("too-deep", message, rule.whole)
    try:
        return _ToAst(rule).transform(tree)
    except VisitError as exc:
        # Lark wraps errors raised inside the transformer; ours carry their own span.
        if isinstance(exc.orig_exc, RuleSyntaxError):
            raise exc.orig_exc from None
        raise


# Friendly names for terminals in "expected …" messages.
_TERMINAL_NAMES = {
    "NUMBER": "a number",
    "UNIT": "a unit",
    "NAME": "a name",
    "STRING": "a quoted code",
    "DATE": "a date",
    "COMPARE": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "$END": "the end of the rule",
}


def _describe(terminal: str) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    pattern = rule_parser().get_terminal(terminal).pattern
    return f"'{pattern.value}'"


def _expected(names: set[str]) -> str:
    described = sorted({_describe(n) for n in names})
    if len(described) > 8:
        described = [*described[:8], "…"]
    return ", ".join(described)


def _syntax_diagnostic(rule: RuleText, exc: UnexpectedInput) -> Diagnostic:
    text = rule.text
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos]
        if char == "=":
            message = "'=' is not an operator here; use '==' to compare"
        elif char in {"&", "|"}:
            message = f"'{char}' is not an operator; write 'and' / 'or'"
        else:
            message = f"unexpected character {char!r}"
        return Diagnostic("syntax", message, rule.span(pos, pos + 1))
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        start = token.start_pos if token.start_pos is not None else len(text)
        end = token.end_pos if token.end_pos is not None else start + 1
        if token.type == "COMPARE" and "COMPARE" not in exc.expected:
            message = "comparisons cannot be chained; combine them with 'and' or use 'between'"
        elif token.type == "UNIT" and token.value in {"x", "×"}:
            message = "a reference-limit multiple must be followed by ULN or LLN"
        else:
            message = f"unexpected {token.value!r}; expected {_expected(set(exc.expected))}"
        return Diagnostic("syntax", message, rule.span(start, end))
    expected = exc.expected if isinstance(exc, UnexpectedToken | UnexpectedEOF) else set()
    end = len(text.rstrip())
    message = "the rule ends too early"
    if expected:
        message += f"; expected {_expected(set(expected))}"
    return Diagnostic("syntax", message, rule.span(max(0, end - 1), end))


def _depth(tree: Tree[Token]) -> int:
    """The nesting depth of a parse tree, computed without recursion."""
    deepest = 0
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


@v_args(meta=True)
class _ToAst(Transformer[Token, ast.Expr]):
    """Lark tree → AST. One method per named alternative of the grammar."""

    def __init__(self, rule: RuleText) -> None:
        super().__init__()
        self._rule = rule

    def _span(self, meta: Meta) -> Span:
        return self._rule.span(meta.start_pos, meta.end_pos)

    def _tok(self, token: Token) -> Span:
        start = token.start_pos or 0
        return self._rule.span(start, token.end_pos if token.end_pos is not None else start)

    def _decimal(self, token: Token) -> Fraction:
        try:
            return decimal(str(token))
        except ValueError as exc:
            raise RuleSyntaxError.at("number", str(exc), self._tok(token)) from None

    # -- literals
    def number(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Number(self._decimal(c[0]), self._span(meta))

    def quantity(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Quantity(self._decimal(c[0]), str(c[1]), self._tok(c[1]), self._span(meta))

    def date(self, meta: Meta, c: list[Any]) -> ast.Expr:
        span = self._span(meta)
        try:
            value = dt.date.fromisoformat(str(c[0]))
        except ValueError:
            raise RuleSyntaxError.at("syntax", f"{c[0]} is not a calendar date", span) from None
        return ast.DateLit(value, span)

    def string(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.String(str(c[0])[1:-1], self._span(meta))

    def true(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Bool(True, self._span(meta))

    def false(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Bool(False, self._span(meta))

    def name(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Name(str(c[0]), self._span(meta))

    def call(self, meta: Meta, c: list[Any]) -> ast.Expr:
        args = tuple(a for a in c[1:] if a is not None)
        return ast.Call(str(c[0]), self._tok(c[0]), args, self._span(meta))

    # -- arithmetic
    def _arith(self, op: ast.ArithOp, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Arith(op, c[0], c[1], self._span(meta))

    def add(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._arith("+", meta, c)

    def sub(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._arith("-", meta, c)

    def mul(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._arith("*", meta, c)

    def div(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._arith("/", meta, c)

    def neg(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Neg(c[0], self._span(meta))

    def as_unit(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.AsUnit(c[0], str(c[1]), self._tok(c[1]), self._span(meta))

    # -- predicates
    def compare(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Compare(_compare_op(c[1]), c[0], c[2], self._tok(c[1]), self._span(meta))

    def ref_compare(self, meta: Meta, c: list[Any]) -> ast.Expr:
        factor, limit, limit_span = c[2]
        return ast.RefCompare(_compare_op(c[1]), c[0], factor, limit, limit_span, self._span(meta))

    def ref_multiple(self, meta: Meta, c: list[Any]) -> tuple[Fraction, str, Span]:
        return self._decimal(c[0]), c[1], self._span(meta)

    def ref_plain(self, meta: Meta, c: list[Any]) -> tuple[Fraction, str, Span]:
        return Fraction(1), c[0], self._span(meta)

    def uln(self, meta: Meta, c: list[Any]) -> str:
        return "ULN"

    def lln(self, meta: Meta, c: list[Any]) -> str:
        return "LLN"

    def between(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Between(c[0], c[1], c[2], self._span(meta))

    def set_literal(self, meta: Meta, c: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(item for item in c if item is not None)

    def member(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Member(c[0], c[1], False, self._span(meta))

    def not_member(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Member(c[0], c[1], True, self._span(meta))

    def is_known(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.IsKnown(c[0], True, self._span(meta))

    def is_missing(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.IsKnown(c[0], False, self._span(meta))

    # -- logic
    def and_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.And(c[0], c[1], self._span(meta))

    def or_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Or(c[0], c[1], self._span(meta))

    def not_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.Not(c[0], self._span(meta))

    def if_expr(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return ast.If(c[0], c[1], c[2], self._span(meta))

    # -- time
    def _temporal(self, op: ast.TemporalOp, meta: Meta, c: list[Any]) -> ast.Expr:
        window = c[1] if len(c) > 1 else None
        return ast.Temporal(op, str(c[0]), self._tok(c[0]), window, self._span(meta))

    def latest(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("latest", meta, c)

    def earliest(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("earliest", meta, c)

    def any_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("any", meta, c)

    def no_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("no", meta, c)

    def count(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("count", meta, c)

    def ever(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._temporal("ever", meta, c)

    def _within(self, kind: ast.WindowKind, meta: Meta, c: list[Any]) -> ast.Window:
        return ast.Window(
            kind,
            str(c[2]),
            self._tok(c[2]),
            self._span(meta),
            amount=self._decimal(c[0]),
            unit=str(c[1]),
            unit_span=self._tok(c[1]),
        )

    def within_before(self, meta: Meta, c: list[Any]) -> ast.Window:
        return self._within("within_before", meta, c)

    def within_after(self, meta: Meta, c: list[Any]) -> ast.Window:
        return self._within("within_after", meta, c)

    def within_of(self, meta: Meta, c: list[Any]) -> ast.Window:
        return self._within("within_of", meta, c)

    def before(self, meta: Meta, c: list[Any]) -> ast.Window:
        return ast.Window("before", str(c[0]), self._tok(c[0]), self._span(meta))

    def after(self, meta: Meta, c: list[Any]) -> ast.Window:
        return ast.Window("after", str(c[0]), self._tok(c[0]), self._span(meta))


_COMPARE_SPELLINGS: dict[str, ast.CompareOp] = {
    "<": "<",
    "<=": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "≥": ">=",
    "==": "==",
    "!=": "!=",
    "≠": "!=",
}


def _compare_op(token: Token) -> ast.CompareOp:
    return _COMPARE_SPELLINGS[str(token)]
