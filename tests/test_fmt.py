"""The formatter: layout laws over generated rules (format → parse gives the same AST;
formatting twice changes nothing), every rule of the bundled protocols and fixtures, and
whole files (comments, key order and other bytes kept; released files never written; a
file with errors reported while the others are still formatted)."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import FIXTURES, ROOT, SEED, assert_golden, run
from protocode.amendments.folder import release
from protocode.core.errors import ProtocodeError
from protocode.document.loader import load_protocol
from protocode.document.lock import LOCK_NAME
from protocode.document.model import RuleText
from protocode.fmt import WIDTH, format_rule
from protocode.fmt.files import format_source, protocol_files, read_file, rule_fields
from protocode.fmt.printer import shape
from protocode.language.syntax import ast, parse_rule
from protocode.language.syntax.parser import grammar_text, rule_parser

FMT = FIXTURES / "fmt"


def parse(text: str) -> ast.Expr:
    return parse_rule(RuleText.detached(text))


# ---- rule text from the grammar ---------------------------------------------------------
#
# Every named alternative of grammar/rules.lark has a generator here, keyed by its name (a
# test checks the keys against the grammar). Generators return tokens; `_join` puts
# whitespace between them (spaces, tabs, line breaks, or none where the grammar allows
# it). An expression placed where the grammar wants a tighter one is parenthesized, and
# redundant parentheses are added at random.

Tokens = list[str]

# Binding levels, loosest first, as in the grammar.
IF, OR, AND, NOT, PRED, SUM, PRODUCT, UNARY, POSTFIX, ATOM = range(10)


def _reserved() -> frozenset[str]:
    """The reserved words, read from the grammar's NAME terminal, and the `x` of `3 x ULN`."""
    found = re.search(r"^NAME: /\(\?!\(\?:([^)]*)\)", grammar_text(), re.MULTILINE)
    assert found is not None
    return frozenset([*found[1].split("|"), "x"])


RESERVED = _reserved()
NAMES = st.one_of(
    st.sampled_from(["age", "weight", "crcl", "ecog", "sex", "enrollment", "a", "b_2", "_x"]),
    # names that start like a reserved word, and the reference limits as data item names
    st.sampled_from(["notes", "iffy", "index", "order", "counter", "island", "asa", "ULN", "LLN"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
        lambda name: name not in RESERVED
    ),
)
UNITS = st.sampled_from(
    [
        *("mg", "mL/min", "days", "weeks", "months", "years", "h", "%", "U/L", "10*9/L"),
        *("10^9/L", "ug", "kg", "mg/dL", "umol/L", "µmol/L", "[in_i]", "{cells}/uL", "mg/m2"),
    ]
)
NUMBERS = st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})?", fullmatch=True)
COMPARE = st.sampled_from(["<=", ">=", "==", "!=", "<", ">", "≤", "≥", "≠"])
_CODE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=12)
STRINGS = st.one_of(
    _CODE.filter(lambda s: '"' not in s).map(lambda s: f'"{s}"'),
    _CODE.filter(lambda s: "'" not in s).map(lambda s: f"'{s}'"),
)
DATES = st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")


