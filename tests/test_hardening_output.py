"""Output hygiene under hostile input (issue 11): numbers beyond a float are shown, not
crashed on."""

from __future__ import annotations

from fractions import Fraction

import pytest

from protocode.exact import approximate
from protocode.screen import format_number

HUGE = 10**5000  # str() of it raises ValueError (more than 4,300 digits)

# --- numbers shown approximately ------------------------------------------------------------


def g3(f: float) -> str:
    return f"{f:.3g}"


@pytest.mark.parametrize(
    "x", [Fraction(1, 3), Fraction(-2, 3), Fraction(10**20, 7), Fraction(1, 7 * 10**300), 0]
)
def test_approximate_is_the_float_rendering_where_a_float_holds_the_value(x: Fraction) -> None:
    assert approximate(x, g3) == g3(float(x))
    assert approximate(x, lambda f: str(round(f, 2))) == str(round(float(x), 2))


@pytest.mark.parametrize(
    ("x", "digits", "shown"),
    [
        (Fraction(10**400, 3), 3, "3.33e+399"),
        (Fraction(-(10**400), 3), 3, "-3.33e+399"),
        (Fraction(2 * 10**400, 3), 12, "6.66666666667e+399"),
        (Fraction(1, 3 * 10**400), 3, "3.33e-401"),
        (Fraction(10**308), 3, "1e+308"),
        (Fraction(9999, 10**311), 3, "1e-307"),  # rounding carries into a new digit
        (Fraction(HUGE, 7), 3, "1.43e+4999"),
        (Fraction(1, HUGE), 6, "1e-5000"),
    ],
)
def test_approximate_beyond_a_float_is_scientific_and_exact(
    x: Fraction, digits: int, shown: str
) -> None:
    # float() of these raises OverflowError or gives 0.0.
    assert approximate(x, g3, digits) == shown


def test_format_number_never_overflows_and_keeps_ordinary_output() -> None:
    assert format_number(Fraction(1, 3)) == "≈0.33"
    assert format_number(Fraction(200, 3)) == "≈66.67"
    assert format_number(Fraction("12.5")) == "12.5"
    # It was OverflowError (huge) and "≈0.0" (tiny).
    assert format_number(Fraction(10**400, 3)) == "≈3.33e+399"
    assert format_number(Fraction(1, 3 * 10**400)) == "≈3.33e-401"
