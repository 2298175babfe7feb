"""The typed intermediate representation: what the checker proved, ready for backends.

Every node carries its result `type` and the `span` of the rule text it came from. Units
are resolved: a `Scale` node makes every conversion explicit, so backends only multiply.
Literals hold exact values (`int` or `Fraction`, `datetime.date`, `str`, `bool`).
"""

from __future__ import annotations

import datetime as dt
import keyword
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Generic, Literal, TypeVar, get_args

from protocode.core.source import Span
from protocode.language.syntax.ast import CompareOp, TemporalOp, WindowKind
from protocode.language.types import BOOL, Type

R = TypeVar("R")

Magnitude = int | Fraction
Value = bool | int | Fraction | dt.date | str
CalendarUnit = Literal["d", "mo"]


@dataclass(frozen=True, slots=True)
class Const:
    """A literal, already in the unit its type says."""

    value: Value
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Fact:
    """A scalar item of the record (anchor date or fact); unknown when absent."""

    item: str
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class DefRef:
    """A named definition; evaluated once per record."""

    name: str
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Window:
    """A closed date interval around an anchor date. Offsets are whole days or months."""

    kind: WindowKind
    anchor: Expr
    amount: int
    unit: CalendarUnit
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Select:
    """The latest (or earliest) observation of `item` in the window: its value."""

    item: str
    earliest: bool
    window: Window | None
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Events:
    """`any` / `no` / `count` / `ever` over the dated occurrences of an event item."""

    op: TemporalOp
    item: str
    window: Window | None
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Arith:
    """Arithmetic on magnitudes; operands already share a unit where that matters."""

    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus."""

    operand: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Scale:
    """Multiply by an exact factor: a unit conversion made explicit."""

    operand: Expr
    factor: Fraction
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class DateShift:
    """A date moved by a whole number of days or calendar months (negative moves back)."""

    operand: Expr
    amount: int
    unit: CalendarUnit
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A library function; see `protocode.language.check.functions`."""

    func: str
    args: tuple[Expr, ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison of two values of one type (and, for quantities, one unit)."""

    op: CompareOp
    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class RefCompare:
    """An observation compared with a multiple of its reference limit (ULN or LLN).

    The limit comes from the observation's own reference range, else from the data
    dictionary (`default`, in the item's unit), else the comparison is unknown.
    """

    op: CompareOp
    select: Select
    factor: Fraction
    limit: Literal["ULN", "LLN"]
    default: Magnitude | None
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Member:
    """Membership of a value in a literal set."""

    operand: Expr
    items: frozenset[Value]
    negated: bool
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class IsKnown:
    """`is known` / `is missing`: the only two-valued tests in the language."""

    operand: Expr
    known: bool
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class And:
    """Kleene conjunction."""

    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Or:
    """Kleene disjunction."""

    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Not:
    """Kleene negation."""

    operand: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class If:
    """Conditional; with an unknown condition, known only if both arms agree."""

    cond: Expr
    then: Expr
    orelse: Expr
    type: Type
    span: Span


Expr = (
    Const
    | Fact
    | DefRef
    | Select
    | Events
    | Arith
    | Neg
    | Scale
    | DateShift
    | Call
    | Compare
    | RefCompare
    | Member
    | IsKnown
    | And
    | Or
    | Not
    | If
)


def _method_name(cls: type) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    return f"{snake}_" if keyword.iskeyword(snake) else snake


# `Const` → `const`, `DefRef` → `def_ref`, `And` → `and_`: one method per node class.
_METHODS: dict[type, str] = {cls: _method_name(cls) for cls in get_args(Expr)}


def visitor_method(cls: type) -> str:
    """The name of the `Visitor` method that handles IR node class `cls`."""
    return _METHODS[cls]


class Visitor(Generic[R]):
    """Dispatch on an IR node's class: `visit(node, *args)` calls the method named after it.

    Backends subclass this and define one method per node class, so adding a node class
    shows up as a missing method in each backend rather than a silent fall-through.
    """

    def visit(self, node: Expr, *args: Any) -> R:
        """Call the method for `node`'s class with `node` and `args`."""
        method: Callable[..., R] = getattr(self, _METHODS[type(node)])
        return method(node, *args)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node, in source order (windows' anchors included)."""
    match node:
        case Arith(left=left, right=right) | Compare(left=left, right=right):
            return (left, right)
        case And(left=left, right=right) | Or(left=left, right=right):
            return (left, right)
        case Neg(operand=x) | Scale(operand=x) | DateShift(operand=x) | Not(operand=x):
            return (x,)
        case Member(operand=x) | IsKnown(operand=x):
            return (x,)
        case Call(args=args):
            return args
        case If(cond=c, then=t, orelse=e):
            return (c, t, e)
        case RefCompare(select=s):
            return (s,)
        case Select(window=w) | Events(window=w):
            return (w.anchor,) if w is not None else ()
        case _:
            return ()


def references(node: Expr) -> Iterator[str]:
    """The definitions `node` names directly (not those they use), each once, in source order."""
    seen: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, DefRef) and n.name not in seen:
            seen.add(n.name)
            yield n.name
        stack.extend(reversed(children(n)))


def uses_in_order(
    node: Expr, definitions: Mapping[str, Expr], done: Container[str] = ()
) -> list[str]:
    """The definitions `node` uses, directly or through others, each after those it uses.

    Names in `done` (already handled by the caller) are left out with everything below
    them. Backends handle definitions in this order so that a definition's body never
    recurses into another definition: their recursion stays within one rule's depth,
    however long a chain of definitions is. Iterative, so the chain's length is no limit.
    """
    order: list[str] = []
    visited: set[str] = set()
    stack: list[tuple[str, Iterator[str]]] = []
    for root in references(node):
        if root in visited or root in done:
            continue
        visited.add(root)
        stack.append((root, references(definitions[root])))
        while stack:
            name, pending = stack[-1]
            for dep in pending:
                if dep not in visited and dep not in done:
                    visited.add(dep)
                    stack.append((dep, references(definitions[dep])))
                    break
            else:
                stack.pop()
                order.append(name)
    return order


def definition_order(definitions: Mapping[str, Expr]) -> list[str]:
    """Every definition's name, each after those it uses (in `definitions` order otherwise)."""
    order: list[str] = []
    done: set[str] = set()
    for name, body in definitions.items():
        if name not in done:
            for used in [*uses_in_order(body, definitions, done), name]:
                order.append(used)
                done.add(used)
    return order


def depths(definitions: Mapping[str, Expr]) -> dict[str, int]:
    """How deep each definition nests counting those it uses (see `nesting`); acyclic input."""
    out: dict[str, int] = {}
    for name in definition_order(definitions):
        out[name] = nesting(definitions[name], out)[0]
    return out


def cycle(definitions: Mapping[str, Expr]) -> list[str] | None:
    """Definitions that use each other in a cycle, as `[a, b, a]`, or None if there is none.

    For IR that did not come through the checker (compiled JSON). Iterative, so a long
    chain of definitions is no limit.
    """
    done: set[str] = set()
    for root in definitions:
        if root in done:
            continue
        stack = [(root, references(definitions[root]))]
        on_stack = {root: 0}
        while stack:
            name, pending = stack[-1]
            for used in pending:
                if used in on_stack:
                    return [n for n, _ in stack[on_stack[used] :]] + [used]
                if used in definitions and used not in done:
                    on_stack[used] = len(stack)
                    stack.append((used, references(definitions[used])))
                    break
            else:
                stack.pop()
                del on_stack[name]
                done.add(name)
    return None


def nesting(node: Expr, depths: Mapping[str, int]) -> tuple[int, DefRef | None]:
    """How deep `node` nests counting through definitions, and the reference that goes deepest.

    A leaf is one level; a definition reference is one level above its definition, whose
    depth `depths` gives. This is how deep every backend that follows definitions recurses.
    """
    deepest, via = 0, None
    stack: list[tuple[Expr, int]] = [(node, 1)]
    while stack:
        n, level = stack.pop()
        ref = n if isinstance(n, DefRef) else None
        if ref is not None:
            level += depths[ref.name]
        if level > deepest:
            deepest, via = level, ref
        stack.extend((child, level + 1) for child in children(n))
    return deepest, via
