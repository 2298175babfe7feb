"""UCUM unit text parsed into a `Unit`, with located errors and suggestions.

Grammar (UCUM §7, case-sensitive)::

    main       := '/' term | term
    term       := component (('.' | '/') component)*
    component  := simple exponent? annotation? | annotation | digits | '(' main ')'
    simple     := ATOM | PREFIX ATOM[metric]

A leading '/' inverts the whole term, as in UCUM: '/uL' is 1/uL and '/s.m' is 1/(s.m).
English time words clinicians write ('days', 'hours', ...) are accepted and normalised to the
UCUM atom, as are 'µ'/'μ' for the micro prefix.
"""

from __future__ import annotations

import functools
from fractions import Fraction

from protocode.language.units.atoms import MICRO_SIGNS, non_metric_prefix, resolve, suggest
from protocode.language.units.dimensions import NO_DIMS, Dims, add_dims, scale_dims, sub_dims
from protocode.language.units.unit import MAX_EXPONENT, SYMBOL_EXPONENT, Unit, UnitError

# Parenthesised terms recurse; bound the depth so hostile text gives a UnitError, not a
# RecursionError.
_MAX_NESTING = 32
_MAX_FACTOR_DIGITS = 30

_DELIMITERS = frozenset("./(){}")


def _is_digit(ch: str) -> bool:
    """An ASCII digit: `str.isdigit` also takes '²' and other scripts' digits."""
    return "0" <= ch <= "9"


