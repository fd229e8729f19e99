"""Member scaling: the marts and products builds for 5, 50 and 400 members of the same size.

Each member is a realistic small insurer: ``policies`` policies (one new-business transaction
each, cover starting over two years), a claim on every eighth, and eight quarterly claim
snapshots. The lake is written straight into DuckLake (not through ingestion, which the
ingest part measures): 25 members per transaction, one INSERT per member and dataset, so that
each member's rows have files of their own (ingestion writes one per slice, a member's dataset
for one period: more and smaller files);
about 0.5% of the claimants also claim at four other members (``linked_claims`` has work).

Then, each in its own process: a full ``build_marts`` and a products build (``--force``),
timed per step, with peak RSS. The table gives time per step and the growth from one size to
the next next to the growth of the members (time(400) / time(50) against 8x).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.data import LINES, REGIONS
from benchmarks.lake import _CLAIM_COLUMNS, VALUATIONS, _snapshot_sql

SIZES = (5, 50, 400)
POLICIES = 2000
_POLICY_COLUMNS = ("member_id, period, submission_id, source_row, policy_no, transaction_id, transaction_type, "
                   "accounting_date, effective_date, expiry_date, line_of_business, coverage_code, region_code, "
                   "written_premium, written_exposure, insured_id, insured_type, dq_warnings")


def member_id(index: int) -> str:
    return f"M{index + 1:04d}"


def _policies_sql(member: int, policies: int) -> str:
    """One row per policy of member number ``member``, with what its claim (if any) needs."""
    lob = "[" + ", ".join(f"'{line}'" for line, _ in LINES) + f"][1 + h1 % {len(LINES)}]"
    cov = "[" + ", ".join(f"'{c}'" for _, c in LINES) + f"][1 + h1 % {len(LINES)}]"
    region = "[" + ", ".join(f"'{r}'" for r in REGIONS) + f"][1 + h2 % {len(REGIONS)}]"
    m = member_id(member)
    return f"""
        WITH p AS (
            SELECT j, CAST(hash({member}, j, 1) % 1000000007 AS BIGINT) AS h,
                   CAST(hash({member}, j, 2) % 1000 AS BIGINT) AS h1, CAST(hash({member}, j, 3) % 1000 AS BIGINT) AS h2
            FROM range({policies}) t(j)),
        d AS (SELECT *, DATE '2024-01-01' + CAST(h % 640 AS INTEGER) AS eff FROM p)
        SELECT j, '{m}' AS member_id, 'P{m}' || lpad(CAST(j AS VARCHAR), 7, '0') AS policy_no,
               {lob} AS line_of_business, {cov} AS coverage_code, {region} AS region_code, eff,
               eff + CAST(h % 300 AS INTEGER) AS accident_date,
               eff + CAST(h % 300 + h2 % 60 AS INTEGER) AS report_date, 2000 + h % 50000 AS ult, h1,
               'C{m}' || lpad(CAST(j AS VARCHAR), 7, '0') AS claim_no,
               'k1:' || md5(CASE WHEN j % 1600 = 0 THEN 'person' || j || '/' || ({member} // 5)
                                 ELSE 'claimant {m}/' || j END) AS claimant_id
        FROM d"""


def _write_member(c, member: int, policies: int) -> None:
    """A member's claim snapshots and premium transactions, one INSERT (its own files) each."""
    c.execute(f"CREATE OR REPLACE TEMP TABLE member_policies AS {_policies_sql(member, policies)}")
    c.execute("CREATE OR REPLACE TEMP TABLE member_claims AS SELECT * FROM member_policies WHERE j % 8 = 0")
    snapshots = " UNION ALL ".join(f"({_snapshot_sql(v)})" for v in VALUATIONS)
    c.execute(f"INSERT INTO lake.claim ({_CLAIM_COLUMNS}) {snapshots}")
    c.execute(f"""INSERT INTO lake.policy ({_POLICY_COLUMNS})
        SELECT member_id, strftime(eff, '%Y') || 'Q' || quarter(eff), 'bench', row_number() OVER (),
               policy_no, 'T' || policy_no, 'NB', eff, eff, eff + INTERVAL 365 DAY, line_of_business,
               coverage_code, region_code, CAST(800 + ult / 10 AS DECIMAL(18,2)), 1, 'k1:' || md5(policy_no),
               'P', []
        FROM member_policies ORDER BY eff""")


def build_members_lake(home: Path, members: int, policies: int = POLICIES, per_commit: int = 25) -> dict:
    """Write ``members`` members of ``policies`` policies each into the lake of ``home``,
    ``per_commit`` members per lake transaction."""
    from pipelines import store
    from pipelines.config import Settings
    from pipelines.lake import Lake

    settings = Settings.from_env(home=home)
    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        for first in range(0, members, per_commit):
            batch = range(first, min(members, first + per_commit))
            lake.write(lambda c, b=batch: [_write_member(c, m, policies) for m in b],
                       message=f"benchmark {member_id(batch[0])}-{member_id(batch[-1])}")
        claims = lake.con.execute(f"SELECT count(*) FROM {store.LAKE}.claim").fetchone()[0]
        premiums = lake.con.execute(f"SELECT count(*) FROM {store.LAKE}.policy").fetchone()[0]
    return {"members": members, "claim_rows": claims, "policy_rows": premiums}


def members_part(out: Path, say: Callable[[str], None], measure: Callable[..., dict], home: Callable[[Path], Path],
                 sizes: tuple[int, ...] = SIZES, policies: int = POLICIES) -> dict:
    """Build a lake per size, then the marts and the products, each in its own process."""
    results = {}
    for n in sizes:
        where = home(out / f"members_{n}")
        env = {"INSURSHARE_HOME": str(where), "INSURSHARE_DUCKDB_MEMORY": "1500MB"}
        say(f"members: writing a lake of {n} members x {policies:,} policies ...")
        lake = measure("members_lake", where, n, policies, env=env)
        say(f"members: {n} members: marts ...")
        marts = measure("marts", where, env=env)
        say(f"members: {n} members: products ...")
        products = measure("products", where, env=env)
        results[n] = {"lake": lake, "marts": marts, "products": products}
        say(f"members {n}: {lake['claim_rows'] + lake['policy_rows']:,} rows; marts {marts['wall']:.1f} s "
            f"({marts['peak_rss_mb']} MB), products {products['wall']:.1f} s ({products['peak_rss_mb']} MB)")
    for line in table(results):
        say(line)
    return results


def table(results: dict) -> list[str]:
    """Time per step at each size, and the growth ratio of each step from one size to the next."""
    sizes = sorted(results, key=int)
    rows: dict[str, list[float]] = {}
    for build in ("marts", "products"):
        for n in sizes:
            for step, seconds in results[n][build].get("steps", {}).items():
                rows.setdefault(f"{build}.{step}", [0.0] * len(sizes))[sizes.index(n)] = seconds
        for n in sizes:
            rows.setdefault(f"{build} (wall)", [0.0] * len(sizes))[sizes.index(n)] = results[n][build]["wall"]
            rows.setdefault(f"{build} RSS MB", [0.0] * len(sizes))[sizes.index(n)] = results[n][build]["peak_rss_mb"]
    ratios = [f"x{int(b) / int(a):g} members" for a, b in zip(sizes, sizes[1:], strict=False)]
    head = f"{'step':<34}" + "".join(f"{str(n) + ' members':>14}" for n in sizes) + "".join(f"{r:>16}" for r in ratios)
    out = [head, f"{'rows (claim + premium)':<34}" + "".join(
        f"{results[n]['lake']['claim_rows'] + results[n]['lake']['policy_rows']:>14,}" for n in sizes)]
    for step, values in rows.items():
        growth = "".join(f"{(b / a if a > 0.005 else float('nan')):>16.1f}" for a, b in zip(values, values[1:], strict=False))
        out.append(f"{step:<34}" + "".join(f"{v:>14.2f}" for v in values) + growth)
    return out
