"""A lake at scale for the marts benchmark, written straight into DuckLake (not through
ingestion, which the ingest part measures): five members, eight quarterly claim snapshots,
premium transactions behind them."""

from __future__ import annotations

from pathlib import Path

from benchmarks.data import LINES, REGIONS
from pipelines import store
from pipelines.config import Settings

MEMBERS = ("M001", "M002", "M003", "M004", "M005")
VALUATIONS = ["2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31",
              "2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"]


def _claims_sql(claims: int) -> str:
    lob = "[" + ", ".join(f"'{line}'" for line, _ in LINES) + f"][1 + h1 % {len(LINES)}]"
    cov = "[" + ", ".join(f"'{c}'" for _, c in LINES) + f"][1 + h1 % {len(LINES)}]"
    region = "[" + ", ".join(f"'{r}'" for r in REGIONS) + f"][1 + h2 % {len(REGIONS)}]"
    vals = "[" + ", ".join(f"DATE '{v}'" for v in VALUATIONS) + "]"
    return f"""
        WITH c AS (
            SELECT i, CAST(hash(i, 1) % 1000000007 AS BIGINT) AS h, CAST(hash(i, 2) % 1000 AS BIGINT) AS h1,
                   CAST(hash(i, 3) % 1000 AS BIGINT) AS h2
            FROM range({claims}) t(i)),
        d AS (SELECT *, DATE '2024-01-01' + CAST(h % 700 AS INTEGER) AS acc FROM c),
        e AS (SELECT *, acc + CAST(h2 % 60 AS INTEGER) AS rep, 2000 + h % 50000 AS ult FROM d)
        SELECT ['M001', 'M002', 'M003', 'M004', 'M005'][1 + i % 5] AS member_id, v AS valuation_date,
               'C' || lpad(CAST(i AS VARCHAR), 10, '0') AS claim_no, 'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS policy_no,
               {lob} AS line_of_business, {cov} AS coverage_code, {region} AS region_code,
               acc AS accident_date, rep AS report_date, ult, h1,
               date_diff('day', rep, v) AS age_days
        FROM e, unnest({vals}) u(v) WHERE v >= rep"""


def build_big_lake(home: Path, claim_rows: int) -> dict:
    """Write about ``claim_rows`` claim snapshot rows and their premium into the lake."""
    settings = Settings(home=home)
    claims = max(1000, int(claim_rows / 4.4))           # a claim appears in about 4.4 snapshots
    con = store.connect(settings, read_only=False)
    try:
        store.ensure_lake(con, settings)
        con.execute(f"CREATE TEMP TABLE snap AS {_claims_sql(claims)}")

        def work(c):
            c.execute(f"""
                INSERT INTO {store.LAKE}.claim (member_id, period, submission_id, source_row, claim_no, policy_no,
                    valuation_date, line_of_business, coverage_code, region_code, accident_date, report_date,
                    claim_status, close_date, paid_to_date, case_reserve, claimant_id, cause_code, dq_warnings)
                SELECT member_id, strftime(valuation_date, '%Y') || 'Q' || quarter(valuation_date),
                       'bench', row_number() OVER (), claim_no, policy_no, valuation_date, line_of_business,
                       coverage_code, region_code, accident_date, report_date,
                       CASE WHEN age_days > 200 + h1 THEN 'CLOSED' ELSE 'OPEN' END,
                       CASE WHEN age_days > 200 + h1 THEN report_date + CAST(200 + h1 AS INTEGER) END,
                       CAST(ult * least(1.0, age_days / (200.0 + h1)) AS DECIMAL(18,2)),
                       CAST(CASE WHEN age_days > 200 + h1 THEN 0 ELSE ult * 1.1 * (1 - least(1.0, age_days / (200.0 + h1))) END
                            AS DECIMAL(18,2)),
                       'k1:' || md5(policy_no), 'COLL', []
                FROM snap""")
            c.execute(f"""
                INSERT INTO {store.LAKE}.policy (member_id, period, submission_id, source_row, policy_no, transaction_id,
                    transaction_type, accounting_date, effective_date, expiry_date, line_of_business, coverage_code,
                    region_code, written_premium, written_exposure, insured_id, insured_type, dq_warnings)
                SELECT member_id, strftime(eff, '%Y') || 'Q' || quarter(eff), 'bench', i, policy_no, 'T' || policy_no,
                       'NB', eff, eff, eff + INTERVAL 365 DAY, line_of_business, coverage_code, region_code,
                       CAST(800 + ult / 10 AS DECIMAL(18,2)), 1, 'k1:' || md5(policy_no), 'P', []
                FROM (SELECT DISTINCT ON (claim_no) row_number() OVER () AS i, member_id, policy_no, line_of_business,
                             coverage_code, region_code, ult, CAST(accident_date - INTERVAL 100 DAY AS DATE) AS eff
                      FROM snap)""")
        store.write_transaction(con, settings, work, message="benchmark lake")
        rows = con.execute(f"SELECT count(*) FROM {store.LAKE}.claim").fetchone()[0]
        policies = con.execute(f"SELECT count(*) FROM {store.LAKE}.policy").fetchone()[0]
    finally:
        con.close()
    return {"claim_rows": rows, "claims": claims, "policy_rows": policies}


def add_one_submission(home: Path) -> None:
    """A member resubmits its latest claim snapshot with every paid amount 1% higher."""
    settings = Settings(home=home)
    con = store.connect(settings, read_only=False)
    try:
        def work(c):
            c.execute(f"CREATE TEMP TABLE resub AS SELECT * FROM {store.LAKE}.claim "
                      "WHERE member_id = 'M003' AND period = '2025Q4'")
            c.execute(f"DELETE FROM {store.LAKE}.claim WHERE member_id = 'M003' AND period = '2025Q4'")
            c.execute(f"INSERT INTO {store.LAKE}.claim SELECT * REPLACE (CAST(paid_to_date * 1.01 AS DECIMAL(18,2)) "
                      "AS paid_to_date, 'bench-v2' AS submission_id) FROM resub")
        store.write_transaction(con, settings, work, message="benchmark resubmission")
    finally:
        con.close()
