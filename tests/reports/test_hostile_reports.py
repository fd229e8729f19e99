"""Member-controlled values never become markup, formulas or platform tokens in what the platform writes.

The ``hostile`` lake (``hostile.py``) puts script tags, event handlers, ``javascript:`` URLs,
attribute-closing quotes, ``</style>``, template syntax and invisible or full-width characters into
every column and the file name of its submissions. Every HTML file the reports produce (the
platform's pages and GX's Data Docs) is parsed: no tag, attribute, script, style or comment may
carry a payload's marker, while the payloads must be shown as text. Every file a member receives
shows identifiers only as that member's pseudonyms.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from pipelines import store
from pipelines.privacy.tokens import load_key
from pipelines.products.build import product_path
from pipelines.reports.html import visible
from pipelines.reports.quarantine import _NUMBER, FORMULA_START
from tests.reports.hostile import FILE_NAME, MARKER, PAYLOADS, PERSON


class _Markup(HTMLParser):
    """What a page's markup holds: markers inside tags, scripts, styles or comments; and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.injected: list[object] = []
        self.text: list[str] = []
        self._raw: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if MARKER.search(name) or MARKER.search(value or "") or \
                    (name in ("href", "src", "action", "formaction") and
                     re.sub(r"\s", "", value or "").lower().startswith(("javascript:", "data:text"))):
                self.injected.append((tag, name, value))
        if MARKER.search(tag):
            self.injected.append(tag)
        if tag in ("script", "style"):
            self._raw = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw and MARKER.search(data):
            self.injected.append((self._raw, data))
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        if MARKER.search(data):
            self.injected.append(("comment", data))


def _parse(path: Path) -> _Markup:
    page = _Markup()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _pages(hostile) -> list[Path]:
    pages = sorted(hostile.built.root.rglob("*.html"))
    assert len(pages) > 15
    return pages


def _gx_page(hostile, name: str) -> Path:
    sid = hostile.ids[name]
    site = hostile.built.root / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    return next((site / "validations" / sid / sid).glob(f"*/{sid}.html"))


def test_hostile_values_never_become_markup_in_any_page(hostile):
    injected = {str(p.relative_to(hostile.built.root)): found for p in _pages(hostile) if (found := _parse(p).injected)}
    assert injected == {}


@pytest.mark.parametrize("page", ["policy_gx", "policy_counts", "claim_gx", "report"])
def test_hostile_values_are_shown_as_the_text_the_member_sent(hostile, page):
    path = (hostile.built.submissions[hostile.ids["policy_gx"]] if page == "report" else _gx_page(hostile, page))
    text = "".join(_parse(path).text)
    shown = [p for p in PAYLOADS if visible(p) in text]
    if page in ("policy_counts", "report"):     # these sample a few quarantined rows per rule
        assert len(shown) >= 3
    else:
        assert shown == list(PAYLOADS), [p for p in PAYLOADS if p not in shown]


def test_hostile_file_name_is_shown_as_text(hostile):
    report = hostile.built.submissions[hostile.ids["policy_gx"]]
    assert FILE_NAME in "".join(_parse(report).text)


def test_pages_show_invisible_and_direction_changing_characters(hostile):
    for path in _pages(hostile):
        raw = path.read_text(encoding="utf-8")
        assert "\u202e" not in raw and "\u200b" not in raw, path
    assert "[U+202E]&lt;b id=XSS08&gt;evil&lt;/b&gt;[U+200B]" in _gx_page(hostile, "policy_gx").read_text()


def _formula(cell: str) -> bool:
    return cell.startswith(FORMULA_START) and not _NUMBER.fullmatch(cell)


def test_quarantine_downloads_never_hold_a_formula(hostile):
    folders = [hostile.built.root / "submissions" / hostile.ids[n] for n in ("policy_gx", "claim_gx")]
    for folder in folders:
        rows = list(csv.reader(open(folder / "quarantine.csv", encoding="utf-8")))
        cells = [c for row in rows for c in row]
        assert any(c.startswith("'=HYPERLINK(") for c in cells) and any(c.startswith("'@SUM(") for c in cells)
        assert [c for c in cells if _formula(c)] == []
        sheet = load_workbook(folder / "quarantine.xlsx").active
        values = [c for row in sheet.iter_rows() for c in row if c.value is not None]
        assert {c.data_type for c in values} == {"s"} and [c.value for c in values if _formula(c.value)] == []


