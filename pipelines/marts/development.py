"""Chain ladder in SQL over long triangles: age-to-age factors, CDFs, ultimates, IBNR.

For age ``k`` to ``k + 1 period``, over the accident periods where both cells exist (for the
industry: per accident period, the sums over the members with accepted values at both ages,
the *matched* members M(i, k); a member missing at either age is left out of both):

- ``ldf_volume`` = sum C(i, k+1) / sum C(i, k)  (NULL when the base is zero); ``volume`` = sum
  C(i, k), the base it rests on;
- ``ldf_simple`` = mean of C(i, k+1) / C(i, k) over the periods with C(i, k) > 0;
- ``diagonals = N`` uses only the pairs whose later cell lies on the latest N valuation dates
  of the triangle (chainladder's ``n_periods``).

``cdf`` at age ``k`` = product of the factors from ``k`` onward, times the tail (the last age's
row, ``development = '<age>-Ult'``, holds the tail factor); NULL when a factor on the way is
missing. ``ultimate`` = latest existing cell x its CDF, ``ibnr`` = ultimate - latest (for a paid
triangle this is the unpaid amount). A member triangle that stops before the industry's last
age takes the industry's CDF from there as its tail (``tail_basis``). ``complete_sql`` fills the
industry cells members are missing from (see its docstring). Results equal chainladder's
``Development`` and
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
    """Factor rows (one per triangle and age) of the long triangle table ``tri`` (the observed
    triangle of ``triangles.triangle_sql``, with the member rows of every member)."""
    return f"""
        WITH {_pairs_ctes(tri, diagonals)},
        factors AS ({_factors_select(float(tail))}),
        {_tail_ctes(float(tail))},
        {_disclosure_ctes()}
        {_factors_final(diagonals, float(tail))}"""


def _pairs_ctes(tri: str, diagonals: int | None) -> str:
    """``ages`` of each triangle and the ``pairs`` of cells (C(i, k), C(i, k+1)) a factor uses,
    on the latest ``diagonals`` valuations of the triangle only when given.

    A member's pairs are its own cells that both exist. An industry pair of origin ``i`` sums
    the member pairs of the members that reported at both ages (the matched members M(i, k)):
    a member missing at either age is left out of both cells, so the factor is not bent."""
    part = f"{', '.join(KEY)}, member_id"
    recent = (f"QUALIFY dense_rank() OVER (PARTITION BY {part} ORDER BY valuation_date DESC) "
              f"<= {int(diagonals)}" if diagonals else "")
    ind = ", ".join(f"m.{k}" for k in KEY[1:])
    return f"""
        ages AS (
            SELECT DISTINCT {part}, age, {_step()} AS step,
                   max(age) OVER (PARTITION BY {part}) AS max_age
            FROM {tri}),
        recent AS (SELECT DISTINCT {part}, valuation_date FROM {tri} {recent}),
        member_pairs AS (
            SELECT a.*, a.age AS age_from, a.value AS c0, b.value AS c1, b.valuation_date AS later_date,
                   greatest(a.members, b.members) AS has_claims
            FROM {tri} a JOIN {tri} b ON {_same('a', 'b')} AND b.origin_start = a.origin_start
             AND b.age = a.age + {_step('a')}
            WHERE a.scope = 'member' AND a.value IS NOT NULL AND b.value IS NOT NULL),
        matched AS (  -- the member pairs an industry factor uses
            SELECT m.* FROM member_pairs m
            JOIN recent r ON r.scope = 'industry' AND {' AND '.join(f'r.{k} = m.{k}' for k in KEY[1:])}
             AND r.valuation_date = m.later_date),
        pairs AS (
            SELECT m.* FROM member_pairs m
            JOIN recent r ON {_same('r', 'm')} AND r.valuation_date = m.later_date
            UNION ALL BY NAME
            SELECT 'industry' AS scope, NULL::VARCHAR AS member_id, {ind}, m.origin_start, m.age_from,
                   sum(m.c0) AS c0, sum(m.c1) AS c1, count(*) AS matched
            FROM matched m
            GROUP BY ALL)"""


def _factors_select(tail: float) -> str:
    """Volume-weighted and simple factors per age and the volume they rest on; the last age's
    row holds the tail."""
    keys = ", ".join(f"g.{k}" for k in (*KEY, "member_id"))
    return f"""
        SELECT {keys}, g.age AS age_from, g.age + g.step AS age_to,
               {ratio('sum(p.c1)', 'sum(p.c0)')} AS ldf_volume,
               list_avg(list(CAST(p.c1 AS DOUBLE) / CAST(p.c0 AS DOUBLE) ORDER BY p.origin_start)
                        FILTER (WHERE p.c0 > 0)) AS ldf_simple,
               count(p.c0)::INTEGER AS origins, sum(p.c0) AS volume
        FROM ages g LEFT JOIN pairs p ON {_same('p', 'g')} AND p.age_from = g.age
        WHERE g.age < g.max_age GROUP BY ALL
        UNION ALL
        SELECT {keys}, g.age, NULL, {tail!r}, {tail!r}, 0, NULL FROM ages g WHERE g.age = g.max_age"""


def _tail_ctes(tail: float) -> str:
    """``tailed``: the factors, where a member triangle that stops before the industry's last
    age takes as its tail the industry's CDF from its last age (``tail_basis`` 'industry'; NULL
    when that CDF is missing) instead of an implicit 1.0. Other tails are the selected one."""
    keys = ", ".join(f"{k}" for k in KEY[1:])
    return f"""
        industry_cdf AS (
            SELECT {keys}, age_from, max(age_from) OVER (PARTITION BY {keys}) AS max_age,
                   {_cdf('ldf_volume', 'f.')} AS cdf_volume, {_cdf('ldf_simple', 'f.')} AS cdf_simple
            FROM factors f WHERE scope = 'industry'
            WINDOW cum AS (PARTITION BY {keys} ORDER BY age_from DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
        tailed AS (
            SELECT f.* REPLACE (
                       CASE WHEN i.max_age > f.age_from THEN i.cdf_volume ELSE f.ldf_volume END AS ldf_volume,
                       CASE WHEN i.max_age > f.age_from THEN i.cdf_simple ELSE f.ldf_simple END AS ldf_simple),
                   CASE WHEN f.age_to IS NOT NULL THEN NULL
                        WHEN i.max_age > f.age_from THEN 'industry' ELSE 'selected' END AS tail_basis
            FROM factors f LEFT JOIN industry_cdf i
              ON f.scope = 'member' AND f.age_to IS NULL AND i.age_from = f.age_from
             AND {' AND '.join(f'i.{k} = f.{k}' for k in KEY[1:])})"""


def _disclosure_ctes() -> str:
    """Per industry factor: the members with claims in the matched cells it uses, and the
    largest member's share of those cells."""
    return f"""
        contributions AS (
            SELECT {', '.join(KEY[1:])}, age_from, member_id, sum(abs(c0) + abs(c1)) AS weight,
                   max(has_claims) AS has_claims
            FROM matched GROUP BY ALL),
        disclosure AS (
            SELECT {', '.join(KEY[1:])}, age_from, count(*) FILTER (WHERE has_claims > 0) AS members,
                   {max_share('weight')} AS max_member_share
            FROM contributions GROUP BY ALL)"""


def _factors_final(diagonals: int | None, tail: float) -> str:
    keys = ", ".join(f"g.{k}" for k in (*KEY, "member_id"))
    return f"""
        SELECT {keys}, g.age_from || '-' || coalesce(g.age_to::VARCHAR, 'Ult') AS development,
               g.age_from, g.age_to, g.ldf_volume, g.ldf_simple,
               {_cdf('ldf_volume')} AS cdf_volume, {_cdf('ldf_simple')} AS cdf_simple, g.origins,
               g.volume::DECIMAL(38, 2) AS volume,
               CASE WHEN g.scope = 'member' THEN (g.origins > 0)::INTEGER
                    ELSE coalesce(d.members, 0) END::INTEGER AS members,
               CASE WHEN g.scope = 'member' AND g.origins > 0 THEN 1.0
                    WHEN g.scope = 'industry' THEN d.max_member_share END AS max_member_share,
               {int(diagonals) if diagonals else 'NULL'}::INTEGER AS diagonals, {tail!r}::DOUBLE AS tail,
               g.tail_basis
        FROM tailed g LEFT JOIN disclosure d
          ON g.scope = 'industry' AND {' AND '.join(f'd.{k} = g.{k}' for k in KEY[1:])} AND d.age_from = g.age_from
        WINDOW cum AS (PARTITION BY {keys} ORDER BY g.age_from DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""


def _cdf(ldf: str, alias: str = "g.") -> str:
    return (f"CASE WHEN count(*) OVER cum = count({alias}{ldf}) OVER cum "
            f"THEN product({alias}{ldf}) OVER cum END")


def complete_sql(tri: str, factors: str) -> str:
    """The triangle with its industry cells completed: every column of ``tri`` (the observed
    triangle) plus ``completed_value``, ``completed_members`` and ``missing_share``.

    A member missing from an industry cell (``triangles``: it owes the valuation and sent no
    accepted file) is completed from its own last value of the accident period times the
    industry's matched volume-weighted factors up to that age, or, without an earlier value,
    its next value divided by them. The industry ``value`` = observed + completed when every
    missing member could be completed, else NULL. ``missing_share`` is the missing members'
    share of the cell's last known volume (abs of their basis values over those and the
    observed members' values, where a member never seen in the accident period counts with its
    value at the same age of its latest earlier one; NULL when nothing of it is known)."""
    same = " AND ".join(f"k.{c} = m.{c}" for c in (*KEY[1:], "member_id", "origin_start"))
    on_f = " AND ".join(f"f.{c} = b.{c}" for c in KEY[1:])
    cell = ", ".join((*KEY[1:], "origin_start", "age"))
    return f"""
        WITH ldf AS (SELECT {', '.join(KEY[1:])}, age_from, ldf_volume FROM {factors}
                     WHERE scope = 'industry' AND age_to IS NOT NULL),
        basis AS (
            SELECT m.*,
                   max(k.age) FILTER (WHERE k.age < m.age) AS before_age,
                   arg_max(k.value, k.age) FILTER (WHERE k.age < m.age) AS before_value,
                   min(k.age) FILTER (WHERE k.age > m.age) AS after_age,
                   arg_min(k.value, k.age) FILTER (WHERE k.age > m.age) AS after_value
            FROM (SELECT * FROM {tri} WHERE scope = 'member' AND value IS NULL AND missing_members > 0) m
            LEFT JOIN (SELECT * FROM {tri} WHERE scope = 'member' AND value IS NOT NULL) k ON {same}
            GROUP BY ALL),
        prior AS (  -- a missing member's value at the same age of its latest earlier accident period
            SELECT m.member_id, {', '.join(f'm.{c}' for c in (*KEY[1:], 'origin_start', 'age'))},
                   arg_max(k.value, k.origin_start) AS prior_value
            FROM basis m JOIN (SELECT * FROM {tri} WHERE scope = 'member' AND value IS NOT NULL) k
              ON {same.replace('k.origin_start = m.origin_start', 'k.origin_start < m.origin_start')}
             AND k.age = m.age
            GROUP BY ALL),
        steps AS (
            SELECT b.member_id, {', '.join(f'b.{c}' for c in (*KEY[1:], 'origin_start', 'age'))},
                   product(f.ldf_volume) FILTER (WHERE f.age_from < b.age) AS fwd,
                   count(f.ldf_volume) FILTER (WHERE f.age_from < b.age) AS fwd_n,
                   product(f.ldf_volume) FILTER (WHERE f.age_from >= b.age) AS bwd,
                   count(f.ldf_volume) FILTER (WHERE f.age_from >= b.age) AS bwd_n
            FROM basis b JOIN ldf f ON {on_f}
             AND f.age_from >= coalesce(b.before_age, b.age) AND f.age_from < coalesce(b.after_age, b.age)
            GROUP BY ALL),
        completions AS (
            SELECT b.*, coalesce(b.before_value, b.after_value, pr.prior_value) AS basis_value,
                   CASE WHEN b.before_age IS NOT NULL
                             AND s.fwd_n * {_step('b')} = b.age - b.before_age
                        THEN CAST(b.before_value AS DOUBLE) * s.fwd
                        WHEN b.before_age IS NULL AND b.after_age IS NOT NULL AND s.bwd <> 0
                             AND s.bwd_n * {_step('b')} = b.after_age - b.age
                        THEN CAST(b.after_value AS DOUBLE) / s.bwd END AS completed
            FROM basis b LEFT JOIN steps s USING (member_id, {cell})
            LEFT JOIN prior pr USING (member_id, {cell})),
        per_cell AS (
            SELECT {cell}, sum(completed) AS completed_value, count(completed) AS completed_members,
                   sum(abs(basis_value)) AS missing_volume, count(*) - count(basis_value) AS unknown
            FROM completions GROUP BY ALL),
        observed AS (
            SELECT {cell}, sum(abs(value)) AS observed_volume FROM {tri}
            WHERE scope = 'member' AND value IS NOT NULL GROUP BY ALL)
        SELECT t.* REPLACE (
                   CASE WHEN t.scope = 'member' OR t.missing_members = 0 THEN t.value
                        WHEN p.completed_members = t.missing_members
                        THEN CAST(t.observed_value + CAST(p.completed_value AS DECIMAL(38, 2)) AS DECIMAL(38, 2))
                   END AS value),
               CASE WHEN t.scope = 'industry' THEN
                   CAST(coalesce(p.completed_value, 0) AS DECIMAL(38, 2)) END AS completed_value,
               CASE WHEN t.scope = 'industry' THEN coalesce(p.completed_members, 0) END::INTEGER
                   AS completed_members,
               CASE WHEN t.scope = 'industry' AND t.missing_members = 0 THEN 0.0
                    WHEN t.scope = 'industry' AND p.unknown = 0
                    THEN CAST(p.missing_volume AS DOUBLE)
                         / nullif(CAST(p.missing_volume + coalesce(o.observed_volume, 0) AS DOUBLE), 0)
               END AS missing_share
        FROM {tri} t
        LEFT JOIN per_cell p ON t.scope = 'industry' AND {' AND '.join(f'p.{c} = t.{c}' for c in cell.split(', '))}
        LEFT JOIN observed o ON t.scope = 'industry' AND {' AND '.join(f'o.{c} = t.{c}' for c in cell.split(', '))}"""


def ultimates_sql(tri: str, factors: str, average: str = "volume") -> str:
    """Per triangle and accident period: latest cell, its CDF, the ultimate and the IBNR, and how
    much of the latest cell was completed for missing members (``latest_completed``)."""
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
               l.completed_value AS latest_completed, l.missing_members AS latest_missing_members,
               t.tail_basis,
               l.members, l.max_member_share
        FROM latest l LEFT JOIN {factors} f ON {_same('f', 'l')} AND f.age_from = l.age
        LEFT JOIN {factors} t ON {_same('t', 'l')} AND t.age_to IS NULL"""
