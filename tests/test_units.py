"""Tests for the exact UCUM unit algebra (protocode.language.units)."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import MINI, check
from protocode.core.errors import CheckError
from protocode.document.loader import load_protocol_text
from protocode.language.check import check_protocol
from protocode.language.units import (
    BASE_DIMENSIONS,
    ONE,
    Unit,
    UnitError,
    conversion_factor,
    is_time,
    parse_unit,
    plain_number,
    quantity_text,
    unit_mismatch,
)


def cf(src: str, dst: str, molar_mass: Fraction | None = None) -> Fraction:
    return conversion_factor(parse_unit(src), parse_unit(dst), molar_mass)


# --- exact factors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ("mg/dL", "mg/L", Fraction(10)),
        ("g", "mg", Fraction(1000)),
        ("kg", "g", Fraction(1000)),
        ("wk", "d", Fraction(7)),
        ("a", "d", Fraction(36525, 100)),
        ("mo", "a", Fraction(1, 12)),
        ("mo", "d", Fraction(36525, 1200)),
        ("d", "h", Fraction(24)),
        ("h", "min", Fraction(60)),
        ("min", "s", Fraction(60)),
        ("%", "1", Fraction(1, 100)),
        ("L", "dm3", Fraction(1)),
        ("l", "L", Fraction(1)),
        ("mL", "cm3", Fraction(1)),
        ("m2", "cm2", Fraction(10000)),
        ("s-1", "/min", Fraction(60)),
        ("10*9/L", "10^9/L", Fraction(1)),
        ("/uL", "10*9/L", Fraction(1, 1000)),
        ("{cells}/uL", "/uL", Fraction(1)),
        ("mL/min/{1.73_m2}", "mL/min", Fraction(1)),
        ("U/L", "ukat/L", Fraction(1, 60)),
        ("U", "umol/min", Fraction(1)),
        ("mm[Hg]", "Pa", Fraction("133.322")),
        ("mm[Hg]", "kPa", Fraction("0.133322")),
        ("cm[H2O]", "Pa", Fraction("98.0665")),
        ("[lb_av]", "kg", Fraction("0.45359237")),
        ("[in_i]", "cm", Fraction("2.54")),
        ("[ft_i]", "[in_i]", Fraction(12)),
        ("meq/L", "mmol/L", Fraction(1)),
        ("mosm/kg", "mmol/kg", Fraction(1)),
        ("m[IU]/mL", "[IU]/L", Fraction(1)),
        ("[iU]", "[IU]", Fraction(1)),
        ("kcal", "J", Fraction(4184)),
        ("dam", "m", Fraction(10)),
        ("Mg", "kg", Fraction(1000)),
        ("ng/mL", "ug/L", Fraction(1)),
        ("pg", "fg", Fraction(1000)),
    ],
)
def test_exact_factor(src: str, dst: str, expected: Fraction) -> None:
    factor = cf(src, dst)
    assert type(factor) is Fraction
    assert factor == expected


def test_flow_rate_exact() -> None:
    assert 60 * cf("mL/min", "L/h") == Fraction("3.6")


def test_micro_sign_variants() -> None:
    micro_sign, greek_mu = "\u00b5", "\u03bc"
    plain = parse_unit("umol/L")
    for spelling in (f"{micro_sign}mol/L", f"{greek_mu}mol/L"):
        unit = parse_unit(spelling)
        assert unit == plain
        assert unit.text == "umol/L"


def test_creatinine_molar_conversion() -> None:
    # 1 mg/dL = 10 mg/L = 1/100 g/L; / 113.12 g/mol = 1/11312 mol/L = 10**6/11312 umol/L.
    expected = Fraction(62500, 707)
    factor = cf("mg/dL", "umol/L", Fraction("113.12"))
    assert factor == expected
    assert abs(float(factor) - 88.4017) < 1e-4
    assert cf("umol/L", "mg/dL", Fraction("113.12")) == 1 / expected


def test_molar_mass_ignored_for_same_dimensions() -> None:
    assert cf("mg/dL", "g/L", Fraction("113.12")) == Fraction(1, 100)


def test_molar_conversion_needs_positive_mass() -> None:
    with pytest.raises(UnitError, match="positive"):
        cf("mg", "mol", Fraction(0))


def test_mass_to_amount_without_molar_mass_explains() -> None:
    with pytest.raises(UnitError, match="molar mass") as info:
        cf("mg/dL", "mmol/L")
    assert "mass/volume" in info.value.message
    assert "amount/volume" in info.value.message
    assert "the data item's molar_mass" in info.value.message


def test_unit_mismatch_names_the_molar_mass_where_it_converts() -> None:
    mg_dl, mmol_l = parse_unit("mg/dL"), parse_unit("mmol/L")
    assert unit_mismatch(mg_dl, mmol_l, "glucose") == (
        "incompatible units: mg/dL (mass/volume) and mmol/L (amount/volume); mass and amount "
        "of substance convert only through a molar mass: give the data item 'glucose' its "
        "molar_mass, in g/mol"
    )
    # Where no molar mass would convert (no data item), none is suggested.
    assert unit_mismatch(mg_dl, mmol_l) == (
        "incompatible units: mg/dL (mass/volume) and mmol/L (amount/volume)"
    )
    assert "molar" not in unit_mismatch(parse_unit("kg"), parse_unit("mL"), "weight")


@pytest.mark.parametrize(
    ("unit", "number", "message"),
    [
        ("a", "18", "a quantity in years (time); write the unit, e.g. '18 years'"),
        ("d", "1", "a quantity in days (time); write the unit, e.g. '1 day'"),
        ("kg", "40.5", "a quantity in kg (mass); write the unit, e.g. '40.5 kg'"),
        ("mL/min", None, "a quantity in mL/min (volume/time); write the unit, e.g. '60 mL/min'"),
    ],
)
def test_plain_number_suggests_the_literal_with_its_unit(
    unit: str, number: str | None, message: str
) -> None:
    assert plain_number(parse_unit(unit), number) == (
        f"cannot combine a plain number with {message}"
    )


@pytest.mark.parametrize(
    ("number", "unit", "text"),
    [("18", "a", "18 years"), ("1", "mo", "1 month"), ("2", "wk", "2 weeks"), ("5", "%", "5 %")],
)
def test_quantity_text_spells_durations_as_protocols_do(number: str, unit: str, text: str) -> None:
    assert quantity_text(number, parse_unit(unit)) == text
    assert parse_unit(text.split(" ", 1)[1]).dims == parse_unit(unit).dims


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "ucum"),
    [
        ("year", "a"),
        ("years", "a"),
        ("yr", "a"),
        ("month", "mo"),
        ("months", "mo"),
        ("week", "wk"),
        ("weeks", "wk"),
        ("day", "d"),
        ("days", "d"),
        ("hour", "h"),
        ("hours", "h"),
        ("minute", "min"),
        ("minutes", "min"),
        ("second", "s"),
        ("seconds", "s"),
    ],
)
def test_english_aliases_normalise(alias: str, ucum: str) -> None:
    unit = parse_unit(alias)
    assert unit.text == ucum
    assert unit == parse_unit(ucum)


def test_aliases_inside_compound_units() -> None:
    assert parse_unit("mg/day").text == "mg/d"
    assert parse_unit("mL/hours").text == "mL/h"
    assert parse_unit("mIU/mL").text == "m[IU]/mL"
    assert parse_unit("mcg/kg/min").text == "ug/kg/min"


def test_text_kept_as_given() -> None:
    for text in ("mg/dL", "10*9/L", "{cells}/uL", "mL/min/{1.73_m2}", "(mg/dL)", "kg.m/s2"):
        assert parse_unit(text).text == text


def test_leading_slash_inverts_whole_term() -> None:
    # UCUM: main-term := '/' term, so '/s.m' is 1/(s.m), not m/s.
    assert parse_unit("/s.m").dims == parse_unit("s-1.m-1").dims
    assert parse_unit("/uL").factor == 1 / parse_unit("uL").factor


def test_division_is_left_associative() -> None:
    expanded = parse_unit("mg.kg-1.d-1")
    assert parse_unit("mg/kg/d") == Unit("mg/kg/d", expanded.factor, expanded.dims)


def test_parentheses() -> None:
    assert parse_unit("mg/(kg.d)").factor == parse_unit("mg/kg/d").factor
    assert parse_unit("mg/(kg.d)").dims == parse_unit("mg/kg/d").dims


def test_prefixes_only_on_metric_atoms() -> None:
    for bad in ("kmin", "mh", "kd", "m%", "ca", "kwk", "k[lb_av]"):
        with pytest.raises(UnitError, match="cannot take a prefix"):
            parse_unit(bad)
    # Prefixable: metric atoms, including the arbitrary and enzyme units.
    for good in ("kU/L", "m[IU]/mL", "nkat", "mmol", "dL", "kPa", "mm[Hg]"):
        parse_unit(good)


def test_atom_beats_prefix_split() -> None:
    # 'min' is minute (not milli-'in'), 'mol' mole, 'Pa' pascal (not peta-year), 'h' hour.
    assert parse_unit("min").factor == 60
    assert parse_unit("Pa").dims == parse_unit("N/m2").dims
    assert parse_unit("h").factor == 3600


def test_units_are_case_sensitive() -> None:
    assert cf("Mg", "mg") == 10**9
    assert cf("ML", "mL") == 10**9


def test_parse_is_cached() -> None:
    assert parse_unit("mg/dL") is parse_unit("mg/dL")


def test_one() -> None:
    assert ONE.text == "1"
    assert ONE.factor == 1
    assert ONE.dimensionless
    assert parse_unit("1") == ONE
    assert len(ONE.dims) == len(BASE_DIMENSIONS)


# --- errors -------------------------------------------------------------------------------------


def test_incompatible_units_message() -> None:
    with pytest.raises(UnitError) as info:
        cf("mL/min", "mg")
    assert info.value.message == "cannot convert mL/min to mg: volume/time is not mass"
    assert str(info.value) == info.value.message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "offset", "length", "fragment"),
    [
        ("mg/dLL", 3, 3, "unknown unit 'dLL'; did you mean 'dL'?"),
        ("mgg", 0, 3, "unknown unit 'mgg'; did you mean 'mg'?"),
        ("mg/MG", 3, 2, "did you mean 'mg'?"),
        # 'gm' is as close to 'm' as to 'g' by edit distance: the suggestion keeps the start.
        ("gm/dL", 0, 2, "unknown unit 'gm'; did you mean 'g'?"),
        ("mgs", 0, 3, "did you mean 'mg'?"),
        ("wks", 0, 3, "did you mean 'wk'?"),
        ("lbs", 0, 3, "did you mean '[lb_av]'?"),
        ("mmHg", 0, 4, "did you mean 'mm[Hg]'?"),
        ("", 0, 1, "empty unit"),
        ("mg/", 3, 1, "expected a unit after '/'"),
        ("mg//dL", 3, 1, "unexpected '/'"),
        ("mg dL", 2, 1, "whitespace"),
        ("(mg", 0, 1, "missing ')'"),
        ("mg)", 2, 1, "unexpected ')'"),
        ("{cells", 0, 6, "missing '}'"),
        ("[IU/L", 0, 5, "missing ']'"),
        ("m999", 1, 3, "too large"),
        ("2mg", 1, 1, "number must be followed"),
        ("mg/0", 3, 1, "must be positive"),
        ("mg/00", 3, 2, "must be positive"),
        ("\u00b5gg/L", 0, 3, "unknown unit '\u00b5gg'"),
        ("mg.qqqqqq", 3, 6, "unknown unit 'qqqqqq'"),
        # Exponents and factors are ASCII digits; str.isdigit would take these.
        ("m\u00b2", 0, 2, "unknown unit 'm\u00b2'"),
        ("10*\u0663/L", 0, 4, "unknown unit '10*\u0663'"),
    ],
)
def test_parse_errors(text: str, offset: int, length: int, fragment: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_unit(text)
    assert fragment in info.value.message
    assert (info.value.offset, info.value.length) == (offset, length)


def test_unit_error_pickles_with_location() -> None:
    err = UnitError("unknown unit 'x'", 4, 2)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.offset, copy.length) == ("unknown unit 'x'", 4, 2)


# --- algebra and predicates ---------------------------------------------------------------------


def test_unit_operations() -> None:
    mg, dl, ml, minute = (parse_unit(t) for t in ("mg", "dL", "mL", "min"))
    assert (mg / dl).factor == parse_unit("mg/dL").factor
    assert (mg / dl).text == "mg/dL"
    assert (ml / minute).describe_dimension() == "volume/time"
    assert (dl**2).text == "dL2"
    assert (dl**2).factor == Fraction(1, 10**8)
    assert (minute**-1).text == "min-1"
    assert (mg * ONE) is mg
    assert (mg / ONE) is mg
    assert mg**0 == ONE
    assert (ONE / dl).text == "/dL"


def test_is_time() -> None:
    assert all(is_time(parse_unit(t)) for t in ("s", "min", "h", "d", "wk", "mo", "a", "days"))
    assert not any(is_time(parse_unit(t)) for t in ("Hz", "m", "1", "%", "mg/d"))


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("mg/dL", "mass/volume"),
        ("mmol/L", "amount/volume"),
        ("mL/min", "volume/time"),
        ("U/L", "catalytic activity/volume"),
        ("U", "catalytic activity"),
        ("d", "time"),
        ("kg", "mass"),
        ("cm", "length"),
        ("m2", "area"),
        ("L", "volume"),
        ("%", "dimensionless"),
        ("[IU]/mL", "arbitrary units/volume"),
        ("mm[Hg]", "pressure"),
        ("/d", "1/time"),
        ("10*9/L", "1/volume"),
        ("mg/L/h", "mass/(volume·time)"),
    ],
)
def test_describe_dimension(text: str, description: str) -> None:
    assert parse_unit(text).describe_dimension() == description


def test_convertible_and_dimensionless() -> None:
    assert parse_unit("mg/dL").convertible(parse_unit("g/L"))
    assert not parse_unit("mg/dL").convertible(parse_unit("mmol/L"))
    assert not parse_unit("[IU]/L").convertible(parse_unit("U/L"))
    assert parse_unit("mg/g").dimensionless
    assert not parse_unit("mg").dimensionless


# --- properties ---------------------------------------------------------------------------------

CONVERTIBLE_GROUPS: list[list[str]] = [
    ["g", "mg", "ug", "mcg", "kg", "ng", "[lb_av]", "[oz_av]"],
    ["s", "min", "h", "d", "wk", "mo", "a", "days", "years", "ms"],
    ["mg/dL", "g/L", "ug/mL", "ng/mL", "mg/mL", "g/dL"],
    ["mmol/L", "umol/L", "mol/m3", "meq/L", "nmol/mL"],
    ["mL/min", "L/h", "mL/h", "uL/s", "L/d"],
    ["U/L", "kU/L", "ukat/L", "nkat/mL", "mU/mL"],
    ["1", "%", "10*9", "10^3", "{ratio}", "mg/g", "[ppm]", "mmol/mol"],
    ["/uL", "10*9/L", "10*6/mL", "{cells}/uL", "/mm3"],
    ["mm[Hg]", "kPa", "cm[H2O]", "Pa", "bar"],
    ["[IU]/L", "m[IU]/mL", "[iU]/mL", "mIU/mL"],
]

convertible_pair = st.sampled_from(CONVERTIBLE_GROUPS).flatmap(
    lambda group: st.tuples(*[st.sampled_from(group)] * 3)
)


@given(convertible_pair)
def test_conversion_round_trip_is_exact(units: tuple[str, str, str]) -> None:
    a, b, c = units
    assert cf(a, b) * cf(b, a) == 1
    assert cf(a, b) * cf(b, c) == cf(a, c)


MOLAR_MASSES = st.fractions(min_value=Fraction(1, 100), max_value=10**6)


@given(
    st.sampled_from(CONVERTIBLE_GROUPS[2]),
    st.sampled_from(CONVERTIBLE_GROUPS[3]),
    MOLAR_MASSES,
)
def test_molar_round_trip_is_exact(mass_unit: str, amount_unit: str, molar_mass: Fraction) -> None:
    there = cf(mass_unit, amount_unit, molar_mass)
    back = cf(amount_unit, mass_unit, molar_mass)
    assert there * back == 1
    # Independent derivation: through g/L and mol/L, where x g/L is x / M mol/L.
    assert there == cf(mass_unit, "g/L") / molar_mass * cf("mol/L", amount_unit)


SIMPLE_UNITS = [
    "g", "mg", "kg", "ug", "m", "cm", "mm", "s", "min", "h", "d", "wk", "mo", "a", "mol",
    "mmol", "L", "dL", "mL", "uL", "l", "U", "kat", "[IU]", "m[IU]", "%", "eq", "osm", "K",
    "mm[Hg]", "[lb_av]", "[in_i]", "Pa", "10*", "10^", "days", "years", "µg", "μL",
]  # fmt: skip

simple_component = st.builds(
    lambda sym, exp, note: sym + exp + note,
    st.sampled_from(SIMPLE_UNITS),
    st.sampled_from(["", "2", "3", "-1", "-2"]),
    st.sampled_from(["", "", "{x}", "{1.73_m2}"]),
)
component = st.one_of(
    simple_component,
    st.sampled_from(["{cells}", "1", "100"]),
)


@st.composite
def unit_texts(draw: st.DrawFn, depth: int = 2) -> str:
    parts = draw(st.lists(component, min_size=1, max_size=4))
    if depth > 0 and draw(st.booleans()):
        parts.append("(" + draw(unit_texts(depth=depth - 1)) + ")")
    ops = draw(st.lists(st.sampled_from([".", "/"]), min_size=len(parts), max_size=len(parts)))
    text = "".join(op + part for op, part in zip(ops, parts, strict=True))[1:]
    if depth == 2 and draw(st.booleans()):
        text = "/" + text
    return text


@given(unit_texts())
def test_text_round_trips(text: str) -> None:
    unit = parse_unit(text)
    again = parse_unit(unit.text)
    assert (again.factor, again.dims) == (unit.factor, unit.dims)
    assert again.text == unit.text
    assert "µ" not in unit.text and "μ" not in unit.text


@given(unit_texts(), unit_texts(), st.integers(min_value=-3, max_value=3))
def test_algebra_texts_parse_to_same_unit(left: str, right: str, n: int) -> None:
    a, b = parse_unit(left), parse_unit(right)
    for result, factor, dims in (
        (a * b, a.factor * b.factor, tuple(x + y for x, y in zip(a.dims, b.dims, strict=True))),
        (a / b, a.factor / b.factor, tuple(x - y for x, y in zip(a.dims, b.dims, strict=True))),
        (a**n, a.factor**n, tuple(x * n for x in a.dims)),
    ):
        assert (result.factor, result.dims) == (factor, dims)
        reparsed = parse_unit(result.text)
        assert (reparsed.factor, reparsed.dims) == (factor, dims), result.text


@given(st.text(alphabet="mgLdu/.()[]{}0123456789*^+-_ %µIUk", max_size=20))
def test_parser_raises_only_unit_error(text: str) -> None:
    try:
        unit = parse_unit(text)
    except UnitError as err:
        assert 0 <= err.offset <= len(text)
        assert err.length >= 1
        assert err.offset + err.length <= max(len(text), err.offset + 1)
    else:
        assert type(unit.factor) is Fraction
        assert len(unit.dims) == len(BASE_DIMENSIONS)


# --- units in rules: the checker's messages -------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        # The literal's own value, in the spelling protocols use (was "e.g. '60 a'").
        (
            "age between 18 and 75",
            "cannot combine a plain number with a quantity in years (time); write the unit, "
            "e.g. '18 years'",
        ),
        ("age >= 1", "write the unit, e.g. '1 year'"),
        ("weight > 40.5", "a quantity in kg (mass); write the unit, e.g. '40.5 kg'"),
        ("weight > 40 gm", "unknown unit 'gm'; did you mean 'g'?"),
    ],
)
def test_rule_unit_messages_say_what_to_write(rule: str, message: str) -> None:
    with pytest.raises(CheckError) as info:
        check(rule)
    assert message in info.value.diagnostics[0].message


def test_mass_against_amount_names_the_molar_mass_to_give() -> None:
    """An item without a molar mass compared in another dimension of substance: the message
    says which item needs its `molar_mass` (creatinine, which has one, converts)."""
    text = MINI.replace(
        "  ast: {kind: observation",
        "  glucose: {kind: observation, unit: mg/dL}\n  ast: {kind: observation",
    ).replace(
        "rule: latest ast within 7 days before enrollment <= 3 x ULN",
        "rule: latest glucose within 7 days before enrollment <= 7 mmol/L",
    )
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "glucose.yaml"))
    [problem] = info.value.diagnostics
    assert problem.message == (
        "incompatible units: mg/dL (mass/volume) and mmol/L (amount/volume); mass and amount "
        "of substance convert only through a molar mass: give the data item 'glucose' its "
        "molar_mass, in g/mol"
    )
    assert problem.span is not None and problem.span.text == "7 mmol/L"
    check("latest creatinine within 7 days before enrollment <= 100 umol/L")
