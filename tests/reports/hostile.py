"""A lake built from hostile submissions, for the escaping and pseudonym tests of the reports.

Every column of a policy file and of a claim file holds, row by row, each of ``PAYLOADS``:
script tags, event handlers, ``javascript:`` URLs, quotes that close attributes, ``</style>``,
template syntax, direction-changing and full-width characters. Each payload carries a marker
``XSSnn``: markup that came from a payload carries its marker in a tag, an attribute, a script
or a comment, and a script that ran sets ``document.title`` (or ``window.xss``) to it. The file
name is hostile too. The policy file is sent for 2024Q2 with GX's engine and for 2024Q3 without
(Data Docs from counts), the claim file for 2024Q1 with GX.

Two members also send clean premium data for 2024Q1 about the same insured person, with one
quarantined and one warned row each, and the lake gets its marts and products, so a member's
downloads can be compared with its product.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.intake import Manifest, receive
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import claim_row, policy_row, resident_id, write_csv
from tests.reports.conftest import REPORT_DAY, _ingest

PAYLOADS = (
    '<script>document.title="XSS01";window.xss=1</script>',
    '<img src=x onerror="document.title=\'XSS02\';window.xss=2">',
    '"><svg onload=document.title="XSS03">',
    "'><iframe srcdoc='<script>parent.document.title=`XSS04`</script>'>",
    'javascript:document.title="XSS05"',
    '</style><script>document.title="XSS06"</script>',
    '</textarea></title><body onload=document.title="XSS07">',
    "\u202e<b id=XSS08>evil</b>\u200b",
    '＜script＞document.title="XSS09"＜/script＞',
    "<!--XSS10--><a href=\"javascript:document.title='XSS11'\">x</a>",
    "${template}$styling{{7*7}}<i class=XSS12>",
    "=HYPERLINK(\"javascript:document.title='XSS13'\",\"x\")",
    "<a href=&#x6A;avascript:alert(1) id=XSS14>x</a>",
    "@SUM(1+1)*cmd|' /C calc'!A0<u class=XSS15>",
)
MARKER = re.compile(r"xss\d\d", re.IGNORECASE)
FILE_NAME = "\"><img src=x onerror=document.title='XSS20'>.csv"
PERSON = resident_id()
SHARED_ROW = dict(insured_id=PERSON, product_name="团险，联系人13812345678")


@dataclass(frozen=True)
class Hostile:
    settings: Settings
    ids: dict[str, str]
    built: object          # pipelines.reports.Built


def hostile_rows(dataset: str) -> list[dict[str, str]]:
    """One row per (column, payload), keys made unique; every other value valid."""
    make, key = (policy_row, "transaction_id") if dataset == "policy" else (claim_row, "claim_no")
    rows = []
    for column in load_contract(dataset).column_names:
        for payload in PAYLOADS:
            row = make(**{column: payload})
            if column != key:
                row[key] = f"K{len(rows):05d}"
            rows.append(row)
    return rows


def _shift(rows: list[dict[str, str]], day: str) -> list[dict[str, str]]:
    for r in rows:
        r.update(accounting_date=day, effective_date=day, expiry_date=f"{int(day[:4]) + 1}{day[4:]}")
    return rows


def build_hostile(home: Path, files: Path) -> tuple[Settings, dict[str, str]]:
    settings = Settings(home=home, gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Member One", "M002": "Member Two"})
    ids: dict[str, str] = {}

    def send(name: str, rows: list[dict], member: str, dataset: str, period: str, gx: bool,
             file_name: str | None = None) -> None:
        path = write_csv(files / f"{name}.csv", rows)
        got = receive(settings, path, Manifest.build(member_id=member, dataset=dataset, period=period),
                      file_name=file_name, received_at=dt.datetime(2024, 4, 20, 9), today=REPORT_DAY)
        ids[name] = got.submission.submission_id
        _ingest(settings, ids[name], gx=gx)

    for member in ("M001", "M002"):
        clean = [policy_row(transaction_id=f"{member}T{i:03d}", policy_no=f"{member}P{i:03d}", **SHARED_ROW)
                 for i in range(30)]
        clean[1]["region_code"] = "999999"          # quarantined, with the shared person's id
        clean[2]["phone"] = "12345"                 # published with a warning
        send(f"{member}_clean", clean, member, "policy", "2024Q1", gx=member == "M001")
    send("policy_gx", _shift(hostile_rows("policy"), "2024-05-10"), "M001", "policy", "2024Q2", gx=True,
         file_name=FILE_NAME)
    send("policy_counts", _shift(hostile_rows("policy"), "2024-08-10"), "M001", "policy", "2024Q3", gx=False,
         file_name=FILE_NAME)
    send("claim_gx", hostile_rows("claim"), "M001", "claim", "2024Q1", gx=True, file_name=FILE_NAME)
    return settings, ids


def make_hostile(tmp: Path) -> Hostile:
    from pipelines.marts.build import build_marts
    from pipelines.products import build_products
    from pipelines.reports import ReportOptions, build_reports

    files = tmp / "files"
    files.mkdir()
    settings, ids = build_hostile(tmp / "home", files)
    build_marts(settings)
    build_products(settings)
    return Hostile(settings, ids, build_reports(settings, ReportOptions(today=REPORT_DAY, gx_docs=True)))


