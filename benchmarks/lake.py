"""A lake at scale for the marts benchmark, written straight into DuckLake (not through
ingestion, which the ingest part measures): five members, eight quarterly claim snapshots,
premium transactions behind them.

Each (member, period) slice is written by its own INSERT, into its own files, as ingestion
writes an accepted submission; 0.5% of the claimants claim at every member (so that
``linked_claims`` has work to do). ``add_one_submission`` and ``add_new_quarter`` then change
one member's data the way a new submission does.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.data import LINES, REGIONS
from pipelines import store
from pipelines.config import Settings
from pipelines.lake import Lake

MEMBERS = ("M001", "M002", "M003", "M004", "M005")
VALUATIONS = ["2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31",
              "2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"]
NEXT_VALUATION = "2026-03-31"
_CLAIM_COLUMNS = ("member_id, period, submission_id, source_row, claim_no, policy_no, valuation_date, "
                  "line_of_business, coverage_code, region_code, accident_date, report_date, claim_status, "
                  "close_date, paid_to_date, case_reserve, claimant_id, cause_code, dq_warnings")


def _claims_sql(claims: int, member: int) -> str:
    """One row per claim of member number ``member`` (every fifth claim of ``claims``)."""
    lob = "[" + ", ".join(f"'{line}'" for line, _ in LINES) + f"][1 + h1 % {len(LINES)}]"
    cov = "[" + ", ".join(f"'{c}'" for _, c in LINES) + f"][1 + h1 % {len(LINES)}]"
    region = "[" + ", ".join(f"'{r}'" for r in REGIONS) + f"][1 + h2 % {len(REGIONS)}]"
    return f"""
        WITH c AS (
            SELECT i, CAST(hash(i, 1) % 1000000007 AS BIGINT) AS h, CAST(hash(i, 2) % 1000 AS BIGINT) AS h1,
                   CAST(hash(i, 3) % 1000 AS BIGINT) AS h2
            FROM range({member}, {claims}, {len(MEMBERS)}) t(i)),
        d AS (SELECT *, DATE '2024-01-01' + CAST(h % 700 AS INTEGER) AS acc FROM c)
        SELECT i, '{MEMBERS[member]}' AS member_id, 'C' || lpad(CAST(i AS VARCHAR), 10, '0') AS claim_no,
               'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS policy_no, {lob} AS line_of_business,
               {cov} AS coverage_code, {region} AS region_code, acc AS accident_date,
               acc + CAST(h2 % 60 AS INTEGER) AS report_date, 2000 + h % 50000 AS ult, h1,
               'k1:' || md5(CASE WHEN i % 1000 < {len(MEMBERS)} THEN 'person' || (i // 1000)
                                 ELSE 'policy' || i END) AS claimant_id
        FROM d"""


def _snapshot_sql(valuation: str, submission: str = "bench") -> str:
    """The claim rows of the temporary table ``member_claims`` as valued on ``valuation``."""
    v = f"DATE '{valuation}'"
    age = f"date_diff('day', report_date, {v})"
    closed = f"{age} > 200 + h1"
    return f"""
        SELECT member_id, strftime({v}, '%Y') || 'Q' || quarter({v}), '{submission}', row_number() OVER (),
               claim_no, policy_no, {v}, line_of_business, coverage_code, region_code, accident_date, report_date,
               CASE WHEN {closed} THEN 'CLOSED' ELSE 'OPEN' END,
               CASE WHEN {closed} THEN report_date + CAST(200 + h1 AS INTEGER) END,
               CAST(ult * least(1.0, {age} / (200.0 + h1)) AS DECIMAL(18,2)),
               CAST(CASE WHEN {closed} THEN 0 ELSE ult * 1.1 * (1 - least(1.0, {age} / (200.0 + h1))) END
                    AS DECIMAL(18,2)),
               claimant_id, 'COLL', []
        FROM member_claims WHERE report_date <= {v}"""


def _policy_sql(quarter: str) -> str:
    """The premium rows of ``member_claims`` whose cover starts in ``quarter`` (its first day)."""
    return f"""
        SELECT member_id, strftime(eff, '%Y') || 'Q' || quarter(eff), 'bench', row_number() OVER (),
               policy_no, 'T' || policy_no, 'NB', eff, eff, eff + INTERVAL 365 DAY, line_of_business,
               coverage_code, region_code, CAST(800 + ult / 10 AS DECIMAL(18,2)), 1, 'k1:' || md5(policy_no),
               'P', []
        FROM (SELECT *, CAST(accident_date - INTERVAL 100 DAY AS DATE) AS eff FROM member_claims)
        WHERE date_trunc('quarter', eff) = DATE '{quarter}'"""


def _write_member(c, claims: int, member: int) -> None:
    c.execute(f"CREATE OR REPLACE TEMP TABLE member_claims AS {_claims_sql(claims, member)}")
    for valuation in VALUATIONS:
        c.execute(f"INSERT INTO {store.LAKE}.claim ({_CLAIM_COLUMNS}) {_snapshot_sql(valuation)}")
    quarters = [r[0] for r in c.execute(
        "SELECT DISTINCT date_trunc('quarter', accident_date - INTERVAL 100 DAY)::DATE FROM member_claims "
        "ORDER BY 1").fetchall()]
    for q in quarters:
        c.execute(f"""
            INSERT INTO {store.LAKE}.policy (member_id, period, submission_id, source_row, policy_no, transaction_id,
                transaction_type, accounting_date, effective_date, expiry_date, line_of_business, coverage_code,
                region_code, written_premium, written_exposure, insured_id, insured_type, dq_warnings)
            {_policy_sql(q.isoformat())}""")


def build_big_lake(home: Path, claim_rows: int) -> dict:
    """Write about ``claim_rows`` claim snapshot rows and their premium into the lake, one
    member at a time (one transaction each), one INSERT per slice."""
    settings = Settings.from_env(home=home)
    claims = max(1000, int(claim_rows / 4.4))           # a claim appears in about 4.4 snapshots
    with Lake(settings, read_only=False) as lake:
        con = lake.con
        lake.ensure()
        for member in range(len(MEMBERS)):
            lake.write(lambda c, m=member: _write_member(c, claims, m),
                                    message=f"benchmark lake {MEMBERS[member]}")
        rows = con.execute(f"SELECT count(*) FROM {store.LAKE}.claim").fetchone()[0]
        policies = con.execute(f"SELECT count(*) FROM {store.LAKE}.policy").fetchone()[0]
    return {"claim_rows": rows, "claims": claims, "policy_rows": policies}


def add_one_submission(home: Path) -> dict:
    """M003 resubmits its latest claim snapshot (2025Q4) with every paid amount 1% higher."""
    settings = Settings.from_env(home=home)
    slice_ = "member_id = 'M003' AND period = '2025Q4'"
    with Lake(settings, read_only=False) as lake:
        def work(c):
            c.execute(f"CREATE OR REPLACE TEMP TABLE resub AS SELECT * FROM {store.LAKE}.claim WHERE {slice_}")
            c.execute(f"DELETE FROM {store.LAKE}.claim WHERE {slice_}")
            return c.execute(f"INSERT INTO {store.LAKE}.claim SELECT * REPLACE (CAST(paid_to_date * 1.01 AS "
                             "DECIMAL(18,2)) AS paid_to_date, 'bench-v2' AS submission_id) FROM resub").fetchone()[0]

        rows, snapshot = lake.write(work, message="benchmark resubmission")
    return {"member": "M003", "period": "2025Q4", "rows": rows, "snapshot": snapshot}


def add_new_quarter(home: Path, claim_rows: int) -> dict:
    """M002 submits its claim snapshot of the next quarter (2026Q1): a new valuation."""
    settings = Settings.from_env(home=home)
    with Lake(settings, read_only=False) as lake:
        con = lake.con
        con.execute(f"CREATE TEMP TABLE member_claims AS {_claims_sql(max(1000, int(claim_rows / 4.4)), 1)}")
        sql = f"INSERT INTO {store.LAKE}.claim ({_CLAIM_COLUMNS}) {_snapshot_sql(NEXT_VALUATION, 'bench-2026Q1')}"
        rows, snapshot = lake.write(lambda c: c.execute(sql).fetchone()[0],
                                                 message="benchmark new quarter")
    return {"member": "M002", "period": "2026Q1", "rows": rows, "snapshot": snapshot}
