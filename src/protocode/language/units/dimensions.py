"""Dimension vectors: what a unit measures, as exponents of the base dimensions.

A unit's dimension is a tuple of integer exponents over `BASE_DIMENSIONS` (mass, length,
time, amount, temperature, arbitrary); units convert into each other exactly when their
vectors are equal. `describe_dims` puts a vector into words for messages.
"""

from __future__ import annotations

import functools
from typing import TypeAlias

BASE_DIMENSIONS: tuple[str, ...] = (
    "mass",
    "length",
    "time",
    "amount",
    "temperature",
    "arbitrary",
)
"""Names of the dimension-vector axes. Coherent base units are g, m, s, mol, K and [IU]."""

Dims: TypeAlias = tuple[int, ...]
"""A dimension vector: one integer exponent per base dimension."""

MASS = BASE_DIMENSIONS.index("mass")
"""The index of mass in a `Dims`."""

NO_DIMS: Dims = (0,) * len(BASE_DIMENSIONS)
"""The dimension of pure numbers."""


def add_dims(a: Dims, b: Dims) -> Dims:
    """The dimension of a product."""
    return tuple(x + y for x, y in zip(a, b, strict=True))


def sub_dims(a: Dims, b: Dims) -> Dims:
    """The dimension of a quotient."""
    return tuple(x - y for x, y in zip(a, b, strict=True))


def scale_dims(a: Dims, n: int) -> Dims:
    """The dimension of a power."""
    return tuple(x * n for x in a)


def dim(
    *,
    mass: int = 0,
    length: int = 0,
    time: int = 0,
    amount: int = 0,
    temperature: int = 0,
    arbitrary: int = 0,
) -> Dims:
    """A dimension vector by exponent of each base dimension (0 where not given)."""
    return (mass, length, time, amount, temperature, arbitrary)


# Quantities named on their own; order matters only for decomposing products (largest first).
_POSITIVE_NAMES: tuple[tuple[Dims, str], ...] = (
    (dim(length=3), "volume"),
    (dim(length=2), "area"),
    (dim(mass=1), "mass"),
    (dim(amount=1), "amount"),
    (dim(arbitrary=1), "arbitrary units"),
    (dim(time=1), "time"),
    (dim(length=1), "length"),
    (dim(temperature=1), "temperature"),
)
# Named quantities that are themselves ratios; they are used as a numerator only when the
# whole quantity appears, so 'U/L' reads 'catalytic activity/volume' but '/d' stays '1/time'.
_MIXED_NAMES: tuple[tuple[Dims, str], ...] = (
    (dim(amount=1, time=-1), "catalytic activity"),
    (dim(mass=1, length=-1, time=-2), "pressure"),
    (dim(mass=1, length=2, time=-2), "energy"),
    (dim(mass=1, length=1, time=-2), "force"),
)


def _describe_product(dims: Dims) -> str:
    """Words for a dimension vector with non-negative exponents, e.g. 'mass·time'."""
    remaining = list(dims)
    parts: list[str] = []
    for vec, name in _POSITIVE_NAMES:
        count = 0
        while any(remaining) and all(r >= v for r, v in zip(remaining, vec, strict=True)):
            remaining = [r - v for r, v in zip(remaining, vec, strict=True)]
            count += 1
        if count:
            parts.append(name if count == 1 else f"{name}^{count}")
    return "·".join(parts) or "1"


@functools.cache
def describe_dims(dims: Dims) -> str:
    """Words for a dimension vector: 'mass/volume', 'volume/time', 'dimensionless'."""
    if dims == NO_DIMS:
        return "dimensionless"
    for vec, name in _POSITIVE_NAMES + _MIXED_NAMES:
        if vec == dims:
            return name
    for vec, name in _MIXED_NAMES:
        if all(d == v for d, v in zip(dims, vec, strict=True) if v):
            rest = sub_dims(vec, dims)
            if all(r >= 0 for r in rest):
                return f"{name}/{_wrap(_describe_product(rest))}"
    numerator = tuple(max(d, 0) for d in dims)
    denominator = tuple(max(-d, 0) for d in dims)
    top = _describe_product(numerator)
    if not any(denominator):
        return top
    return f"{top}/{_wrap(_describe_product(denominator))}"


def _wrap(words: str) -> str:
    return f"({words})" if "·" in words else words
