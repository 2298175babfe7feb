"""Long chains of definitions (issue 11, items 6 and 7): every stage answers, in linear size.

A chain of 400 definitions (`d2: d1 + 1`, …) is deeper than `check` allows: one located
error names the definition that crosses the bound, and nothing else is reported. A chain
within the bound, and definitions that each use the previous one twice (`d2: d1 + d1`),
give results from every stage, and the generated SQL grows linearly with the protocol.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocode.check import check_protocol
from protocode.check.checker import MAX_NESTING
from protocode.errors import CheckError
from protocode.loader import load_protocol_text

HEADER = """\
protocode: 1
protocol: {registry_id: TEST-DEFS, title: Definitions, version: "1"}
data:
  enrollment: {kind: anchor}
  v: {type: integer, minimum: 0, maximum: 10}
definitions:
"""


def chain(n: int, *, doubled: bool = False, reverse: bool = False, cycle: bool = False) -> str:
    """A protocol whose definition d<k> uses d<k-1> (twice when `doubled`); one criterion
    reads d<n>. `reverse` lists the definitions last first; `cycle` makes d1 use d<n>."""
    lines = [f"  d1: {f'd{n}' if cycle else 'v'} + 1"]
    for k in range(2, n + 1):
        lines.append(f"  d{k}: d{k - 1} + {f'd{k - 1}' if doubled else '1'}")
    if reverse or cycle:
        lines.reverse()
    criteria = f"criteria:\n  inclusion:\n    - {{id: I1, text: Deep, rule: d{n} >= 1}}\n"
    return HEADER + "\n".join(lines) + "\n" + criteria


def only_error(text: str) -> str:
    """The one diagnostic `check` gives for a protocol, rendered with its caret."""
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "deep.yaml"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.span is not None
    return info.value.render()


# ---- check


@pytest.mark.parametrize("reverse", [False, True])
def test_a_chain_of_400_definitions_is_one_located_error(reverse: bool) -> None:
    # d<k> nests 2k levels deep: d129 is the first past the bound, and the only one
    # reported (those that use it, and the criterion, depend on its error).
    text = chain(400, reverse=reverse)
    rendered = only_error(text)
    line = text.splitlines().index("  d129: d128 + 1") + 1
    assert rendered.startswith(f"deep.yaml:{line}:9: too-deep: definition 'd129' nests 258 ")
    assert f"at most {MAX_NESTING}" in rendered
    assert "(through d128 -> d127 -> " in rendered and "-> d1)" in rendered
    assert "  d129: d128 + 1\n" in rendered and "^^^^" in rendered


def test_a_cycle_of_400_definitions_is_one_located_error() -> None:
    rendered = only_error(chain(400, cycle=True))
    assert "cycle: definitions form a cycle: d400 -> d399 -> " in rendered
    assert "… (394 more) -> d400" in rendered


def test_a_criterion_past_the_bound_through_definitions_is_located_at_it() -> None:
    # d127 nests 254 levels: within the bound; the criterion adds its own levels.
    text = chain(127).replace("rule: d127 >= 1", "rule: not (not (d127 >= 1))")
    rendered = only_error(text)
    assert "too-deep: the rule nests 258 levels deep" in rendered
    assert "not (not (d127 >= 1))" in rendered


def test_the_seed_protocol_is_far_within_the_bound() -> None:
    seed = Path(__file__).resolve().parent.parent / "protocol" / "NCT06125106" / "v4.yaml"
    checked = check_protocol(load_protocol_text(seed.read_text("utf-8"), str(seed)))
    assert list(checked.definitions) == ["age", "scr", "crcl"]


def test_definitions_come_after_the_ones_they_use() -> None:
    checked = check_protocol(load_protocol_text(chain(100, reverse=True), "deep.yaml"))
    assert list(checked.definitions) == [f"d{k}" for k in range(1, 101)]
