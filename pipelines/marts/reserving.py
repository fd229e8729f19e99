"""One development triangle with its chain ladder, read from the lake as of a snapshot.

``triangle_report`` runs the marts' own SQL (``triangles``, ``development``) on the claims of
one line (and member), so ``insurshare triangle`` and the Python API always show the lake as
of the snapshot asked for, with the same numbers the marts hold when built from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import duckdb
import pandas as pd

from pipelines import store
from pipelines.config import Settings
from pipelines.core.sql import literal
from pipelines.errors import NotFound, QueryError
from pipelines.lake import Lake
from pipelines.marts.cells import ALL, GRAINS
from pipelines.marts.changes import have_partials
from pipelines.marts.development import AVERAGES, complete_sql, factors_sql, ultimates_sql
from pipelines.marts.partials import CLAIM, claim_partials_sql
from pipelines.marts.source import Source, resolve_source
from pipelines.marts.triangles import MEASURES, check_choice, obligations_sql, owed_sql, triangle_sql

COUNT_MEASURES = ("reported", "closed")


@dataclass(frozen=True)
class TriangleReport:
    """A triangle (``values[i][j]``: origin ``i``, age ``j``; None where no cell) and its chain ladder."""

    line: str
    measure: str
    grain: str
    member: str | None
    region: str
    snapshot: int
    average: str
    diagonals: int | None
    tail: float
    origins: list[str]
    ages: list[int]
    values: list[list[float | None]]
    ldf: dict[str, float | None]
    cdf: dict[str, float | None]
    latest: dict[str, float | None]
    ultimate: dict[str, float | None]
    ibnr: dict[str, float | None]
    origin_starts: list[dt.date] = field(default_factory=list, repr=False)
    audience: str = "regulator"      # regulator: the lake's values; public / member:<M>: as its product publishes
    withheld: int = 0                # cells the audience's product withholds (or holds at an earlier value)
    flagged: list[dict] = field(default_factory=list)   # cells with members missing or claims carried

    def flag_lines(self) -> list[str]:
        """One line per flagged cell: what of it was completed or carried, or why it is empty."""
        out = []
        for c in self.flagged:
            where = f"{c['origin']} at {c['age']}"
            if c["missing_members"]:
                share = "unknown" if c["missing_share"] is None else f"{c['missing_share']:.1%}"
                how = (f"completed {c['completed_value']:,.2f} on top of {c['observed_value']:,.2f} observed"
                       if c["completed_members"] == c["missing_members"] else
                       f"not shown: {c['observed_value']:,.2f} observed, "
                       f"{c['missing_members'] - c['completed_members']} member(s) without a known value")
                out.append(f"{where}: {c['missing_members']} member(s) missing ({share} of the last known "
                           f"volume), {how}")
            if c["carried_claims"]:
                out.append(f"{where}: {c['carried_claims']} quarantined claim(s) carried forward "
                           f"({c['carried_value']:,.2f})")
        return out

    def to_dict(self) -> dict:
        """The JSON document of ``insurshare triangle --format json``."""
        out = asdict(self)
        out.pop("origin_starts")
        return out

    def title(self) -> str:
        who = f"Member {self.member}" if self.member else "Industry"
        where = "all provinces" if self.region == ALL else f"province {self.region}"
        window = f"latest {self.diagonals} diagonals" if self.diagonals else "all diagonals"
        return (f"{who} {self.measure} triangle, line {self.line}, {where}, {self.grain} grain, "
                f"lake snapshot {self.snapshot} ({self.average} average factors, {window}, tail {self.tail:g})"
                + (" -- FOR THE REGULATOR ONLY" if self.audience == "regulator" and not self.member
                   else f" -- as published to {self.audience}" if self.audience != "regulator" else ""))

    def frame(self) -> pd.DataFrame:
        """Wide table: one row per origin (cells, latest, CDF to ultimate, ultimate, IBNR), then
        the rows ``LDF`` and ``CDF`` with each factor under the age it develops from."""
        cols = [str(a) for a in self.ages]
        rows = [[o, *v, self.latest.get(o), self._cdf_at_latest(o), self.ultimate.get(o), self.ibnr.get(o)]
                for o, v in zip(self.origins, self.values, strict=True)]
        ldf_by_age = {k.split("-")[0]: v for k, v in self.ldf.items()}
        cdf_by_age = {k.split("-")[0]: v for k, v in self.cdf.items()}
        rows.append(["LDF", *(ldf_by_age.get(a) for a in cols), None, None, None, None])
        rows.append(["CDF", *(cdf_by_age.get(a) for a in cols), None, None, None, None])
        return pd.DataFrame(rows, columns=["origin", *cols, "latest", "cdf", "ultimate", "ibnr"])

    def _cdf_at_latest(self, origin: str) -> float | None:
        i = self.origins.index(origin)
        ages = [a for a, v in zip(self.ages, self.values[i], strict=True) if v is not None]
        return self.cdf.get(f"{ages[-1]}-Ult") if ages else None

    def to_chainladder(self):
        """The triangle as a ``chainladder.Triangle`` (cells that do not exist left out)."""
        import chainladder as cl

        months = GRAINS[self.grain]
        rows = [{"origin": pd.Timestamp(start), "valuation": pd.Timestamp(_period_end(start, age, months)),
                 self.measure: value}
                for start, cells in zip(self.origin_starts, self.values, strict=True)
                for age, value in zip(self.ages, cells, strict=True) if value is not None]
        tri = cl.Triangle(pd.DataFrame(rows), origin="origin", development="valuation",
                          columns=[self.measure], cumulative=True)
        return tri.grain("OYDY" if self.grain == "year" else "OQDQ")


def _period_end(start: dt.date, age: int, months: int) -> dt.date:
    first = start.month - 1 + age
    return dt.date(start.year + first // 12, first % 12 + 1, 1) - dt.timedelta(days=1)


def triangle_report(settings: Settings, line: str, measure: str = "paid", *, grain: str = "year",
                    member: str | None = None, region: str = ALL, as_of: str | int | None = None,
                    average: str = "volume", diagonals: int | None = None, tail: float = 1.0,
                    partials: bool = True) -> TriangleReport:
    """The triangle of ``measure`` for ``line`` (industry, or ``member``'s own) with its chain ladder.

    The cells come from the marts' partial aggregates when the marts in the lake were built from
    the same data snapshot, else (or with ``partials=False``) from the claim rows of the line."""
    from pipelines.store import resolve_snapshot

    check_choice("measure", measure, MEASURES)
    check_choice("grain", grain, GRAINS)
    check_choice("average", average, AVERAGES)
    if diagonals is not None and diagonals < 1:
        raise QueryError(f"--diagonals {diagonals} is not a positive number of diagonals.")
    if not tail > 0:
        raise QueryError(f"--tail {tail} is not a positive factor; 1.0 means no tail.")
    snapshot = None if as_of is None else resolve_snapshot(settings, str(as_of))
    with Lake(settings, read_only=True) as lake:
        con = lake.con
        source = resolve_source(con, snapshot)
        # line ALL sums every line's claims (``triangles``): it needs them all
        parts, valuations = claim_parts(con, source, line=None if line == ALL else line, partials=partials)
        where = (f"measure = {literal(measure)} AND region_code = {literal(region)} "
                 f"AND line_of_business = {literal(line)}")
        _complete_triangle(con, source, parts, valuations, grain, where, diagonals=diagonals, tail=tail)
        whose = f"member_id = {literal(member)}" if member else "scope = 'industry'"
        if not con.execute(f"SELECT count(*) FROM tri_all WHERE {whose}").fetchone()[0]:
            raise _no_claims(con, source.claim, line, member, region, source.snapshot)
        con.execute(f"CREATE TEMP TABLE tri AS SELECT * FROM tri_all WHERE {whose}")
        con.execute(f"CREATE TEMP TABLE fac AS SELECT * FROM fac_all WHERE {whose}")
        return _assemble(con, average, dict(line=line, measure=measure, grain=grain, member=member,
                                            region=region, snapshot=source.snapshot, average=average,
                                            diagonals=diagonals, tail=float(tail)))


def _complete_triangle(con: duckdb.DuckDBPyConnection, source: Source, parts: str, valuations: str, grain: str,
                       where: str, *, diagonals: int | None = None, tail: float = 1.0) -> None:
    """Temp tables ``tri_all`` (industry and every member's cells, completed) and ``fac_all``
    (their factors) of the claim partials ``parts``, for the triangles ``where`` selects: the
    industry's factors rest on the members' matched cells, so every member's rows are needed."""
    owed = owed_sql(source.table("submissions"))
    obligations = obligations_sql(source.obligation_table(con, "calendars"),
                                  source.obligation_table(con, "declarations"))
    tri = triangle_sql(parts, grain, valuations=valuations, owed=owed, obligations=obligations)
    con.execute(f"CREATE TEMP TABLE obs AS SELECT * FROM ({tri}) WHERE {where}")
    con.execute(f"CREATE TEMP TABLE fac_all AS {factors_sql('obs', diagonals=diagonals, tail=tail)}")
    con.execute(f"CREATE TEMP TABLE tri_all AS {complete_sql('obs', 'fac_all')}")


def claim_parts(con: duckdb.DuckDBPyConnection, source: Source, *, line: str | None = None,
                member: str | None = None, partials: bool = True) -> tuple[str, str]:
    """SQL of the claim partials of ``line`` and ``member`` (when given), and of every valuation
    each member reported: the lake's partials when current, else computed from the claim rows."""
    from pipelines.marts.build import last_build

    whose = f"member_id = {literal(member)}" if member else "TRUE"
    where = f"{whose} AND line_of_business = {literal(line)}" if line else whose
    if partials and have_partials(con) and last_build(con) == source.snapshot:
        table = f"{store.LAKE}.{CLAIM}"
        return f"(SELECT * FROM {table} WHERE {where})", f"(SELECT member_id, valuation_date FROM {table} WHERE {whose})"
    return (f"({claim_partials_sql(source.claim, where, source.table('quarantine'))})",
            f"(SELECT DISTINCT member_id, valuation_date FROM {source.claim} WHERE {whose})")


def _assemble(con: duckdb.DuckDBPyConnection, average: str, about: dict) -> TriangleReport:
    cells = con.execute("SELECT origin, origin_start, age, value FROM tri ORDER BY origin_start, age").fetchall()
    origins = list(dict.fromkeys((c[0], c[1]) for c in cells))
    ages = sorted({c[2] for c in cells})
    grid = {(c[0], c[2]): _number(c[3], about["measure"]) for c in cells}
    factors = con.execute(f"SELECT development, age_from, age_to, ldf_{average}, cdf_{average} "
                          "FROM fac ORDER BY age_from").fetchall()
    ults = {r[0]: r[1:] for r in con.execute(
        f"SELECT origin, latest, ultimate, ibnr FROM ({ultimates_sql('tri', 'fac', average)})").fetchall()}
    return TriangleReport(
        **about, origins=[o for o, _ in origins], ages=ages,
        values=[[grid.get((o, a)) for a in ages] for o, _ in origins],
        ldf={f[0]: f[3] for f in factors if f[2] is not None},
        cdf={f"{f[1]}-Ult": f[4] for f in factors},
        latest={o: _number(ults[o][0], about["measure"]) if o in ults else None for o, _ in origins},
        ultimate={o: ults[o][1] if o in ults else None for o, _ in origins},
        ibnr={o: ults[o][2] if o in ults else None for o, _ in origins},
        origin_starts=[s for _, s in origins], flagged=_flagged(con))


def _flagged(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The cells of ``tri`` that members are missing from or that carry quarantined claims."""
    cols = ("origin", "age", "missing_members", "completed_members", "missing_share", "observed_value",
            "completed_value", "carried_claims", "carried_value")
    rows = con.execute(f"SELECT {', '.join(cols)} FROM tri WHERE missing_members > 0 OR carried_claims > 0 "
                       "ORDER BY origin_start, age").fetchall()
    return [{k: (float(v) if k.endswith("value") and v is not None else v) for k, v in zip(cols, r, strict=True)}
            for r in rows]


def _number(value, measure: str) -> float | int | None:
    if value is None:
        return None
    return int(value) if measure in COUNT_MEASURES else float(value)


def _no_claims(con: duckdb.DuckDBPyConnection, claim: str, line: str, member: str | None, region: str,
               snapshot: int) -> NotFound:
    lines = [r[0] for r in con.execute(
        f"SELECT DISTINCT line_of_business FROM {claim} "
        + (f"WHERE member_id = {literal(member)} " if member else "") + "ORDER BY 1").fetchall()]
    whose = f" of member {member}" if member else ""
    where = f" in province {region}" if region != ALL else ""
    return NotFound(f"No claims of line {line}{whose}{where} in the lake at snapshot {snapshot}.",
                    hint=f"Lines with claims{whose}: {', '.join(lines) or 'none'}.")


def chainladder_triangle(settings: Settings, *, grain: str = "year", member: str | None = None,
                         by_region: bool = False, as_of: str | int | None = None):
    """Every line's triangles (``index`` line, and province with ``by_region``; ``columns`` the
    four measures) as one ``chainladder.Triangle``, industry-wide or for ``member``. Line ``ALL``
    is left out: it is the sum of the others (``triangle.sum()``), which it would count twice."""
    import chainladder as cl

    from pipelines.store import resolve_snapshot

    check_choice("grain", grain, GRAINS)
    snapshot = None if as_of is None else resolve_snapshot(settings, str(as_of))
    with Lake(settings, read_only=True) as lake:
        con = lake.con
        source = resolve_source(con, snapshot)
        parts, valuations = claim_parts(con, source)
        regions = "region_code <> 'ALL'" if by_region else "region_code = 'ALL'"
        _complete_triangle(con, source, parts, valuations, grain, regions)
        whose = f"member_id = {literal(member)}" if member else "scope = 'industry'"
        long = con.execute(f"""
            PIVOT (SELECT line_of_business, region_code, origin_start, valuation_date, measure,
                          CAST(value AS DOUBLE) AS value
                   FROM tri_all WHERE {whose} AND value IS NOT NULL AND line_of_business <> {literal(ALL)})
            ON measure IN ({', '.join(literal(m) for m in MEASURES)}) USING any_value(value)""").df()
    if long.empty:
        raise NotFound(f"No claims{f' of member {member}' if member else ''} in the lake at snapshot "
                       f"{source.snapshot}.", hint="Submit and ingest claim data first.")
    index = ["line_of_business", "region_code"] if by_region else ["line_of_business"]
    long["origin_start"] = pd.to_datetime(long["origin_start"])
    long["valuation_date"] = pd.to_datetime(long["valuation_date"])
    triangle = cl.Triangle(long, origin="origin_start", development="valuation_date",
                           columns=list(MEASURES), index=index, cumulative=True)
    return triangle.grain("OYDY" if grain == "year" else "OQDQ")
