"""Chain ladder in SQL over long triangles: age-to-age factors, CDFs, ultimates, IBNR.

For age ``k`` to ``k + 1 period``, over the accident periods where both cells exist:

- ``ldf_volume`` = sum C(i, k+1) / sum C(i, k)  (NULL when the base is zero);
- ``ldf_simple`` = mean of C(i, k+1) / C(i, k) over the periods with C(i, k) > 0;
- ``diagonals = N`` uses only the pairs whose later cell lies on the latest N valuation dates
  of the triangle (chainladder's ``n_periods``).

``cdf`` at age ``k`` = product of the factors from ``k`` onward, times the tail (the last age's
row, ``development = '<age>-Ult'``, holds the tail factor); NULL when a factor on the way is
missing. ``ultimate`` = latest existing cell x its CDF, ``ibnr`` = ultimate - latest (for a paid
triangle this is the unpaid amount). Results equal chainladder's ``Development`` and
``Chainladder`` on triangles without zero or missing cells (chainladder treats a zero cell as
missing; here zero is a value).
"""

from __future__ import annotations

from pipelines.marts.cells import max_share, ratio

KEY = ("scope", "grain", "line_of_business", "region_code", "measure")
AVERAGES = ("volume", "simple")
ORDER = ("scope, member_id NULLS FIRST, grain, line_of_business, region_code, measure, age_from")


def _same(a: str, b: str) -> str:
    """Join condition: ``a`` and ``b`` belong to the same triangle."""
    return " AND ".join([f"{a}.{k} = {b}.{k}" for k in KEY]
                        + [f"{a}.member_id IS NOT DISTINCT FROM {b}.member_id"])


def _step(alias: str = "") -> str:
    """SQL: months from one age to the next (12 for the annual grain, 3 for the quarterly)."""
    return f"CASE WHEN {alias + '.' if alias else ''}grain = 'year' THEN 12 ELSE 3 END"


def factors_sql(tri: str, *, diagonals: int | None = None, tail: float = 1.0) -> str:
    """Factor rows (one per triangle and age) of the long triangle table ``tri``."""
    return f"""
        WITH {_pairs_ctes(tri, diagonals)},
        factors AS ({_factors_select(float(tail))}),
        {_disclosure_ctes(tri)}
        {_factors_final(diagonals, float(tail))}"""


def _pairs_ctes(tri: str, diagonals: int | None) -> str:
    """``ages`` of each triangle and the ``pairs`` of cells (C(i, k), C(i, k+1)) that both exist,
    on the latest ``diagonals`` valuations only when given."""
    part = f"{', '.join(KEY)}, member_id"
    recent = (f"QUALIFY dense_rank() OVER (PARTITION BY {part} ORDER BY valuation_date DESC) "
              f"<= {int(diagonals)}" if diagonals else "")
    return f"""
        ages AS (
            SELECT DISTINCT {part}, age, {_step()} AS step,
                   max(age) OVER (PARTITION BY {part}) AS max_age
            FROM {tri}),
        recent AS (SELECT DISTINCT {part}, valuation_date FROM {tri} {recent}),
        pairs AS (
            SELECT a.*, a.age AS age_from, a.value AS c0, b.value AS c1
            FROM {tri} a JOIN {tri} b ON {_same('a', 'b')} AND b.origin_start = a.origin_start
             AND b.age = a.age + {_step('a')}
            JOIN recent r ON {_same('r', 'b')} AND r.valuation_date = b.valuation_date
            WHERE a.value IS NOT NULL AND b.value IS NOT NULL)"""


