"""Fixtures of the mart tests: small lakes whose rows are written straight into DuckLake.

The marts read only the accepted ``policy`` and ``claim`` tables, so most tests insert rows
there directly (fast, and every number is known); the tests of submission order and
resubmissions go through real ingestion instead (``test_reproducible.py``).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd
import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.lake import ensure_lake, write_transaction

D = dt.date
YEARS = (2022, 2023, 2024)
QUARTER_ENDS = [D(y, m, 31 if m in (3, 12) else 30) for y in YEARS for m in (3, 6, 9, 12)]
MEMBERS, LINES, REGIONS = ("M001", "M002", "M003"), ("MCOM", "EPROP"), ("110000", "310000")


def quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def insert_rows(settings: Settings, table: str, rows: list[dict]) -> int:
    """Insert ``rows`` into the lake's ``table`` in one transaction; return its snapshot id."""
    con = store.connect(settings, read_only=False)
    try:
        ensure_lake(con, settings)
        con.register("incoming_rows", pd.DataFrame(rows))
        _, snap = write_transaction(
            con, settings, lambda c: c.execute(f"INSERT INTO {store.LAKE}.{table} BY NAME "
                                               "SELECT * FROM incoming_rows"), message=f"test rows {table}")
        return snap
    finally:
        con.close()


def query(settings: Settings, sql: str, params: list | None = None, snapshot: int | None = None) -> pd.DataFrame:
    """A read-only query on the lake (tables as ``lake.<name>``) as a DataFrame."""
    con = store.connect(settings, read_only=True, snapshot=snapshot)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def policy(member: str, eff: dt.date, exp: dt.date, premium: float, exposure: float = 1.0, *,
           acc: dt.date | None = None, line: str = "MCOM", region: str = "110000", kind: str = "NB") -> dict:
    """A premium transaction row of the lake's ``policy`` table (accounted on ``acc``, default ``eff``)."""
    acc = acc or eff
    return {"member_id": member, "period": quarter_of(acc), "transaction_type": kind,
            "accounting_date": acc, "effective_date": eff, "expiry_date": exp, "line_of_business": line,
            "region_code": region, "written_premium": premium, "written_exposure": exposure}


def claim_snapshots(member: str, claim_no: str, accident: dt.date, report: dt.date, paid: list[float],
                    reserve: float, closes_at: int | None, *, line: str = "MCOM", region: str = "110000",
                    valuations: list[dt.date] = QUARTER_ENDS) -> list[dict]:
    """A claim's row in every snapshot from its report on: ``paid[k]`` is the cumulative paid
    amount at the k-th snapshot (the last one repeats), the reserve is ``reserve`` less the paid
    amount while open, and the claim is closed from the ``closes_at``-th snapshot on."""
    rows = []
    for k, v in enumerate(x for x in valuations if x >= report):
        cum = paid[min(k, len(paid) - 1)]
        closed = closes_at is not None and k >= closes_at
        rows.append({"member_id": member, "period": quarter_of(v), "claim_no": claim_no,
                     "valuation_date": v, "line_of_business": line, "region_code": region,
                     "accident_date": accident, "report_date": report,
                     "claim_status": "CLOSED" if closed else "OPEN", "close_date": v if closed else None,
                     "paid_to_date": cum, "case_reserve": 0.0 if closed else round(max(reserve - cum, 0.0), 2)})
    return rows


def synthetic_claims(seed: int = 7) -> list[dict]:
    """Claim snapshots where every cell of every triangle is positive (chainladder reads a zero
    cell as missing): each accident quarter of each member, line and province has a claim
    reported, paid and closed within the quarter, plus one to three slower claims."""
    rnd = random.Random(seed)
    rows: list[dict] = []
    for member in MEMBERS:
        for line in LINES:
            for region in REGIONS:
                for q_end in QUARTER_ENDS:
                    q_start = D(q_end.year, q_end.month - 2, 1)
                    for k in range(rnd.randint(2, 4)):
                        accident = q_start + dt.timedelta(days=rnd.randrange(0, 60))
                        fast = k == 0
                        report = accident + dt.timedelta(days=5 if fast else rnd.randrange(0, 200))
                        if report > QUARTER_ENDS[-1]:
                            continue
                        steps = [round(rnd.uniform(100, 5000), 2) for _ in range(rnd.randint(1, 6))]
                        paid = [round(sum(steps[: i + 1]), 2) for i in range(len(steps))]
                        rows += claim_snapshots(member, f"{member}-{len(rows):06d}", accident, report, paid,
                                                reserve=paid[-1] * rnd.uniform(0.8, 1.4),
                                                closes_at=0 if fast else rnd.randint(1, 8),
                                                line=line, region=region)
    return rows


def synthetic_policies() -> list[dict]:
    return [policy(m, D(2022, 1, 1) + dt.timedelta(days=30 * i), D(2023, 1, 1) + dt.timedelta(days=30 * i),
                   1000.0 + 10 * i + 100 * MEMBERS.index(m), 1.0, line=line, region=region)
            for m in MEMBERS for line in LINES for region in REGIONS for i in range(36)]


@pytest.fixture(scope="session")
def mart_home(tmp_path_factory) -> Settings:
    """A lake with synthetic premium and claim rows of three members and its marts built once.

    Shared by several modules: tests must not change it (use ``fresh_home`` for that)."""
    from pipelines.marts.build import build_marts

    settings = Settings(home=Path(tmp_path_factory.mktemp("marts")) / "home")
    insert_rows(settings, "claim", synthetic_claims())
    insert_rows(settings, "policy", synthetic_policies())
    build_marts(settings)
    return settings


@pytest.fixture
def fresh_home(tmp_path: Path) -> Settings:
    """An empty platform home (the lake is created by the first ``insert_rows``)."""
    return Settings(home=tmp_path / "home")