# -- member-scoped pseudonyms --------------------------------------------------------------

def _product(hostile, member: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(product_path(hostile.settings, f"member_{member}")), read_only=True)


def _download(hostile, member: str) -> list[dict[str, str]]:
    path = hostile.built.root / "submissions" / hostile.ids[f"{member}_clean"] / "quarantine.csv"
    return list(csv.DictReader(open(path, encoding="utf-8")))


def test_quarantine_download_identifier_is_the_members_product_pseudonym(hostile):
    seen = {}
    for member in ("M001", "M002"):
        [row] = _download(hostile, member)
        con = _product(hostile, member)
        published = {r[0] for r in con.execute("SELECT DISTINCT insured_id FROM policy").fetchall()}
        [record] = [json.loads(r[0]) for r in con.execute("SELECT record FROM quarantine WHERE submission_id = ?",
                                                          [hostile.ids[f"{member}_clean"]]).fetchall()]
        assert published == {row["insured_id"]} == {record["insured_id"]}
        assert row["insured_id"].startswith("m:") and row["vin"] == record["vin"]
        seen[member] = row["insured_id"]
    assert seen["M001"] != seen["M002"]              # the same person, unlinkable across members


def test_report_samples_show_the_members_pseudonym(hostile):
    report = json.loads(hostile.built.submissions[hostile.ids["M001_clean"]].with_name("report.json").read_text())
    [sample] = next(r for r in report["rules"] if r["id"] == "POL-FMT-phone")["samples"]
    phone = _product(hostile, "M001").execute("SELECT phone FROM policy WHERE source_row = ?",
                                              [sample["source_row"]]).fetchone()[0]
    assert phone.startswith("m:") and sample["values"]["phone"] == phone[:12] + "…"


def test_quarantine_command_writes_the_members_pseudonyms(hostile, tmp_path):
    from click.testing import CliRunner

    from pipelines.cli import main

    to = tmp_path / "rows.csv"
    result = CliRunner().invoke(main, ["--home", str(hostile.settings.home), "quarantine",
                                       hostile.ids["M002_clean"], "--to", str(to)], catch_exceptions=False)
    assert result.exit_code == 0
    assert list(csv.DictReader(open(to, encoding="utf-8"))) == _download(hostile, "M002")


def test_nothing_a_member_receives_holds_a_platform_token(hostile, tmp_path):
    key_id = load_key(hostile.settings).key_id
    token = re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(key_id)}:[0-9a-f]{{6}}")
    files = [p for p in hostile.built.root.rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".csv")]
    assert len(files) > 30
    assert [str(p) for p in files if token.search(p.read_text(encoding="utf-8", errors="replace"))] == []
    for member in ("M001", "M002"):
        sheet = load_workbook(hostile.built.root / "submissions" / hostile.ids[f"{member}_clean"] / "quarantine.xlsx")
        assert not [c.value for row in sheet.active.iter_rows() for c in row if token.search(str(c.value))]
    with store.connect(hostile.settings, read_only=True) as lake:
        stored = lake.execute("SELECT count(*) FROM lake.quarantine WHERE regexp_matches(record, ?)",
                              [f"{key_id}:[0-9a-f]{{64}}"]).fetchone()[0]
    assert stored > 0           # the lake (the regulator's view) keeps the platform tokens


def test_free_text_identifiers_are_masked_and_reported(hostile):
    report = json.loads(hostile.built.submissions[hostile.ids["M001_clean"]].with_name("report.json").read_text())
    rule = next(r for r in report["rules"] if r["id"] == "POL-PII-product_name")
    assert (rule["failed"], rule["severity"], rule["checked"]) == (30, "warn", 30)
    assert {s["values"]["product_name"] for s in rule["samples"]} == {"团险，联系人[mobile]"}
    assert rule["samples"][0]["reason"] == "product_name holds what looks like: mobile (masked in the published value)"
    con = _product(hostile, "M001")
    assert con.execute("SELECT DISTINCT product_name FROM policy").fetchall() == [("团险，联系人[mobile]",)]
    assert PERSON not in json.dumps(report, ensure_ascii=False)
