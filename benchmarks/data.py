"""Large synthetic submissions for benchmarks, written by DuckDB in seconds.

Identifiers come from pools of valid numbers made in Python (check digits right); rows are
made in SQL from ``range(n)`` with a hash for each attribute, so a 10-million-row file takes
seconds. About 1% of rows carry a defect so that validation has work to report.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb

from pipelines.privacy.checkdigits import (
    CREDIT_ALPHABET,
    VIN_ALPHABET,
    credit_code_check_char,
    resident_id_check_char,
    vin_check_char,
)

LINES = [("MTPL", "MTPL-TPL"), ("MCOM", "MCOM-OD"), ("MCOM", "MCOM-TPL"), ("EPROP", "EPROP-ALL"),
         ("HPROP", "HPROP-BLD"), ("LIAB", "LIAB-PUB"), ("ACC", "ACC-PA"), ("HLTH", "HLTH-MED")]
REGIONS = ["110000", "310000", "440000", "320000", "330000", "510000", "370000", "420000"]


def _pools(seed: int, size: int) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    people, orgs, vins = [], [], []
    for _ in range(size):
        first = f"{rng.choice(REGIONS)[:2]}0105{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}" \
                f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
        people.append(first + resident_id_check_char(first))
        body = "91" + f"{rng.randint(110000, 659999)}" + "".join(rng.choice(CREDIT_ALPHABET) for _ in range(9))
        orgs.append(body + credit_code_check_char(body))
        raw = "L" + "".join(rng.choice(VIN_ALPHABET) for _ in range(16))
        vins.append(raw[:8] + vin_check_char(raw[:8] + "0" + raw[9:]) + raw[9:])
    return people, orgs, vins


def _with_pools(con: duckdb.DuckDBPyConnection, seed: int, size: int = 20_000) -> None:
    people, orgs, vins = _pools(seed, size)
    con.execute("CREATE OR REPLACE TEMP TABLE pool AS SELECT * FROM (SELECT unnest(?) AS person, "
                "unnest(?) AS org, unnest(?) AS vin, generate_subscripts(?, 1) - 1 AS k)",
                [people, orgs, vins, people])


def _lines_sql(h: str) -> str:
    lob = "[" + ", ".join(f"'{line}'" for line, _ in LINES) + f"][1 + {h} % {len(LINES)}]"
    cov = "[" + ", ".join(f"'{c}'" for _, c in LINES) + f"][1 + {h} % {len(LINES)}]"
    return lob, cov


def write_policy_csv(path: Path, rows: int, seed: int = 1, period_start: str = "2025-01-01") -> Path:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    _with_pools(con, seed)
    lob, cov = _lines_sql("h1")
    region = "[" + ", ".join(f"'{r}'" for r in REGIONS) + f"][1 + h2 % {len(REGIONS)}]"
    con.execute(f"""
        COPY (
        WITH r AS (SELECT i, CAST(hash(i, {seed}) % 1000000007 AS BIGINT) AS h, CAST(hash(i, {seed} + 1) % 1000 AS BIGINT) AS h1, CAST(hash(i, {seed} + 2) % 1000 AS BIGINT) AS h2
                   FROM range({rows}) t(i)),
        d AS (SELECT *, DATE '{period_start}' + CAST(h % 90 AS INTEGER) AS eff FROM r)
        SELECT 'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS policy_no,
               'T' || lpad(CAST(i AS VARCHAR), 9, '0') AS transaction_id,
               CASE WHEN h1 % 10 = 0 THEN 'RN' ELSE 'NB' END AS transaction_type,
               eff AS accounting_date, eff AS effective_date, CAST(eff + INTERVAL 365 DAY AS DATE) AS expiry_date,
               {lob} AS line_of_business, {cov} AS coverage_code,
               CASE WHEN h % 211 = 0 THEN '999999' ELSE {region} END AS region_code,
               CAST(round(500 + (h % 500000) / 100.0, 2) AS DECIMAL(18,2)) AS written_premium,
               1.000000 AS written_exposure, CAST(100000 + h % 900000 AS DECIMAL(18,2)) AS sum_insured,
               CASE WHEN h2 % 5 = 0 THEN p.org ELSE p.person END AS insured_id,
               CASE WHEN h2 % 5 = 0 THEN 'O' ELSE 'P' END AS insured_type,
               CASE WHEN h2 % 5 = 0 THEN NULL ELSE strptime(substr(p.person, 7, 8), '%Y%m%d')::DATE END AS birth_date,
               CASE WHEN h2 % 5 = 0 THEN NULL WHEN CAST(substr(p.person, 17, 1) AS INT) % 2 = 1 THEN 'M' ELSE 'F' END AS gender,
               CASE WHEN {lob} IN ('MTPL', 'MCOM') THEN p.vin END AS vin,
               CASE WHEN h2 % 5 = 0 THEN NULL ELSE '138' || lpad(CAST(h % 100000000 AS VARCHAR), 8, '0') END AS phone,
               'AGENT' AS channel, '机动车商业保险' AS product_name
        FROM d JOIN pool p ON p.k = d.h % 20000
        ORDER BY i
        ) TO '{path}' (HEADER, DELIMITER ',')""")
    return path


def write_claim_csv(path: Path, rows: int, policies: int, seed: int = 2,
                    valuation: str = "2025-03-31") -> Path:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    _with_pools(con, seed)
    lob, cov = _lines_sql("h1")
    region = "[" + ", ".join(f"'{r}'" for r in REGIONS) + f"][1 + h2 % {len(REGIONS)}]"
    con.execute(f"""
        COPY (
        WITH r AS (SELECT i, CAST(hash(i, {seed}) % 1000000007 AS BIGINT) AS h, CAST(hash(i, {seed} + 1) % 1000 AS BIGINT) AS h1, CAST(hash(i, {seed} + 2) % 1000 AS BIGINT) AS h2
                   FROM range({rows}) t(i)),
        d AS (SELECT *, DATE '{valuation}' - CAST(30 + h % 700 AS INTEGER) AS acc FROM r)
        SELECT 'C' || lpad(CAST(i AS VARCHAR), 10, '0') AS claim_no,
               'P' || lpad(CAST(CASE WHEN h % 307 = 0 THEN {policies} + i ELSE i % {policies} END AS VARCHAR), 9, '0') AS policy_no,
               DATE '{valuation}' AS valuation_date, {lob} AS line_of_business, {cov} AS coverage_code,
               {region} AS region_code, acc AS accident_date,
               CAST(CASE WHEN h % 401 = 0 THEN acc - INTERVAL 3 DAY ELSE acc + CAST(h2 % 20 AS INTEGER) END AS DATE) AS report_date,
               CASE WHEN h1 % 3 = 0 THEN 'CLOSED' ELSE 'OPEN' END AS claim_status,
               CASE WHEN h1 % 3 = 0 THEN acc + CAST(25 + h2 % 5 AS INTEGER) END AS close_date,
               CAST(round((h % 2000000) / 100.0, 2) AS DECIMAL(18,2)) AS paid_to_date,
               CASE WHEN h1 % 3 = 0 THEN 0.00 ELSE CAST(round((h % 3000000) / 100.0, 2) AS DECIMAL(18,2)) END AS case_reserve,
               CASE WHEN h % 503 = 0 THEN substr(p.person, 1, 17) || 'Z' ELSE p.person END AS claimant_id,
               'COLL' AS cause_code, '追尾事故' AS loss_description
        FROM d JOIN pool p ON p.k = d.h % 20000
        ORDER BY i
        ) TO '{path}' (HEADER, DELIMITER ',')""")
    return path
