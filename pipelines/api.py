"""The Python API for notebooks: marts as pandas DataFrames, triangles as ``chainladder`` objects.

Every function reads the platform home of ``INSURSHARE_HOME`` (default ``./data``) unless given
``settings`` (``api.settings(home)``), and the lake now or ``as_of`` a snapshot id or timestamp.
Filters are column=value keywords of the mart (``scope``, ``member_id``, ``grain``, ``period``,
``line_of_business``, ``region_code``, ``measure``, ...).

It reads the lake itself, before disclosure control: it is for the regulator and the platform's
operators. Members and the public read their products (``insurshare query --as``, ``export
--as``, ``triangle --as``; ``pipelines.products``).

The example runs as a doctest (``tests/test_doctests.py``) on a lake of motor policies in Beijing:
one-year policies written on 1 January 2023 and on 1 January 2024, 1,000 CNY at member M001 and
3,000 CNY at M002 each year; a claim of M001 from March 2023 paid 400 by the end of 2023 and 600
by the end of 2024 (closed), one of M002 from June 2023 paid 600 then 900 (100 still reserved),
and one of M001 from February 2024 paid 800 by the end of 2024:

    >>> from pipelines import api
    >>> api.build_marts().skipped                             # or `insurshare build-marts`
    False
    >>> exp = api.experience(line_of_business="MCOM", grain="year", scope="industry", region_code="ALL")
    >>> print(exp[["period", "earned_premium", "paid_loss", "incurred_loss", "loss_ratio"]].to_string(index=False))
    period  earned_premium  paid_loss  incurred_loss  loss_ratio
      2023          4000.0     1500.0         1600.0         0.4

(2024 is no whole year of premium data yet: its first quarter is the last with transactions.)

    >>> rep = api.triangle("MCOM", "paid", grain="year")       # a TriangleReport
    >>> rep.ldf, rep.cdf
    ({'12-24': 1.5}, {'12-Ult': 1.5, '24-Ult': 1.0})
    >>> rep.ultimate, rep.ibnr
    ({'2023': 1500.0, '2024': 1200.0}, {'2023': 0.0, '2024': 400.0})
    >>> print(rep.frame().to_string(index=False))
    origin     12     24  latest  cdf  ultimate  ibnr
      2023 1000.0 1500.0  1500.0  1.0    1500.0   0.0
      2024  800.0    NaN   800.0  1.5    1200.0 400.0
       LDF    1.5    NaN     NaN  NaN       NaN   NaN
       CDF    1.5    1.0     NaN  NaN       NaN   NaN
    >>> tri = rep.to_chainladder()                            # chainladder.Triangle
    >>> import chainladder as cl
    >>> cl.Chainladder().fit(tri).ultimate_.values.ravel().tolist()
    [1500.0, 1200.0]
    >>> api.chainladder_triangle(grain="year").columns.tolist()   # every line, all four measures
    ['paid', 'incurred', 'reported', 'closed']
    >>> bench = api.benchmark("M001", metric="loss_ratio", grain="year", line_of_business="ALL", region_code="ALL")
    >>> print(bench[["period", "member_value", "industry_value", "relativity"]].to_string(index=False))
    period  member_value  industry_value  relativity
      2023           0.6             0.4         1.5
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.config import Settings
from pipelines.marts.build import BuildResult
from pipelines.marts.cells import ALL
from pipelines.marts.reserving import TriangleReport

__all__ = ["benchmark", "build_marts", "chainladder_triangle", "experience", "factors", "mart",
           "settings", "triangle", "ultimates"]


def settings(home: str | Path | None = None) -> Settings:
    """The platform's settings: ``home`` or ``INSURSHARE_HOME`` (default ./data)."""
    return Settings.from_env(home=Path(home) if home is not None else None)


def build_marts(as_of: str | int | None = None, *, force: bool = False,
                settings: Settings | None = None) -> BuildResult:
    """Build every mart from the lake (as of a snapshot); skipped when already built from it."""
    from pipelines.marts.build import build_marts as run

    return run(settings or _default(), as_of, force=force)


def mart(name: str, *, as_of: str | None = None, settings: Settings | None = None, exact: bool = False,
         **filters: object) -> pd.DataFrame:
    """Rows of a built mart (``experience``, ``triangle``, ``factors``, ``ultimates``, ``benchmark``).

    Factors and ratios are the mart's floats, bit for bit; DECIMAL amounts are float64 (exact to
    15 significant digits), or ``Decimal`` objects with all their digits when ``exact``."""
    from pipelines.marts.export import read_mart

    return read_mart(settings or _default(), name, filters, as_of, exact=exact)


def experience(**filters: object) -> pd.DataFrame:
    """Premium, exposure, losses, frequency, severity, pure premium and loss ratio by cell."""
    return mart("experience", **filters)


def factors(**filters: object) -> pd.DataFrame:
    """Age-to-age and cumulative factors (volume-weighted and simple) of every triangle."""
    return mart("factors", **filters)


def ultimates(**filters: object) -> pd.DataFrame:
    """Chain-ladder ultimates and IBNR of every triangle and accident period."""
    return mart("ultimates", **filters)


def benchmark(member_id: str, **filters: object) -> pd.DataFrame:
    """One member's figures next to the industry's, with its rank among the members."""
    return mart("benchmark", member_id=member_id, **filters)


def triangle(line: str, measure: str = "paid", *, grain: str = "year", member: str | None = None,
             region: str = ALL, as_of: str | int | None = None, average: str = "volume",
             diagonals: int | None = None, tail: float = 1.0,
             settings: Settings | None = None) -> TriangleReport:
    """One triangle with its factors, CDFs, ultimates and IBNR (``.to_chainladder()`` for chainladder)."""
    from pipelines.marts.reserving import triangle_report

    return triangle_report(settings or _default(), line, measure, grain=grain, member=member,
                           region=region, as_of=as_of, average=average, diagonals=diagonals, tail=tail)


def chainladder_triangle(*, grain: str = "year", member: str | None = None, by_region: bool = False,
                         as_of: str | int | None = None, settings: Settings | None = None):
    """A ``chainladder.Triangle`` of every line (and province), columns paid, incurred,
    reported and closed: industry-wide, or ``member``'s own."""
    from pipelines.marts.reserving import chainladder_triangle as build

    return build(settings or _default(), grain=grain, member=member, by_region=by_region, as_of=as_of)


def _default() -> Settings:
    return Settings.from_env()