class RuleGen:
    """Draws the tokens of one rule; `depth` bounds the nesting."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def expr(self, level: int, depth: int, top: str | None = None) -> Tokens:
        """An expression that can stand where the grammar wants binding `level`."""
        if top is None:
            leaves = [name for name, alt in EXPRS.items() if depth > 0 or alt.leaf]
            top = self.draw(st.sampled_from(leaves))
        alt = EXPRS[top]
        tokens = alt.make(self, depth - 1)
        if alt.level < level or (top != "parens" and self.draw(st.integers(0, 11)) == 0):
            return ["(", *tokens, ")"]
        return tokens

    def right(self, depth: int) -> Tokens:
        """A comparison's right side; after a comparison `ULN` is the reference limit, so a
        data item of that name is parenthesized."""
        tokens = self.expr(SUM, depth)
        return ["(", *tokens, ")"] if tokens[0] in LIMIT_NAMES.values() else tokens

    def pick(self, strategy: st.SearchStrategy[str]) -> str:
        return self.draw(strategy)

    def listed(self, depth: int, most: int, level: int) -> Tokens:
        """Zero to `most` comma-separated expressions."""
        out: Tokens = []
        for i in range(self.draw(st.integers(0, most))):
            out += [","] if i else []
            out += self.expr(level, depth)
        return out

    def limit(self) -> Tokens:
        name = LIMIT_NAMES[self.draw(st.sampled_from(sorted(LIMIT_NAMES)))]
        return LIMITS[self.draw(st.sampled_from(sorted(LIMITS)))](self, name)

    def window(self) -> Tokens:
        kind = self.draw(st.sampled_from([None, *sorted(WINDOWS)]))
        return [] if kind is None else WINDOWS[kind](self)


@dataclass(frozen=True)
class Alt:
    """A grammar alternative: the binding level it makes, whether it is a leaf (needs no
    sub-expression), and how to draw it."""

    level: int
    leaf: bool
    make: Callable[[RuleGen, int], Tokens]


def _temporal(op: str) -> Alt:
    return Alt(ATOM, True, lambda g, d: [op, g.pick(NAMES), *g.window()])


def _pred(*tail: str) -> Alt:
    return Alt(PRED, False, lambda g, d: [*g.expr(SUM, d), *tail])


EXPRS: dict[str, Alt] = {
    # boolean structure
    "if_expr": Alt(
        IF,
        False,
        lambda g, d: ["if", *g.expr(IF, d), "then", *g.expr(IF, d), "else", *g.expr(IF, d)],
    ),
    "or_": Alt(OR, False, lambda g, d: [*g.expr(OR, d), "or", *g.expr(AND, d)]),
    "and_": Alt(AND, False, lambda g, d: [*g.expr(AND, d), "and", *g.expr(NOT, d)]),
    "not_": Alt(NOT, False, lambda g, d: ["not", *g.expr(NOT, d)]),
    # predicates
    "compare": Alt(PRED, False, lambda g, d: [*g.expr(SUM, d), g.pick(COMPARE), *g.right(d)]),
    "ref_compare": Alt(PRED, False, lambda g, d: [*g.expr(SUM, d), g.pick(COMPARE), *g.limit()]),
    "between": Alt(
        PRED,
        False,
        lambda g, d: [*g.expr(SUM, d), "between", *g.expr(SUM, d), "and", *g.expr(SUM, d)],
    ),
    "member": Alt(
        PRED, False, lambda g, d: [*g.expr(SUM, d), "in", "{", *g.listed(d, 3, SUM), "}"]
    ),
    "not_member": Alt(
        PRED, False, lambda g, d: [*g.expr(SUM, d), "not", "in", "{", *g.listed(d, 3, SUM), "}"]
    ),
    "is_known": _pred("is", "known"),
    "is_missing": _pred("is", "missing"),
    # arithmetic
    "add": Alt(SUM, False, lambda g, d: [*g.expr(SUM, d), "+", *g.expr(PRODUCT, d)]),
    "sub": Alt(SUM, False, lambda g, d: [*g.expr(SUM, d), "-", *g.expr(PRODUCT, d)]),
    "mul": Alt(PRODUCT, False, lambda g, d: [*g.expr(PRODUCT, d), "*", *g.expr(UNARY, d)]),
    "div": Alt(PRODUCT, False, lambda g, d: [*g.expr(PRODUCT, d), "/", *g.expr(UNARY, d)]),
    "neg": Alt(UNARY, False, lambda g, d: ["-", *g.expr(UNARY, d)]),
    "as_unit": Alt(POSTFIX, False, lambda g, d: [*g.expr(POSTFIX, d), "as", g.pick(UNITS)]),
    # atoms
    "number": Alt(ATOM, True, lambda g, d: [g.pick(NUMBERS)]),
    "quantity": Alt(ATOM, True, lambda g, d: [g.pick(NUMBERS), g.pick(UNITS)]),
    "date": Alt(ATOM, True, lambda g, d: [g.pick(DATES)]),
    "string": Alt(ATOM, True, lambda g, d: [g.pick(STRINGS)]),
    "true": Alt(ATOM, True, lambda g, d: ["true"]),
    "false": Alt(ATOM, True, lambda g, d: ["false"]),
    "name": Alt(ATOM, True, lambda g, d: [g.pick(NAMES)]),
    "call": Alt(ATOM, True, lambda g, d: [g.pick(NAMES), "(", *g.listed(d, 3, IF), ")"]),
    "parens": Alt(ATOM, False, lambda g, d: ["(", *g.expr(IF, d), ")"]),  # `"(" expr ")"`
    # time
    "latest": _temporal("latest"),
    "earliest": _temporal("earliest"),
    "any_": _temporal("any"),
    "no_": _temporal("no"),
    "count": _temporal("count"),
    "ever": Alt(ATOM, True, lambda g, d: ["ever", g.pick(NAMES)]),
}

LIMIT_NAMES = {"uln": "ULN", "lln": "LLN"}
LIMITS: dict[str, Callable[[RuleGen, str], Tokens]] = {
    "ref_multiple": lambda g, name: [g.pick(NUMBERS), g.pick(st.sampled_from("x×")), name],
    "ref_plain": lambda g, name: [name],
}
WINDOWS: dict[str, Callable[[RuleGen], Tokens]] = {
    "within_before": lambda g: ["within", g.pick(NUMBERS), g.pick(UNITS), "before", g.pick(NAMES)],
    "within_after": lambda g: ["within", g.pick(NUMBERS), g.pick(UNITS), "after", g.pick(NAMES)],
    "within_of": lambda g: ["within", g.pick(NUMBERS), g.pick(UNITS), "of", g.pick(NAMES)],
    "before": lambda g: ["before", g.pick(NAMES)],
    "after": lambda g: ["after", g.pick(NAMES)],
}

# Tokens that need no whitespace next to them; braces and `/` do on their left, since a
# unit may contain them (`50 %}` is the unit `%}`, `0 in{` the unit `in{`, `0 mg/a` the
# unit `mg/a`).
_GLUE = frozenset(["(", ")", ",", "{", "+", "-", "*", "/", "<", ">", "<=", ">=", "==", "!="])
_GLUE |= {"≤", "≥", "≠"}
_SPACES = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\n      ", " \n  "])


def _glues(left: str, right: str) -> bool:
    if right in ("{", "}", "/") or not (left in _GLUE or right in _GLUE):
        return False
    # `2024` `-` `01` `-` `011` glued would read as a date and then a number
    return not ("-" in (left, right) and (left[-1:].isdigit() or right[:1].isdigit()))


def _join(
    draw: Callable[[st.SearchStrategy[str]], str], tokens: Tokens, one_line: bool = False
) -> str:
    out = tokens[0]
    for left, right in itertools.pairwise(tokens):
        space = draw(_SPACES)
        if one_line:
            space = " " if "\n" in space else space
        if _glues(left, right) and draw(st.sampled_from(["", space])) == "":
            space = ""
        out += space + right
    return out


@st.composite
def rule_tokens(draw: st.DrawFn, top: str | None = None, max_depth: int = 4) -> Tokens:
    """The tokens of a rule; `top` forces the outermost alternative."""
    depth = draw(st.integers(0 if top is None else 1, max_depth))
    return RuleGen(draw).expr(IF, depth, top)


@st.composite
def rule_texts(draw: st.DrawFn, top: str | None = None, max_depth: int = 4) -> str:
    """Rule text that parses, drawn from the grammar."""
    return _join(draw, draw(rule_tokens(top, max_depth)))


def test_the_generator_covers_every_alternative_of_the_grammar() -> None:
    aliases = set(re.findall(r"->\s*(\w+)", grammar_text()))
    generated = set(EXPRS) - {"parens"} | set(LIMIT_NAMES) | set(LIMITS) | set(WINDOWS)
    assert generated == aliases


@pytest.mark.parametrize("top", sorted(EXPRS))
@settings(max_examples=20)
@given(data=st.data())
def test_each_generator_makes_its_alternative(top: str, data: st.DataObject) -> None:
    text = data.draw(rule_texts(top, max_depth=2))
    tree = rule_parser().parse(text)
    if top != "parens":
        assert tree.data == top, text


WIDTHS = st.sampled_from([WIDTH, WIDTH, 40, 20])


@given(rule_texts(), WIDTHS)
def test_format_then_parse_gives_the_same_ast(text: str, width: int) -> None:
    formatted = format_rule(text, width)
    assert shape(parse(formatted)) == shape(parse(text))


@given(rule_texts(), WIDTHS)
def test_formatting_twice_changes_nothing(text: str, width: int) -> None:
    formatted = format_rule(text, width)
    assert format_rule(formatted, width) == formatted
    assert all(line == line.rstrip() for line in formatted.split("\n"))


@given(st.data())
def test_spacing_within_a_line_does_not_matter(data: st.DataObject) -> None:
    tokens = data.draw(rule_tokens())
    spaced = _join(data.draw, tokens, one_line=True)
    assert format_rule(spaced) == format_rule(" ".join(tokens))


# ---- the layout, by example (docs/fmt.md) -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a≤3 × ULN  and(b or c)", "a <= 3 x ULN and (b or c)"),
        ("ecog ≥ 0 and ecog ≠ 5", "ecog >= 0 and ecog != 5"),
        ("a or b and c", "a or (b and c)"),
        ("(a or b) and c", "(a or b) and c"),
        ("((weight as kg))*2", "(weight as kg) * 2"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("- (-a)", "--a"),
        ("not(a)", "not a"),
        ("not (a and b)", "not (a and b)"),
        ("f( a,b )", "f(a, b)"),
        ("x not in{1,2 ,3}", "x not in {1, 2, 3}"),
        ("lvef in {50 % ,60 %  }", "lvef in {50 %, 60 % }"),
        ("sex == 'female'", 'sex == "female"'),
        ("code == 'say \"hi\"'", "code == 'say \"hi\"'"),
        ("a <= 2.0 x ULN", "a <= 2.0 x ULN"),
        ("a <= (ULN)", "a <= (ULN)"),
        (
            "if if a then b else c then d else if e then f else g",
            "if (if a then b else c) then d else if e then f else g",
        ),
        (
            "latest  ast within 7 days before enrollment",
            "latest ast within 7 days before enrollment",
        ),
        ("a and b # a comment", "a and b # a comment"),
    ],
)
def test_canonical_layout(text: str, expected: str) -> None:
    assert format_rule(text) == expected


def test_long_rules_break_before_operators() -> None:
    long = " and ".join(f"item_{i} >= {i} mg" for i in range(6))
    assert format_rule(long, 50) == (
        "item_0 >= 0 mg and item_1 >= 1 mg\n"
        "and item_2 >= 2 mg and item_3 >= 3 mg\n"
        "and item_4 >= 4 mg and item_5 >= 5 mg"
    )
    crcl = (
        "(140 - age as years) * (weight as kg) / (72 * (scr as mg/dL))"
        ' * (if sex == "female" then 0.85 else 1)'
    )
    assert format_rule(crcl, 60) == (
        "(140 - age as years) * (weight as kg)\n"
        "/ (72 * (scr as mg/dL))\n"
        '* (if sex == "female" then 0.85 else 1)'
    )
    branches = "if a_long_condition >= 5 mg then some_value + 3 else (other or b)"
    assert format_rule(branches, 40) == (
        "if a_long_condition >= 5 mg\nthen some_value + 3\nelse other or b"
    )


def test_a_long_rule_keeps_the_authors_breaks_a_short_one_is_joined() -> None:
    grouped = "a >= 1 and b >= 2\nand c >= 3 and d >= 4"
    assert format_rule(grouped) == "a >= 1 and b >= 2 and c >= 3 and d >= 4"
    assert format_rule(grouped, 30) == grouped
    assert format_rule("a >= 1 and b >= 2 and c >= 3 and d >= 4", 30) == (
        "a >= 1 and b >= 2 and c >= 3\nand d >= 4"
    )


def test_syntax_errors_are_rule_syntax_errors() -> None:
    with pytest.raises(ProtocodeError) as info:
        format_rule("a >= ")
    assert info.value.diagnostics[0].code == "syntax"


# ---- every rule of the bundled protocols and fixtures -----------------------------------


def _protocol_files() -> list[Path]:
    found = []
    for path in sorted([*ROOT.joinpath("protocol").rglob("*.yaml"), *FIXTURES.rglob("*.yaml")]):
        try:
            load_protocol(path)
        except ProtocodeError:
            continue
        found.append(path)
    return found


PROTOCOL_FILES = _protocol_files()


def test_the_bundled_files_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PROTOCOL_FILES}
    assert {f"protocol/NCT06125106/v{i}.yaml" for i in range(1, 5)} <= names
    assert len(names) > 20


@pytest.mark.parametrize(
    "path", PROTOCOL_FILES, ids=[p.relative_to(ROOT).as_posix() for p in PROTOCOL_FILES]
)
def test_every_bundled_rule_formats_to_the_same_ast_once_and_for_all(path: Path) -> None:
    doc = load_protocol(path)
    for item in rule_fields(doc):
        try:
            original = parse(item.rule.text)
        except ProtocodeError:
            continue  # a fixture of a syntax error
        for width in (WIDTH, 40):
            formatted = format_rule(item.rule.text, width)
            assert shape(parse(formatted)) == shape(original), item.what
            assert format_rule(formatted, width) == formatted, item.what
    try:
        once = format_source(read_file(path))
    except ProtocodeError:
        return  # a fixture of a syntax error: see the file tests below
    assert not format_source(once.source.__class__(str(path), once.text)).changed


# ---- files -------------------------------------------------------------------------------

MESSY = FMT / "messy.yaml"


def test_a_file_keeps_comments_key_order_and_untouched_bytes() -> None:
    source = read_file(MESSY)
    formatted = format_source(source)
    assert formatted.changed
    assert_golden(formatted.text, FMT / "messy.formatted.yaml")
    # Outside the rule scalars the bytes are the original's, in order.
    kept, at = [], 0
    for edit in sorted(formatted.edits, key=lambda e: e.start):
        kept.append(source.text[at : edit.start])
        at = edit.end
    kept.append(source.text[at:])
    pos = 0
    for piece in kept:
        found = formatted.text.find(piece, pos)
        assert found >= 0, piece
        pos = found + len(piece)
    comments = [line for line in source.text.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(c in formatted.text.splitlines() for c in comments)
    # The rule with a comment is left as written, with a note.
    assert [d.code for d in formatted.kept] == ["fmt"]
    assert "lose its comment" in formatted.kept[0].message
    # The formatted file is canonical.
    assert not format_source(formatted.source.__class__(source.path, formatted.text)).changed


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(MESSY.read_bytes().replace(b"\n", b"\r\n"))
    formatted = format_source(read_file(path))
    assert formatted.changed
    assert "\n" not in formatted.text.replace("\r\n", "")


def test_fmt_check_passes_on_the_bundled_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "fmt", "--check", ROOT / "protocol")
    assert status == 0, out + err
    assert out.strip().endswith("already formatted")
    assert "would reformat" not in out


def test_fmt_check_shows_a_diff_and_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    before = MESSY.read_bytes()
    status, out, err = run(capsys, "fmt", "--check", MESSY.relative_to(ROOT))
    assert status == 1
    assert MESSY.read_bytes() == before
    assert_golden(out, FMT / "messy.check.out")
    assert "rule left as written" in err


def test_fmt_writes_files_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "messy.yaml"
    shutil.copy(MESSY, path)
    status, out, _ = run(capsys, "fmt", path)
    assert status == 0
    assert path.read_text(encoding="utf-8") == (FMT / "messy.formatted.yaml").read_text("utf-8")
    assert f"reformatted {path}" in out
    status, out, _ = run(capsys, "fmt", "--check", path)
    assert status == 0 and "1 file already formatted" in out


def test_a_released_file_is_never_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "trial"
    folder.mkdir()
    v1 = folder / "v1.yaml"
    v1.write_text(
        (SEED / "v1.yaml")
        .read_text(encoding="utf-8")
        .replace("age between 18 years and 70 years", "age between 18  years and(70 years)"),
        encoding="utf-8",
    )
    assert format_source(read_file(v1)).changed
    release(folder)
    before = v1.read_bytes()
    for check in ([], ["--check"]):
        status, out, err = run(capsys, "fmt", *check, folder)
        assert status == 0, out + err
        assert v1.read_bytes() == before
        assert f"note: {v1} is released ({LOCK_NAME}), so it is left as written" in err


def test_a_file_with_errors_is_reported_and_the_others_formatted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(MESSY, tmp_path / "good.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MESSY.read_text(encoding="utf-8").replace("age>=18 years", "age >= 18 years and"),
        encoding="utf-8",
    )
    status, out, err = run(capsys, "fmt", tmp_path)
    assert status == 1
    assert f"reformatted {tmp_path / 'good.yaml'}" in out
    assert f"{bad}:29:53: syntax: the rule ends too early" in err
    assert re.search(r"^\s+\|\s+\^", err, re.M), err  # the caret under the source line
    assert (tmp_path / "good.yaml").read_text("utf-8") != MESSY.read_text("utf-8")


def test_usage_errors_are_reported_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "fmt", tmp_path / "nowhere")
    assert status == 1
    assert "no such file or folder" in err and "Traceback" not in err
    (tmp_path / "empty.yaml").write_text("protocode: 1\n", encoding="utf-8")
    status, _, err = run(capsys, "fmt", tmp_path / "empty.yaml")
    assert status == 1 and "Traceback" not in err


def test_protocol_files_are_found_in_version_order(tmp_path: Path) -> None:
    for name in ("v10.yaml", "v2.yaml", "notes.yaml"):
        (tmp_path / name).write_text("protocode: 1\n" if name != "notes.yaml" else "x: 1\n")
    assert [p.name for p in protocol_files(tmp_path)] == ["v2.yaml", "v10.yaml"]