def _factors_select(tail: float) -> str:
    """Volume-weighted and simple factors per age; the last age's row holds the tail."""
    keys = ", ".join(f"g.{k}" for k in (*KEY, "member_id"))
    return f"""
        SELECT {keys}, g.age AS age_from, g.age + g.step AS age_to,
               {ratio('sum(p.c1)', 'sum(p.c0)')} AS ldf_volume,
               list_avg(list(CAST(p.c1 AS DOUBLE) / CAST(p.c0 AS DOUBLE) ORDER BY p.origin_start)
                        FILTER (WHERE p.c0 > 0)) AS ldf_simple,
               count(p.c0)::INTEGER AS origins
        FROM ages g LEFT JOIN pairs p ON {_same('p', 'g')} AND p.age_from = g.age
        WHERE g.age < g.max_age GROUP BY ALL
        UNION ALL
        SELECT {keys}, g.age, NULL, {tail!r}, {tail!r}, 0 FROM ages g WHERE g.age = g.max_age"""


def _disclosure_ctes(tri: str) -> str:
    """Per industry factor: the members with claims in the cells it uses, and the largest
    member's share of those cells (from the member triangles of the same table)."""
    return f"""
        contributions AS (
            SELECT {', '.join(f'p.{k}' for k in KEY)}, p.age_from, m.member_id, sum(m.value) AS weight,
                   max(m.members) AS has_claims
            FROM pairs p JOIN {tri} m ON m.scope = 'member'
             AND {' AND '.join(f'm.{k} = p.{k}' for k in KEY[1:])} AND m.origin_start = p.origin_start
             AND m.age IN (p.age_from, p.age_from + {_step('p')})
            WHERE p.scope = 'industry' GROUP BY ALL),
        disclosure AS (
            SELECT {', '.join(KEY)}, age_from, count(*) FILTER (WHERE has_claims > 0) AS members,
                   {max_share('weight')} AS max_member_share
            FROM contributions GROUP BY ALL)"""


def _factors_final(diagonals: int | None, tail: float) -> str:
    keys = ", ".join(f"g.{k}" for k in (*KEY, "member_id"))
    return f"""
        SELECT {keys}, g.age_from || '-' || coalesce(g.age_to::VARCHAR, 'Ult') AS development,
               g.age_from, g.age_to, g.ldf_volume, g.ldf_simple,
               {_cdf('ldf_volume')} AS cdf_volume, {_cdf('ldf_simple')} AS cdf_simple, g.origins,
               CASE WHEN g.scope = 'member' THEN (g.origins > 0)::INTEGER
                    ELSE coalesce(d.members, 0) END::INTEGER AS members,
               CASE WHEN g.scope = 'member' AND g.origins > 0 THEN 1.0
                    WHEN g.scope = 'industry' THEN d.max_member_share END AS max_member_share,
               {int(diagonals) if diagonals else 'NULL'}::INTEGER AS diagonals, {tail!r}::DOUBLE AS tail
        FROM factors g LEFT JOIN disclosure d
          ON {' AND '.join(f'd.{k} = g.{k}' for k in KEY)} AND d.age_from = g.age_from
        WINDOW cum AS (PARTITION BY {keys} ORDER BY g.age_from DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""


def _cdf(ldf: str) -> str:
    return f"CASE WHEN count(*) OVER cum = count(g.{ldf}) OVER cum THEN product(g.{ldf}) OVER cum END"


def ultimates_sql(tri: str, factors: str, average: str = "volume") -> str:
    """Per triangle and accident period: latest cell, its CDF, the ultimate and the IBNR."""
    cdf = f"f.cdf_{'simple' if average == 'simple' else 'volume'}"
    return f"""
        WITH latest AS (
            SELECT * FROM {tri} WHERE value IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY {', '.join(KEY)}, member_id, origin_start
                                       ORDER BY age DESC) = 1)
        SELECT l.scope, l.member_id, l.grain, l.line_of_business, l.region_code, l.measure,
               l.origin, l.origin_start, l.age AS latest_age, l.valuation_date AS latest_valuation_date,
               l.value AS latest, {cdf} AS cdf, CAST(l.value AS DOUBLE) * {cdf} AS ultimate,
               CAST(l.value AS DOUBLE) * {cdf} - CAST(l.value AS DOUBLE) AS ibnr,
               l.members, l.max_member_share
        FROM latest l LEFT JOIN {factors} f ON {_same('f', 'l')} AND f.age_from = l.age"""
