"""Seeded random streams and the few distributions the generator draws from.

Every stream is a ``random.Random`` seeded with a string (hashed with SHA-512 by Python, so
the same string gives the same stream on every machine and run). A stream is named after
what it draws for (``rng(seed, "M001", "book")``), so that adding a member or a column does
not shift the draws of another.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Generic, TypeVar

T = TypeVar("T")


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
    return Weighted(weights).draw(r)


class Weighted(Generic[T]):
    """A weighted choice prepared once and drawn from many times."""

    def __init__(self, weights: Mapping[T, float]) -> None:
        self.keys = list(weights)
        self.cumulative = list(itertools.accumulate(weights[k] for k in self.keys))
        if not self.keys or self.cumulative[-1] <= 0:
            raise ValueError("nothing to choose from")

    def draw(self, r: random.Random) -> T:
        x = r.random() * self.cumulative[-1]
        return self.keys[bisect.bisect_right(self.cumulative, x, 0, len(self.keys) - 1)]


def pick_one(r: random.Random, items: Sequence[T]) -> T:
    return items[r.randrange(len(items))]


def money(value: float) -> Decimal:
    """An amount in CNY with two decimals."""
    return Decimal(round(value * 100)).scaleb(-2)


def exposure(value: float) -> Decimal:
    """An exposure with six decimals."""
    return Decimal(round(value * 1_000_000)).scaleb(-6)
