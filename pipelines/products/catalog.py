"""What each audience's product holds: its tables, the SQL that fills them, and their meaning.

Every SQL reads the lake (attached as ``lake`` at the pinned snapshot) or the published
industry tables ``pub_*`` that ``control.apply_control`` created in the same connection.

- **member** ``M``: its own rows (``policy``, ``claim``, ``quarantine``, ``submissions``,
  ``rule_results``), its member-scope marts, its benchmark rows (the industry side withheld
  where the industry cell is), ``own_linked_claims`` and the published industry tables.
  Identifier tokens are replaced by member pseudonyms (``m:`` + SHA-256 of the member id and
  the platform token): stable within the member, unlinkable across members, so two members
  cannot join their customers by comparing products.
- **public**: the published industry tables only.
- **regulator**: every table of the lake, unchanged (``linked_claims`` included), plus the
  published industry tables and ``disclosure_cells`` (every unit's contributors, largest
  share and reason, to audit the disclosure control).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.config import SCHEMAS_DIR
from pipelines.core.sql import literal
from pipelines.products.control import PUBLISHED, benchmark_sql
from pipelines.store import LAKE

TOKEN_PATTERN = "[A-Za-z0-9_-]{1,16}:[0-9a-f]{64}"
MEMBER_MARTS = ("mart_experience", "mart_triangle", "mart_factors", "mart_ultimates")

DOCS = {
    "product_info": "Who the product is for, its release number, the lake snapshot it was built from and the "
                    "disclosure rules applied",
    "catalog": "The tables of this product, with their row counts",
    "policy": "Your accepted premium transactions (identifiers as your own pseudonyms)",
    "claim": "Your accepted claim snapshots (identifiers as your own pseudonyms)",
    "quarantine": "Your rejected rows with the rules they broke (pseudonymised record as JSON)",
    "submissions": "Your submitted files: versions, verdicts, counts, timings",
    "rule_results": "Rows checked and failed per rule for each of your submissions",
    "mart_experience": "Your own experience: premium, exposure, losses and ratios by period, line and province",
    "mart_triangle": "Your own development triangles",
    "mart_factors": "Age-to-age factors and CDFs of your own triangles",
    "mart_ultimates": "Chain-ladder ultimates and IBNR of your own triangles",
    "mart_benchmark": "Your figures next to the industry's, with your rank (industry side withheld where suppressed)",
    "own_linked_claims": "Your claims whose claimant or vehicle also claimed at other members within 90 days: how many members",
    "industry_experience": "Industry experience after disclosure control (suppressed values NULL; `suppression` says "
                           "which and why; a held revision keeps an earlier release's value)",
    "industry_triangle": "Industry development triangles after disclosure control (`held_from_release`: a held "
                         "revision's value is that release's)",
    "industry_factors": "Industry age-to-age factors and CDFs; withheld when a cell they use is suppressed",
    "industry_ultimates": "Industry chain-ladder ultimates and IBNR; withheld when the latest cell or the CDF is",
    "disclosure_cells": "Every industry unit: contributors (members with a value, zero included), holders (with a "
                        "non-zero amount), largest member's share, and why it is withheld",
}


@dataclass(frozen=True)
class Table:
    name: str
    sql: str
    description: str


@cache
def identifier_columns(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, tuple[str, ...]]:
    """dataset -> its pseudonymised columns (``identifier: true`` in the contract)."""
    from pipelines.contracts import datasets, load_contract

    return {d: tuple(c.name for c in load_contract(d, None, schemas_dir).columns if c.identifier)
            for d in datasets(schemas_dir)}


def pseudonym_sql(member: str, token: str) -> str:
    """A member pseudonym of a platform token: unlinkable to another member's pseudonym."""
    return f"CASE WHEN {token} IS NOT NULL THEN 'm:' || sha256({literal(member)} || ':' || {token}) END"


def _published() -> list[Table]:
    return [Table(name, f"SELECT * FROM pub_{name}", DOCS[name]) for name in PUBLISHED]


def public_tables() -> list[Table]:
    return _published()


def member_tables(member: str, lake_tables: set[str], schemas_dir: Path = SCHEMAS_DIR,
                  source: str = LAKE) -> list[Table]:
    """Everything member ``member`` may see, read from the lake's tables in database ``source``
    (the lake, or a copy of its tables at the same snapshot: the build reads the regulator's)."""
    who = literal(member)
    own = f"member_id = {who}"
    tables = []
    for dataset, columns in identifier_columns(schemas_dir).items():
        if dataset in lake_tables:
            swap = ", ".join(f"{pseudonym_sql(member, c)} AS {c}" for c in columns)
            tables.append(Table(dataset, f"SELECT * {f'REPLACE ({swap})' if swap else ''} FROM {source}.{dataset} "
                                         f"WHERE {own}", DOCS.get(dataset, dataset)))
    record = (f"list_reduce(list_prepend(record, regexp_extract_all(record, '{TOKEN_PATTERN}')), "
              f"(acc, t) -> replace(acc, t, {pseudonym_sql(member, 't')}))")
    tables += [
        Table("quarantine", f"SELECT * REPLACE ({record} AS record) FROM {source}.quarantine WHERE {own}",
              DOCS["quarantine"]),
        Table("submissions", f"SELECT * EXCLUDE (archive_path) FROM {source}.submissions WHERE {own}",
              DOCS["submissions"]),
        Table("rule_results", f"SELECT * FROM {source}.rule_results WHERE submission_id IN "
                              f"(SELECT submission_id FROM {source}.submissions WHERE {own})", DOCS["rule_results"]),
    ]
    tables += [Table(m, f"SELECT * FROM {source}.{m} WHERE scope = 'member' AND {own}", DOCS[m]) for m in MEMBER_MARTS]
    tables += [
        Table("mart_benchmark", benchmark_sql(member, source), DOCS["mart_benchmark"]),
        Table("own_linked_claims", f"SELECT DISTINCT claim_no, link_kind, other_members FROM {source}.linked_claims "
                                   f"WHERE {own} ORDER BY claim_no, link_kind", DOCS["own_linked_claims"]),
    ]
    return tables + _published()


def regulator_tables(lake_tables: set[str]) -> list[Table]:
    """Every lake table as it is, the published industry tables and the disclosure decisions."""
    tables = [Table(t, f"SELECT * FROM {LAKE}.{t}", f"The lake's {t} table at the product's snapshot, unchanged")
              for t in sorted(lake_tables)]
    cells = """
        SELECT u.unit, u.mart, u.measure, x.grain, x.period, NULL AS origin, NULL::INTEGER AS age,
               x.line_of_business, x.region_code, u.contributors, u.holders, u.max_share, u.missing, u.primary_reason, u.reason
        FROM dc_units u JOIN dc_xp x USING (row_id) WHERE u.mart = 'experience'
        UNION ALL
        SELECT u.unit, u.mart, u.measure, t.grain, NULL, t.origin, t.age, t.line_of_business, t.region_code,
               u.contributors, u.holders, u.max_share, u.missing, u.primary_reason, u.reason
        FROM dc_units u JOIN dc_tri t USING (row_id) WHERE u.mart = 'triangle'
        ORDER BY unit"""
    return tables + _published() + [Table("disclosure_cells", cells, DOCS["disclosure_cells"])]
