"""Seeded random streams and the few distributions the generator draws from.

Every stream is a ``random.Random`` seeded with a string (hashed with SHA-512 by Python, so
the same string gives the same stream on every machine and run). A stream is named after
what it draws for (``rng(seed, "M001", "book")``), so that adding a member or a column does
not shift the draws of another.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

T = TypeVar("T")
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def rng(seed: int, *names: object) -> random.Random:
    """A random stream for ``names`` under ``seed``."""
    return random.Random(":".join([str(seed), *map(str, names)]))


def poisson(r: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(r.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def lognormal(r: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(r.gauss(0.0, sigma))


def pick(r: random.Random, weights: Mapping[T, float]) -> T:
    """One key of ``weights``, drawn with probability proportional to its weight."""
    keys = list(weights)
    return r.choices(keys, weights=[weights[k] for k in keys])[0]


def pick_one(r: random.Random, items: Sequence[T]) -> T:
    return items[r.randrange(len(items))]


def money(value: float) -> Decimal:
    """An amount in CNY with two decimals (never a negative zero)."""
    return _no_negative_zero(Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_UP))


def exposure(value: float) -> Decimal:
    """An exposure with six decimals (never a negative zero)."""
    return _no_negative_zero(Decimal(repr(value)).quantize(MICRO, rounding=ROUND_HALF_UP))


def _no_negative_zero(value: Decimal) -> Decimal:
    return value if value else abs(value)