class _Parser:
    """Recursive-descent parser over the UCUM grammar in the module docstring.

    Offsets in errors refer to the text as given; normalising 'µ' to 'u' is one character
    for one, so offsets survive it. Aliases change length, so they are recorded as
    replacements and applied only when building the display text.
    """

    def __init__(self, original: str) -> None:
        self.original = original
        self.text = original.translate(MICRO_SIGNS)
        self.pos = 0
        self.depth = 0
        self.replacements: list[tuple[int, int, str]] = []

    def error(self, message: str, offset: int, length: int = 1) -> UnitError:
        return UnitError(message, offset, length)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Unit:
        if not self.text:
            raise self.error("empty unit", 0)
        factor, dims = self.main()
        if self.pos < len(self.text):
            raise self.unexpected()
        return Unit(self.display_text(), factor, dims)

    def display_text(self) -> str:
        out = self.text
        for start, end, replacement in reversed(self.replacements):
            out = out[:start] + replacement + out[end:]
        return out

    def unexpected(self) -> UnitError:
        ch = self.peek()
        if not ch:
            return self.error("unexpected end of unit", self.pos)
        if ch.isspace():
            return self.error("unexpected whitespace in unit (UCUM units have no spaces)", self.pos)
        return self.error(f"unexpected {ch!r}", self.pos)

    def main(self) -> tuple[Fraction, Dims]:
        if self.peek() == "/":
            self.pos += 1
            factor, dims = self.term()
            return 1 / factor, scale_dims(dims, -1)
        return self.term()

    def term(self) -> tuple[Fraction, Dims]:
        factor, dims = self.component()
        while self.peek() in (".", "/"):
            op = self.peek()
            self.pos += 1
            f, d = self.component()
            if op == ".":
                factor, dims = factor * f, add_dims(dims, d)
            else:
                factor, dims = factor / f, sub_dims(dims, d)
        return factor, dims

    def component(self) -> tuple[Fraction, Dims]:
        ch = self.peek()
        start = self.pos
        if ch == "(":
            if self.depth >= _MAX_NESTING:
                raise self.error("parentheses nested too deeply", start)
            self.depth += 1
            self.pos += 1
            result = self.main()
            self.depth -= 1
            if self.peek() != ")":
                if self.pos >= len(self.text):
                    raise self.error("missing ')'", start)
                raise self.unexpected()
            self.pos += 1
            return result
        if ch == "{":
            self.annotation()
            return Fraction(1), NO_DIMS
        if _is_digit(ch) and not self.text.startswith(("10*", "10^"), self.pos):
            return self.number()
        if not ch or ch in _DELIMITERS or ch.isspace() or ch in "])":
            if not ch and start > 0:
                raise self.error(f"expected a unit after {self.text[start - 1]!r}", start)
            raise self.unexpected()
        result = self.simple()
        if self.peek() == "{":
            self.annotation()
        return result

    def annotation(self) -> None:
        start = self.pos
        end = self.text.find("}", start + 1)
        if end < 0:
            raise self.error("unterminated annotation: missing '}'", start, len(self.text) - start)
        if "{" in self.text[start + 1 : end]:
            raise self.error("'{' inside an annotation", self.text.index("{", start + 1))
        self.pos = end + 1

    def number(self) -> tuple[Fraction, Dims]:
        start = self.pos
        while _is_digit(self.peek()):
            self.pos += 1
        digits = self.text[start : self.pos]
        if len(digits) > _MAX_FACTOR_DIGITS:
            raise self.error("numeric factor too long", start, len(digits))
        nxt = self.peek()
        if nxt and nxt not in _DELIMITERS:
            raise self.error(
                f"a number must be followed by '.' or '/' (write '{digits}.{self.text[self.pos :]}'"
                f" or use '10*N' for powers of ten)",
                self.pos,
            )
        value = int(digits)
        if value == 0:
            # A zero-sized unit would make every conversion through it divide by zero.
            raise self.error("a numeric factor must be positive", start, len(digits))
        return Fraction(value), NO_DIMS

    def simple(self) -> tuple[Fraction, Dims]:
        start = self.pos
        i = start
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == "[":
                close = text.find("]", i + 1)
                if close < 0:
                    raise self.error("unterminated '[': missing ']'", i, len(text) - i)
                i = close + 1
            elif ch in _DELIMITERS or ch.isspace():
                break
            elif ch == "]":
                raise self.error("unexpected ']'", i)
            else:
                i += 1
        run = text[start:i]
        match = SYMBOL_EXPONENT.fullmatch(run)
        assert match is not None  # the pattern matches every string
        symbol = match["symbol"]
        exponent_text = match["exponent"]
        if not symbol:
            raise self.error(f"expected a unit before exponent {run!r}", start, len(run))
        self.pos = i
        resolved = resolve(symbol)
        if resolved is None:
            raise self.unknown(symbol, start)
        if resolved.text != symbol:
            self.replacements.append((start, start + len(symbol), resolved.text))
        exponent = 1
        if exponent_text is not None:
            # Measured as text first: int() refuses text of more than 4,300 digits.
            if len(exponent_text) > 4:
                raise self.error(
                    f"exponent of {len(exponent_text):,} digits is too large",
                    start + len(symbol),
                    len(exponent_text),
                )
            exponent = int(exponent_text)
            if abs(exponent) > MAX_EXPONENT:
                raise self.error(
                    f"exponent {exponent} is too large",
                    start + len(symbol),
                    len(exponent_text),
                )
        return resolved.factor**exponent, scale_dims(resolved.dims, exponent)

    def unknown(self, symbol: str, start: int) -> UnitError:
        shown = self.original[start : start + len(symbol)]
        misplaced = non_metric_prefix(symbol)
        if misplaced is not None:
            prefix, atom = misplaced
            message = f"unit {atom!r} cannot take a prefix ({prefix!r} in {shown!r})"
        else:
            message = f"unknown unit {shown!r}"
            suggestion = suggest(symbol)
            if suggestion is not None:
                message += f"; did you mean {suggestion!r}?"
        return self.error(message, start, len(symbol))


@functools.lru_cache(maxsize=4096)
def parse_unit(text: str) -> Unit:
    """Parse UCUM unit text (plus the English time aliases) into a `Unit`.

    Results are cached, so repeated parsing of the same text is a dictionary look-up.
    Raises `UnitError` with the offset and length of the offending part of `text`.
    """
    return _Parser(text).parse()
