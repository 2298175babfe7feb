"""Mutations for the fuzz suite: bytes, YAML text, rule text and JSON values.

Every mutation is a hypothesis strategy that takes the text or bytes of a seed file and
returns the mutated version with a short note of what was done (kept with a failing input,
so a reproducer says how it was made). Text-aware mutations edit the seed's text in place,
so everything they do not touch keeps its bytes and its line and column.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from hypothesis import strategies as st

Mutated = tuple[bytes, str]

# Past 4,300 digits CPython refuses int(str) (the item 5); 11 digits overflow dates
# and dose counts.
HUGE_NUMBERS = (
    "9" * 4301,
    "1" + "0" * 5000,
    "99999999999",
    "-99999999999",
    "1e400",
    "-1e-400",
    "0." + "0" * 400 + "1",
    "1" * 400,
)

SPECIAL_BYTES = (
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\n",
    b"\r",
    b"\t",
    b" ",
    b'"',
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"- ",
    b"#",
    b"&a ",
    b"*a ",
    b"!!binary ",
    b"? ",
    b"|\n",
    b"\\",
    "é".encode(),
    "\u2028".encode(),
    "\U0001f600".encode(),
    b"9" * 4400,
)


# --- bytes ------------------------------------------------------------------------------------


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> Mutated:
    """One to three byte edits: flip a bit, insert, delete, duplicate a run, truncate."""
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "duplicate", "truncate")))
        i = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(i, len(data) - 1)
            bit = draw(st.integers(0, 7))
            data = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
        elif op == "insert":
            chunk = draw(st.sampled_from(SPECIAL_BYTES) | st.binary(min_size=1, max_size=8))
            data = data[:i] + chunk + data[i:]
        elif op in ("delete", "duplicate"):
            j = draw(st.integers(i, min(len(data), i + 200)))
            data = data[:i] + data[j:] if op == "delete" else data[:j] + data[i:j] + data[j:]
        elif op == "truncate":
            data = data[:i]
        notes.append(f"{op}@{i}")
    return data, "bytes: " + ", ".join(notes)


# --- YAML text --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YamlNode:
    """A node of a seed YAML file: where its text is and what it is."""

    start: int
    end: int
    role: str  # "key", "value" (of a mapping) or "item" (of a sequence)
    path: tuple[str, ...]  # mapping keys from the root ("#" for sequence items)
    scalar: bool
    value: str  # a scalar's value; "" for collections


@lru_cache(maxsize=64)
def yaml_nodes(text: str) -> tuple[YamlNode, ...]:
    """Every node of `text` but the root, in document order."""
    out: list[YamlNode] = []

    def walk(node: yaml.Node, role: str, path: tuple[str, ...]) -> None:
        scalar = isinstance(node, yaml.ScalarNode)
        if role:
            out.append(
                YamlNode(
                    node.start_mark.index,
                    node.end_mark.index,
                    role,
                    path,
                    scalar,
                    str(node.value) if scalar else "",
                )
            )
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                walk(key, "key", (*path, name))
                walk(value, "value", (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, "item", (*path, "#"))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, "", ())
    return tuple(out)


def deep_flow(depth: int, opener: str) -> str:
    """A flow collection nested `depth` deep: ``[[[x]]]`` or ``{a: {a: x}}``."""
    closer = "]" if opener == "[" else "}"
    return opener * depth + "x" + closer * depth


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow sequence whose aliases expand to ``width ** levels`` scalars (billion laughs)."""
    parts = ["&a0 [" + ", ".join(["x"] * width) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


YAML_VALUES = st.one_of(
    st.sampled_from(HUGE_NUMBERS),
    st.sampled_from(
        (
            "~",
            "''",
            "true",
            "[]",
            "{}",
            "[1, 2]",
            "{a: 1}",
            '"I1\\n"',
            '"x\\ny"',
            "-1",
            "0",
            ".nan",
            ".inf",
            "2024-02-30",
            "0000-01-01",
            "9999-12-31",
            '"' + "x" * 70_000 + '"',
            "*undefined",
            "!!binary aGVsbG8=",
            "!!python/object:os.system x",
            "!!set {a, b}",
            "!!float 1",
            "60 mL/min",
            "28 ug",
            "1 [lb_av]",
            '"\\u0000"',
            "<<",
        )
    ),
    st.tuples(st.sampled_from(("[", "{a: ")), st.sampled_from((50, 330, 1000, 3000))).map(
        lambda p: deep_flow(p[1], p[0])
    ),
    st.integers(2, 9).map(lambda n: alias_bomb(n, 9)),
    st.text(max_size=20).map(json.dumps),
)

YAML_KEYS = st.sampled_from(
    (
        "9" * 5000,
        "1",
        "true",
        "~",
        "[a, b]",
        "{a: 1}",
        '"id\\n"',
        '""',
        "<<",
        "'x y'",
        "&k key",
        "*k",
        "!!binary aGVsbG8=",
    )
)


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The start of the line holding `start` and the end (after the newline) of `end`'s."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", max(end - 1, start))
    return first, len(text) if last < 0 else last + 1


RULE_TOKENS = (
    "and",
    "or",
    "not",
    "(",
    ")",
    "+",
    "-",
    "*",
    "/",
    "/ 0",
    "x ULN",
    "x LLN",
    "==",
    "=",
    ">=",
    "between 1 and 2",
    "in {1, 2}",
    "is known",
    "is missing",
    "if",
    "then",
    "else",
    "latest",
    "any",
    "count",
    "ever",
    "within 7 days before enrollment",
    "as kg",
    "mg/dL",
    "10^99 kg",
    "umol/L",
    "days",
    "months",
    '"B-ALL"',
    "2024-02-29",
    "9" * 4400,
    "0.000000000001",
    "age",
    "crcl",
    "weight",
    "creatinine",
    "enrollment",
    "undefined_name",
    "min(",
    "abs(",
    "round(",
    ",",
    "{",
    "}",
    "'",
    '"',
    "\\",
    "é",
    "²",
    "٣",
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@st.composite
def rule_mutation(draw: st.DrawFn, rule: str) -> tuple[str, str]:
    """A rule's text changed: a token inserted or removed, a number replaced, deep nesting."""
    op = draw(st.sampled_from(("insert", "delete", "number", "parens", "not", "sum")))
    words = rule.split(" ")
    if op == "insert":
        i = draw(st.integers(0, len(words)))
        words.insert(i, draw(st.sampled_from(RULE_TOKENS)))
        return " ".join(words), f"rule: insert at word {i}"
    if op == "delete" and len(words) > 1:
        i = draw(st.integers(0, len(words) - 1))
        del words[i]
        return " ".join(words), f"rule: delete word {i}"
    numbers = list(_NUMBER.finditer(rule))
    if op == "number" and numbers:
        m = draw(st.sampled_from(numbers))
        new = draw(st.sampled_from((*HUGE_NUMBERS[:4], "0", "0.0000000001", "1e5")))
        return rule[: m.start()] + new + rule[m.end() :], f"rule: number {m.group()} -> {new[:12]}"
    depth = draw(st.sampled_from((10, 300, 1000, 3000)))
    if op == "parens":
        return "(" * depth + rule + ")" * depth, f"rule: {depth} parentheses"
    if op == "not":
        return "not " * depth + rule, f"rule: not x{depth}"
    return rule + " + 1" * depth, f"rule: + 1 x{depth}"


def _replace(text: str, start: int, end: int, new: str) -> str:
    """`text` with the node at `start:end` replaced by `new`. A block scalar's node ends
    after its line break (and blank lines); they are kept, so the next entry stays on a line
    of its own."""
    old = text[start:end]
    kept = old[len(old.rstrip()) :] if "\n" in old[len(old.rstrip()) :] else ""
    return text[:start] + new + kept + text[end:]


@st.composite
def yaml_mutation(draw: st.DrawFn, text: str) -> Mutated:
    """A YAML-aware edit of `text`: a scalar, key, rule or entry replaced, deleted or nested."""
    nodes = yaml_nodes(text)
    op = draw(st.sampled_from(("value", "key", "delete", "rule", "lines", "id", "chain")))
    values = [n for n in nodes if n.role != "key"]
    if op == "key":
        node = draw(st.sampled_from([n for n in nodes if n.role == "key"]))
        new = draw(YAML_KEYS)
        return _done(_replace(text, node.start, node.end, new), f"key {_where(node)} -> {new}")
    if op == "delete":
        node = draw(st.sampled_from([n for n in nodes if n.role != "value"]))
        first, last = _line_bounds(text, node.start, _entry_end(nodes, node))
        return _done(text[:first] + text[last:], f"delete {_where(node)}")
    if op == "rule":
        rules = [n for n in nodes if n.scalar and n.role == "value" and _is_rule(n.path)]
        if rules:
            node = draw(st.sampled_from(rules))
            new, note = draw(rule_mutation(node.value))
            return _done(_replace(text, node.start, node.end, json.dumps(new)), note)
    if op == "lines":
        return draw(line_mutation(text))
    if op == "id":
        ids = [n for n in nodes if n.scalar and n.role == "value" and n.path[-1:] == ("id",)]
        if ids:
            node = draw(st.sampled_from(ids))
            new = json.dumps(node.value + draw(st.sampled_from(("\n", " ", "\t", "\x00", "é"))))
            return _done(_replace(text, node.start, node.end, new), f"id {node.value!r} -> {new}")
    if op == "chain":
        chained = definition_chain(text, draw(st.integers(1, 400)), draw(st.booleans()))
        if chained is not None:
            return chained
    node = draw(st.sampled_from(values))
    new = draw(YAML_VALUES)
    return _done(_replace(text, node.start, node.end, new), f"value {_where(node)} -> {new[:40]}")


def _done(text: str, note: str) -> Mutated:
    return text.encode("utf-8", "surrogatepass"), note


def _where(node: YamlNode) -> str:
    return "/".join(node.path) or "/"


def _entry_end(nodes: tuple[YamlNode, ...], node: YamlNode) -> int:
    """Where a key's entry ends (its value's end); other nodes end where they end."""
    if node.role == "key":
        for other in nodes:
            if other.role == "value" and other.path == node.path and other.start >= node.end:
                return other.end
    return node.end


def _is_rule(path: tuple[str, ...]) -> bool:
    return path[-1:] == ("rule",) or (len(path) == 2 and path[0] == "definitions")


@st.composite
def line_mutation(draw: st.DrawFn, text: str) -> Mutated:
    """A line deleted, duplicated, swapped with the next, indented or dedented."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return text.encode(), "lines: empty"
    i = draw(st.integers(0, len(lines) - 1))
    op = draw(st.sampled_from(("delete", "duplicate", "swap", "indent", "dedent", "tab")))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap" and i + 1 < len(lines):
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif op == "indent":
        lines[i] = "  " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i].removeprefix("  ")
    else:
        lines[i] = "\t" + lines[i]
    return _done("".join(lines), f"lines: {op} line {i + 1}")


def definition_chain(text: str, length: int, twice: bool) -> Mutated | None:
    """`length` definitions, each using the one before (twice when `twice`), read by the first
    criterion's rule: the issue's items 6 (deep chains) and 7 (shared sub-expressions)."""
    nodes = yaml_nodes(text)
    keys = [n for n in nodes if n.role == "key" and len(n.path) == 2 and n.path[0] == "definitions"]
    rules = [n for n in nodes if n.role == "value" and n.path[-1:] == ("rule",) and n.scalar]
    rules = [n for n in rules if n.path[0] == "criteria"]
    if not keys or not rules:
        return None
    first = keys[0]
    column = first.start - (text.rfind("\n", 0, first.start) + 1)
    use = "fz{0} + fz{0}" if twice else "fz{0} + 1 kg"
    chain = ["fz1: weight\n"] + [f"fz{i}: {use.format(i - 1)}\n" for i in range(2, length + 1)]
    block = "".join(" " * column + line for line in chain)
    rule = rules[0]
    # Edit the later place first, so the earlier offset stays right.
    edited = _replace(text, rule.start, rule.end, json.dumps(f"fz{length} > 1 kg"))
    line_start = text.rfind("\n", 0, first.start) + 1
    edited = edited[:line_start] + block + edited[line_start:]
    return _done(edited, f"chain of {length} definitions{' used twice' if twice else ''}")


# --- JSON values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text written as is: numbers past Python's int-string limit, very deep nesting."""

    text: str


def dumps(value: Any) -> str:
    """JSON text of `value`, with `Raw` pieces written verbatim (kept on one line)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def deep_json(depth: int, kind: str) -> Raw:
    """A JSON list or object nested `depth` deep."""
    if kind == "list":
        return Raw("[" * depth + "1" + "]" * depth)
    return Raw('{"a": ' * depth + "1" + "}" * depth)


JSON_VALUES = st.one_of(
    st.sampled_from(HUGE_NUMBERS[:6]).map(Raw),
    st.sampled_from(
        (
            None,
            True,
            False,
            0,
            -1,
            1.5,
            "",
            "x" * 200_000,
            "2024-02-30",
            "2024-03-01T25:00:00Z",
            "1800-01-01",
            "10000-01-01",
            "not a date",
            "mg/dL",
            "[lb_av]",
            "10^99",
            "positive",
            "I1\n",
            "../v1.yaml",
            "v1.yaml\n",
            "v*.yaml",
            "/dev/zero",
            [],
            {},
            [1, "a", None],
            {"value": 1},
            {"value": "1", "unit": "kg"},
            {"date": "2024-01-01"},
        )
    ),
    st.sampled_from((Raw("NaN"), Raw("Infinity"), Raw("-0"), Raw("1E+999999"))),
    st.tuples(st.sampled_from((100, 1000, 3000)), st.sampled_from(("list", "dict"))).map(
        lambda p: deep_json(*p)
    ),
    st.text(max_size=10),
    st.integers(),
)


def deep_expression(doc: dict[str, Any], index: int, levels: int) -> tuple[Any, str]:
    """A compiled document whose `index`-th rule criterion is wrapped in `levels` `not` nodes
    (its meaning kept when `levels` is even), written as `Raw` text: past 80 levels load_json
    recursed out of the stack, and `check` accepts 256 counting definitions."""
    rules = [c for c in doc["criteria"] if c.get("expr") is not None]
    criterion = rules[index % len(rules)]
    expr = criterion["expr"]
    around = f', "type": {dumps(expr["type"])}, "span": {dumps(expr["span"])}}}'
    criterion["expr"] = Raw('{"node": "not", "operand": ' * levels + dumps(expr) + around * levels)
    return doc, f"json: {criterion['id']} inside {levels} not nodes"


def json_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node below `value` (keys and list indexes)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from json_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i)
            yield from json_paths(v, (*path, i))


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        value = value[step]
    return value


@st.composite
def json_mutation(
    draw: st.DrawFn, value: Any, paths: Callable[[Any], list[tuple[Any, ...]]] | None = None
) -> tuple[Any, str]:
    """`value` (a fresh copy, mutated): a node replaced, deleted, duplicated or renamed, or an
    unknown key added. `paths` picks the candidate nodes (default: all)."""
    value = copy.deepcopy(value)
    candidates = paths(value) if paths else list(json_paths(value))
    if not candidates:
        return value, "json: nothing to mutate"
    path = draw(st.sampled_from(candidates))
    parent, last = _parent(value, path), path[-1]
    op = draw(st.sampled_from(("replace", "replace", "delete", "duplicate", "rename", "add")))
    where = "/".join(map(str, path))
    if op == "delete":
        del parent[last]
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif op == "rename" and isinstance(parent, dict):
        new = draw(st.sampled_from(("", "9" * 5000, "Id", "x\n", last + "_", "attestations")))
        parent[new] = parent.pop(last)
        return value, f"json: rename {where} -> {new[:12]!r}"
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from(("unknown", "", "9" * 5000)))] = draw(JSON_VALUES)
    else:
        new = draw(JSON_VALUES)
        parent[last] = new
        return value, f"json: {where} -> {_short(new)}"
    return value, f"json: {op} {where}"


def _short(value: Any) -> str:
    text = value.text if isinstance(value, Raw) else repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
