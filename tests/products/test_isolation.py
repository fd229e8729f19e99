"""Checks that cannot be fooled: what each product physically holds.

Member A's product holds no row of member B and names no other member; the public product
names no member at all; no product holds a raw identifier of the generated files, and no
member product holds a platform token (only its own member pseudonyms).
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from pipelines.products import open_product, product_path
from pipelines.products.catalog import identifier_columns
from tests.generate.conftest import load_rows
from tests.products.conftest import SHARED_CLAIMANT

MEMBERS = ("M001", "M002", "M003", "M004", "M005")
TOKEN = re.compile(r"(?<![0-9A-Za-z_-])([A-Za-z0-9_-]{1,16}):[0-9a-f]{64}(?![0-9a-f])")
WORD = re.compile(r"[0-9A-Za-z]{11,}")


def _texts(settings, audience) -> dict[tuple[str, str], list[str]]:
    """(table, column) -> every distinct non-NULL value, as text, of every column."""
    con = open_product(settings, audience)
    try:
        columns = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal ORDER BY ALL").fetchall()
        return {(t, c): [r[0] for r in con.execute(f'SELECT DISTINCT CAST("{c}" AS VARCHAR) FROM "{t}" '
                                                   f'WHERE "{c}" IS NOT NULL').fetchall()]
                for t, c in columns}
    finally:
        con.close()


def _raw_identifiers(generated) -> set[str]:
    """Every identifier of every generated file (both versions of resubmitted ones), normalised."""
    found: set[str] = set()
    names = {c for cols in identifier_columns().values() for c in cols}
    for s in generated.index["submissions"]:
        path = generated.out_dir / s["file"]
        encoding = json.loads((generated.out_dir / s["manifest"]).read_text(encoding="utf-8")).get("encoding")
        try:
            rows = load_rows(path, encoding)
        except (KeyError, ValueError):                     # a file truncated in the middle of a line
            rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding or "utf-8"))))
        for row in rows:
            for name in names & row.keys():
                value = re.sub(r"[^0-9A-Za-z]", "", str(row[name] or "")).upper()
                if len(value) >= 11:
                    found |= {value, value[-11:]} if value.isdigit() else {value}
    return found


def _leaks(texts, raw: set[str]) -> list[str]:
    return [w for values in texts for v in values for w in WORD.findall(v)
            if w.upper() in raw or w.upper()[-11:] in raw and w.isdigit()]


@pytest.fixture(scope="module")
def raw(generated) -> set[str]:
    return _raw_identifiers(generated)


def test_isolation_scanner_finds_identifiers_where_they_are(generated, raw):
    """The scan is not blind: it finds the identifiers in a submitted CSV file."""
    csv_file = next(generated.out_dir / s["file"] for s in generated.index["submissions"]
                    if s["file"].endswith(".csv") and s["dataset"] == "policy")
    text = csv_file.read_bytes().decode("utf-8", errors="ignore")
    assert len(raw) > 1000 and len(_leaks([[text]], raw)) > 50


@pytest.mark.parametrize("audience", ["regulator", "public", *(f"member:{m}" for m in MEMBERS)])
def test_isolation_no_raw_identifier_in_any_product(generated, raw, audience):
    texts = _texts(generated.settings, audience)
    assert not _leaks(texts.values(), raw)
    data = product_path(generated.settings, audience.replace(":", "_")).read_bytes()
    assert not _leaks([[m.decode("ascii") for m in re.findall(rb"[0-9A-Za-z]{11,}", data)]], raw)


@pytest.mark.parametrize("member", MEMBERS)
def test_isolation_member_product_holds_only_its_own_rows(generated, member):
    texts = _texts(generated.settings, f"member:{member}")
    ids = {v for (t, c), values in texts.items() if c == "member_id" for v in values}
    assert ids == {member}
    others = [(t, c, v) for (t, c), values in texts.items() for v in values
              for m in MEMBERS if m != member and m in v]
    assert not others
    assert all(v.startswith(f"{member}-") for v in texts[("submissions", "submission_id")])
    assert set(texts[("rule_results", "submission_id")]) <= set(texts[("submissions", "submission_id")])
    regulator = open_product(generated.settings, "regulator")
    mine = open_product(generated.settings, f"member:{member}")
    try:
        for table in ("policy", "claim", "quarantine", "submissions"):
            expected = regulator.execute(f"SELECT count(*) FROM {table} WHERE member_id = ?", [member]).fetchone()[0]
            assert mine.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == expected, table
            assert expected > 0 or table in ("claim", "quarantine"), table   # some members have no claim yet
    finally:
        regulator.close()
        mine.close()


@pytest.mark.parametrize("member", MEMBERS)
def test_isolation_member_product_holds_no_platform_token(generated, member):
    texts = _texts(generated.settings, f"member:{member}")
    keys = {m.group(1) for values in texts.values() for v in values for m in TOKEN.finditer(v)}
    assert keys == {"m"}                                   # member pseudonyms only, in rows and JSON
    regulator = _texts(generated.settings, "regulator")
    platform = {v for (t, c), values in regulator.items() if t == "policy" and c == "insured_id" for v in values}
    mine = {v for values in texts.values() for v in values}
    assert platform and not platform & mine


def test_isolation_public_product_names_no_member(generated):
    texts = _texts(generated.settings, "public")
    assert [(t, c, v) for (t, c), v in texts.items() if c == "member_id"] == [("product_info", "member_id", [])]
    assert not [v for values in texts.values() for v in values if re.search(r"M00\d", v) or TOKEN.search(v)]
    assert {t for t, _ in texts} == {"catalog", "product_info", "industry_experience", "industry_triangle",
                                     "industry_factors", "industry_ultimates"}


def test_isolation_member_sees_that_its_claim_is_linked_not_to_whom(small_market):
    con = open_product(small_market, "member:M002")
    try:
        columns = [r[0] for r in con.execute("DESCRIBE own_linked_claims").fetchall()]
        rows = con.execute("SELECT * FROM own_linked_claims").fetchall()
        pseudonym = con.execute("SELECT DISTINCT claimant_id FROM claim").fetchone()[0]
    finally:
        con.close()
    assert columns == ["claim_no", "link_kind", "other_members"] and rows == [("C0", "claimant", 2)]
    texts = _texts(small_market, "member:M002")
    assert not [v for values in texts.values() for v in values if SHARED_CLAIMANT in v or "M003" in v or "M004" in v]
    other = open_product(small_market, "member:M003")
    try:
        theirs = other.execute("SELECT DISTINCT claimant_id FROM claim").fetchone()[0]
    finally:
        other.close()
    assert pseudonym.startswith("m:") and theirs.startswith("m:") and pseudonym != theirs   # same person, unlinkable
