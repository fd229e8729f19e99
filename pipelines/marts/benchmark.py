"""Benchmarks: each member's figures next to the industry's, and its place among the members.

One row per member and cell of a metric: ``loss_ratio``, ``frequency``, ``severity`` and
``pure_premium`` (cells of the experience mart: grain, period, line, province) and
``ldf_paid``, ``ldf_incurred``, ``ldf_reported``, ``ldf_closed`` (volume-weighted age-to-age
factors of the factor mart: grain, development, line, province).

``industry_value`` is the pooled industry figure, ``relativity`` = member / industry (NULL
when the industry figure is not positive), ``rank`` the member's place among the members with
a value (1 = lowest), ``ranked_members`` how many have one, and ``percentile`` = (rank - 1) /
(ranked_members - 1), from 0 (lowest) to 1 (highest), NULL with fewer than two. No other
member is named. ``members`` and ``max_member_share`` are those of the industry cell.
"""

from __future__ import annotations

from pipelines.marts.cells import ratio

EXPERIENCE_METRICS = ("loss_ratio", "frequency", "severity", "pure_premium")
CELL = ("metric", "grain", "period", "development", "line_of_business", "region_code")
ORDER = "member_id, metric, grain, period, development, line_of_business, region_code"


def benchmark_sql(experience: str, factors: str) -> str:
    """Benchmark rows from the (built, not yet published) experience and factor tables."""
    part = ", ".join(f"p.{c}" for c in CELL)
    same = " AND ".join(f"i.{c} IS NOT DISTINCT FROM m.{c}" for c in CELL)
    return f"""
        WITH metrics AS (
            SELECT scope, member_id, metric, grain, period, NULL::VARCHAR AS development,
                   line_of_business, region_code, value, members, max_member_share
            FROM (SELECT * FROM {experience})
                 UNPIVOT INCLUDE NULLS (value FOR metric IN ({', '.join(EXPERIENCE_METRICS)}))
            UNION ALL
            SELECT scope, member_id, 'ldf_' || measure, grain, NULL, development,
                   line_of_business, region_code, ldf_volume, members, max_member_share
            FROM {factors} WHERE age_to IS NOT NULL),
        placed AS (
            SELECT p.*,
                   CASE WHEN p.value IS NOT NULL THEN rank() OVER place END AS rank,
                   count(p.value) OVER everyone AS ranked_members
            FROM metrics p WHERE p.scope = 'member'
            WINDOW place AS (PARTITION BY {part} ORDER BY p.value ASC NULLS LAST),
                   everyone AS (PARTITION BY {part}))
        SELECT m.member_id, {', '.join(f'm.{c}' for c in CELL)},
               m.value AS member_value, i.value AS industry_value,
               {ratio('m.value', 'i.value')} AS relativity,
               m.rank::INTEGER AS rank, m.ranked_members::INTEGER AS ranked_members,
               CASE WHEN m.ranked_members > 1 AND m.rank IS NOT NULL
                    THEN (m.rank - 1) / (m.ranked_members - 1) END AS percentile,
               i.members::INTEGER AS members, i.max_member_share
        FROM placed m LEFT JOIN metrics i ON i.scope = 'industry' AND {same}"""
