"""The Python API for notebooks: marts as pandas DataFrames, triangles as ``chainladder`` objects.

    from pipelines import api

    api.build_marts()                                   # or `insurshare build-marts`
    api.experience(line_of_business="MCOM", grain="year", scope="industry")
    rep = api.triangle("MCOM", "paid", grain="quarter")  # a TriangleReport
    rep.ldf, rep.cdf, rep.ultimate, rep.ibnr, rep.frame()
    tri = rep.to_chainladder()                          # chainladder.Triangle
    import chainladder as cl; cl.Chainladder().fit(tri).ultimate_
    api.chainladder_triangle(grain="year")              # every line, all four measures

Every function reads the platform home of ``INSURSHARE_HOME`` (default ``./data``) unless given
``settings`` (``api.settings(home)``), and the lake now or ``as_of`` a snapshot id or timestamp.
Filters are column=value keywords of the mart (``scope``, ``member_id``, ``grain``, ``period``,
``line_of_business``, ``region_code``, ``measure``, ...).

It reads the lake itself, before disclosure control: it is for the regulator and the platform's
operators. Members and the public read their products (``insurshare query --as``, ``export
--as``, ``triangle --as``; ``pipelines.products``).
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


def mart(name: str, *, as_of: str | None = None, settings: Settings | None = None,
         **filters: object) -> pd.DataFrame:
    """Rows of a built mart (``experience``, ``triangle``, ``factors``, ``ultimates``, ``benchmark``)."""
    from pipelines.marts.export import read_mart

    return read_mart(settings or _default(), name, filters, as_of)


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
