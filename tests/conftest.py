"""Shared fixtures: a platform home with a key and members, and builders of small files."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.privacy.checkdigits import credit_code_check_char, resident_id_check_char, vin_check_char

TODAY = dt.date(2026, 1, 15)


def resident_id(region: str = "110105", birth: str = "19800215", seq: str = "123") -> str:
    first = f"{region}{birth}{seq}"
    return first + resident_id_check_char(first)


def credit_code(body: str = "91110000MA01ABCD1") -> str:
    return body + credit_code_check_char(body)


def vin(body: str = "LSVAU2180N2") -> str:
    raw = (body + "0" * 17)[:17]
    return raw[:8] + vin_check_char(raw[:8] + "0" + raw[9:]) + raw[9:]


def policy_row(**overrides: object) -> dict[str, str]:
    """A premium transaction that breaks no rule of the policy contract (period 2024Q1)."""
    row = {
        "policy_no": "P0001", "transaction_id": "T0001", "transaction_type": "NB",
        "accounting_date": "2024-01-10", "effective_date": "2024-01-10", "expiry_date": "2025-01-10",
        "line_of_business": "MCOM", "coverage_code": "MCOM-OD", "region_code": "110000",
        "written_premium": "1200.00", "written_exposure": "1.000000", "sum_insured": "100000.00",
        "insured_id": resident_id(), "insured_type": "P", "birth_date": "1980-02-15", "gender": "M",
        "vin": vin(), "phone": "13812345678", "channel": "AGENT", "product_name": "机动车商业保险",
    }
    row.update({k: "" if v is None else str(v) for k, v in overrides.items()})
    return row


def claim_row(**overrides: object) -> dict[str, str]:
    """A claim snapshot row that breaks no rule of the claim contract (period 2024Q1)."""
    row = {
        "claim_no": "C0001", "policy_no": "P0001", "valuation_date": "2024-03-31",
        "line_of_business": "MCOM", "coverage_code": "MCOM-OD", "region_code": "110000",
        "accident_date": "2024-02-01", "report_date": "2024-02-03", "claim_status": "OPEN",
        "close_date": "", "paid_to_date": "500.00", "case_reserve": "1500.00",
        "claimant_id": resident_id(), "cause_code": "COLL", "loss_description": "追尾事故",
    }
    row.update({k: "" if v is None else str(v) for k, v in overrides.items()})
    return row


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8",
              header: list[str] | None = None) -> Path:
    header = header or list(rows[0].keys())
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A platform home with a pseudonymisation key and members M001-M003 registered.

    GX's engine is off here (``gx_max_rows=0``) to keep tests quick; the tests about GX turn it on.
    """
    s = Settings(home=tmp_path / "home", gx_max_rows=0)
    create_keys(s)
    add_members(s, {"M001": "Member One", "M002": "Member Two", "M003": "Member Three"})
    return s


@pytest.fixture
def lake(settings: Settings):
    """A read-only connection factory on the settings' lake (a fresh connection each call)."""
    def open_lake(snapshot: int | None = None):
        return store.connect(settings, read_only=True, snapshot=snapshot)
    return open_lake


def lake_rows(settings: Settings, queries: dict[str, str]) -> dict[str, list]:
    """``{name: rows}`` of each query on a read-only connection to the settings' lake: the
    contents two runs of the platform are compared on."""
    con = store.connect(settings, read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        con.close()


def manifest_json(path: Path, **fields: object) -> Path:
    path.write_text(json.dumps(fields), encoding="utf-8")
    return path


def submit(settings: Settings, path: Path, member: str = "M001", dataset: str = "policy",
           period: str = "2024Q1", **manifest: object):
    """Receive ``path`` for the slice and return the ``Received`` record."""
    from pipelines.intake import Manifest, receive

    return receive(settings, path, Manifest.build(member_id=member, dataset=dataset, period=period,
                                                  **manifest), today=TODAY)


def submit_and_process(settings: Settings, path: Path, **kwargs: object):
    """Receive and ingest one file; return the ``Outcome``."""
    from pipelines.ingest import process_submission

    got = submit(settings, path, **kwargs)
    return process_submission(settings, got.submission.submission_id)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (``tests/reports/cdp.py``) for the browser tests of reports, pre-checks and
    the portal; installed by ``scripts/install-chromium.sh`` when missing, else the test is skipped."""
    import subprocess

    from pipelines.config import PROJECT_ROOT
    from tests.reports.cdp import Browser, find_chromium

    binary = find_chromium()
    if binary is None:
        script = PROJECT_ROOT / "scripts" / "install-chromium.sh"
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
        binary = find_chromium()
        if binary is None:
            pytest.skip(f"Chromium is not installed and {script.name} could not install it "
                        f"(exit {done.returncode}): {done.stderr.strip()[-300:]}")
    with Browser(binary, tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b
