"""``validate``, the validation stage's one entry point, on small staged files counted by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.core.checked import ACCEPTED, QUARANTINED, ROW, TABLE
from pipelines.privacy.tokens import load_key
from pipelines.staging import stage_file, staging_connection
from pipelines.validation import Validation, validate
from tests.conftest import policy_row, submit_and_process, write_csv

POLICY = load_contract("policy")


@contextmanager
def validated(settings: Settings, tmp_path: Path, rows: list[dict[str, str]],
              period: str = "2024Q1") -> Iterator[tuple[duckdb.DuckDBPyConnection, Validation]]:
    """Stage ``rows`` as a CSV the way ingestion does and validate them; yield the staging
    connection (for table ``checked``) and what ``validate`` returned."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    path = write_csv(work / "policy.csv", rows)   # the staging database reads only its work folder
    with staging_connection(settings, work) as st:
        stage_file(st, path, file_name=path.name, file_format="csv", contract=POLICY, work_dir=work)
        lake = store.connect(settings, read_only=True)
        try:
            found = validate(st, lake, POLICY, member_id="M001", period=period, file_format="csv",
                             key=load_key(settings), settings=settings, name="M001-policy-test")
        finally:
            lake.close()
        yield st, found


def test_control_totals_and_quarantine_of_a_small_file(settings: Settings, tmp_path: Path) -> None:
    rows = [
        policy_row(transaction_id="T0001", written_premium="1200.00", written_exposure="1.000000"),
        policy_row(transaction_id="T0002", written_premium="300.50", written_exposure="0.500000"),
        # unreadable premium: quarantined, adds nothing to the total, counted as unreadable
        policy_row(transaction_id="T0003", written_premium="abc", written_exposure="1.000000"),
        # an unknown line of business: quarantined, but its premium is readable and counts
        policy_row(transaction_id="T0004", line_of_business="NOPE", written_premium="99.25",
                   written_exposure="1.000000"),
        # a phone number in free text is a warning: the row is published (masked), not quarantined
        policy_row(transaction_id="T0005", product_name="请致电13812345678", written_premium="10.00",
                   written_exposure="1.000000"),
    ]
    with validated(settings, tmp_path, rows) as (st, found):
        assert isinstance(found, Validation)
        assert found.check.rows == 5
        assert found.check.quarantined_rows == 2
        assert found.check.error_rows == 2 and found.check.fatal_rows == 0 and found.check.warned_rows == 1
        assert found.totals == {"written_premium": Decimal("1609.75"), "written_exposure": Decimal("4.5")}
        assert found.unreadable == {"written_premium": 1, "written_exposure": 0}
        assert found.gx is None   # the settings fixture keeps GX off (gx_max_rows=0)
        assert set(found.timings) == {"validation", "gx"}
        # the predicates the publisher reads split the table as counted by hand
        accepted = [r[0] for r in st.execute(f"SELECT {ROW} FROM {TABLE} WHERE {ACCEPTED} ORDER BY 1").fetchall()]
        quarantined = [r[0] for r in st.execute(
            f"SELECT {ROW} FROM {TABLE} WHERE {QUARANTINED} ORDER BY 1").fetchall()]
        assert accepted == [1, 2, 5]
        assert quarantined == [3, 4]


def test_references_come_from_the_members_other_periods(settings: Settings, tmp_path: Path) -> None:
    """POL-U02 looks up the member's published transaction ids of other periods (not this one),
    and GX's engine gets the same reference values."""
    earlier = policy_row(transaction_id="T0001", accounting_date="2023-11-10", effective_date="2023-11-10",
                         expiry_date="2024-11-10")
    assert submit_and_process(settings, write_csv(tmp_path / "q4.csv", [earlier]),
                              period="2023Q4").status == "accepted"
    same = policy_row(transaction_id="T0002")
    assert submit_and_process(settings, write_csv(tmp_path / "q1.csv", [same])).status == "accepted"

    rows = [policy_row(transaction_id="T0001"),    # already published in 2023Q4: fails POL-U02
            policy_row(transaction_id="T0002"),    # published in 2024Q1 itself: being replaced, fine
            policy_row(transaction_id="T0003")]
    with validated(replace(settings, gx_max_rows=100, gx_at_ingest=True), tmp_path, rows) as (_, found):
        assert found.check.failed("POL-U02") == 1
        assert found.check.quarantined_rows == 1
        assert found.totals["written_premium"] == Decimal("3600.00")
        assert found.gx is not None and found.gx.unexpected["POL-U02"] == 1
