"""Files, manifests, index and ground truth written by ``generate``."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contracts import load_contract
from pipelines.core.domain import parse_period
from pipelines.generate import generate
from pipelines.generate.members import member_profiles

SMALL = dict(members=4, quarters=2, scale=0.05, defect_rate=0.05)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_same_seed_gives_identical_bytes(tmp_path):
    generate(tmp_path / "a", seed=3, **SMALL)
    generate(tmp_path / "b", seed=3, **SMALL)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert {Path(n).suffix for n in a} >= {".csv", ".parquet", ".xlsx", ".json"}
    assert a == b


def test_generate_other_seed_gives_other_rows(tmp_path):
    generate(tmp_path / "a", seed=3, **SMALL)
    generate(tmp_path / "b", seed=4, **SMALL)
    first = (tmp_path / "a" / "M001" / "policy_2025Q4.csv").read_text(encoding="utf-8")
    second = (tmp_path / "b" / "M001" / "policy_2025Q4.csv").read_text(encoding="utf-8")
    assert first.splitlines()[0] == second.splitlines()[0]
    assert first.splitlines()[1:] != second.splitlines()[1:]


def test_generate_reports_progress_per_member(tmp_path):
    lines = []
    generate(tmp_path, progress=lines.append, **SMALL)
    assert [line.split(" ")[0] for line in lines] == ["M001", "M002", "M003", "M004"]
    assert "premium rows" in lines[0] and "claim rows" in lines[0]


def test_generate_result_counts_files_and_rows(small_set):
    subs = small_set.index["submissions"]
    assert small_set.result.files == len(subs)
    assert small_set.result.defective_rows == sum(len(rows) for rows in small_set.truth.values())
    full = sum(small_set.manifest(s)["row_count"] for s in subs)
    truncated = [s for s in subs if "truncated in the middle of a line" in s["notes"]]
    assert len(truncated) == 1
    assert small_set.result.rows < full          # the truncated file lacks its last rows
    assert small_set.result.rows > full - small_set.manifest(truncated[0])["row_count"]


def test_members_have_names_and_cycle_formats(small_set):
    members = small_set.index["members"]
    assert [m["member_id"] for m in members] == ["M001", "M002", "M003", "M004", "M005"]
    assert [(m["format"], m["encoding"]) for m in members] == [
        ("csv", "utf-8"), ("csv", "gb18030"), ("parquet", None), ("xlsx", None), ("csv", "utf-8")]
    assert all(m["name"] and re.search(r"[\u4e00-\u9fff]", m["name_zh"]) for m in members)
    assert [p.size for p in member_profiles(7, 1)] == [1.0, 0.6, 0.4, 0.25, 0.15, 1.0, 0.6]


def test_every_file_is_readable_in_its_format(small_set, read_rows):
    for s in small_set.index["submissions"]:
        manifest = small_set.manifest(s)
        path = small_set.out_dir / s["file"]
        assert path.suffix == {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}[s["format"]]
        if "truncated in the middle of a line" in s["notes"]:
            continue
        rows = read_rows(path, manifest.get("encoding"))
        assert len(rows) == manifest["row_count"], s["file"]
        assert list(rows[0]) == list(load_contract(s["dataset"]).column_names)


def test_gb18030_file_is_not_utf8(small_set):
    s = small_set.submissions(member_id="M002", dataset="policy")[0]
    data = (small_set.out_dir / s["file"]).read_bytes()
    assert small_set.manifest(s)["encoding"] == "gb18030"
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("gb18030")
    assert re.search(r"[\u4e00-\u9fff]", text)


def test_chinese_text_appears_in_every_member_file(small_set):
    for s in small_set.submissions(dataset="policy", version=1):
        path = small_set.out_dir / s["file"]
        if s["format"] == "csv":
            text = path.read_bytes().decode(small_set.manifest(s)["encoding"])
        elif s["format"] == "parquet":
            text = "".join(pq.read_table(path).column("product_name").to_pylist())
        else:
            text = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode("utf-8")
        assert re.search(r"[\u4e00-\u9fff]", text), s["file"]


def test_parquet_columns_are_typed(small_set):
    for dataset in ("policy", "claim"):
        s = small_set.submissions(member_id="M003", dataset=dataset)[0]
        schema = pq.read_schema(small_set.out_dir / s["file"])
        for column in load_contract(dataset).columns:
            expected = {"date": pa.date32(), "string": pa.string()}.get(column.base_type)
            if column.base_type == "decimal":
                precision, scale = column.type[8:-1].split(",")
                expected = pa.decimal128(int(precision), int(scale))
            assert schema.field(column.name).type == expected, column.name


def test_xlsx_has_date_and_number_cells_and_text_as_text(small_set):
    import openpyxl

    s = small_set.submissions(member_id="M004", dataset="policy")[0]
    wb = openpyxl.load_workbook(small_set.out_dir / s["file"])
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert isinstance(row["effective_date"].value, dt.datetime)
    assert row["effective_date"].number_format == "yyyy-mm-dd"
    assert isinstance(row["written_premium"].value, (int, float))
    assert row["region_code"].data_type == "s" and isinstance(row["region_code"].value, str)
    assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)


def test_xlsx_properties_and_zip_times_are_fixed(small_set):
    s = small_set.submissions(member_id="M004", dataset="claim", period="2025Q4")[0]
    with zipfile.ZipFile(small_set.out_dir / s["file"]) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode("utf-8")
    assert "<dcterms:created xsi:type=\"dcterms:W3CDTF\">2026-01-12T09:30:00Z" in core


def test_manifest_control_totals_sum_the_file(small_set, read_rows):
    for s in small_set.index["submissions"]:
        if "truncated in the middle of a line" in s["notes"]:
            continue
        manifest = small_set.manifest(s)
        rows = read_rows(small_set.out_dir / s["file"], manifest.get("encoding"))
        assert manifest["contract_version"] == load_contract(s["dataset"]).version
        for column, total in manifest["control_totals"].items():
            computed = sum((r[column] for r in rows if isinstance(r[column], Decimal)), Decimal(0))
            assert Decimal(total) == computed, (s["file"], column)


def test_truncated_file_ends_inside_a_line_with_the_full_manifest(small_set):
    s = next(s for s in small_set.index["submissions"] if "truncated in the middle of a line" in s["notes"])
    data = (small_set.out_dir / s["file"]).read_bytes()
    complete = small_set.submissions(member_id=s["member_id"], dataset=s["dataset"], period=s["period"],
                                     version=2)[0]
    assert s["dataset"] == "claim" and s["expect"] == "rejected" and not data.endswith(b"\n")
    assert small_set.manifest(s) == small_set.manifest(complete)
    lines = data.decode("utf-8").split("\n")
    assert 0.8 * small_set.manifest(s)["row_count"] <= len(lines) - 2 < small_set.manifest(s)["row_count"]
    assert lines[-1].count(",") < len(load_contract("claim").columns) - 1


def test_index_orders_quarters_then_premium_before_claims(small_set):
    subs = small_set.index["submissions"]
    assert [s["sequence"] for s in subs] == list(range(1, len(subs) + 1))
    keys = [(s["period"], s["dataset"] == "claim", s["member_id"], s["version"]) for s in subs]
    assert keys == sorted(keys)
    assert all((small_set.out_dir / s["file"]).exists() and (small_set.out_dir / s["manifest"]).exists()
               for s in subs)


def test_index_has_the_three_resubmission_scenarios(small_set):
    seconds = small_set.submissions(version=2)
    firsts = {(s["member_id"], s["dataset"], s["period"]): s["expect"]
              for s in small_set.submissions(version=1)}
    pairs = sorted((s["dataset"], firsts[(s["member_id"], s["dataset"], s["period"])]) for s in seconds)
    assert pairs == [("claim", "rejected"), ("claim", "superseded"), ("policy", "rejected")]
    assert all(s["expect"] == "accepted" and s["file"].endswith(f"_v2.{s['format']}") for s in seconds)


def test_generate_without_scenarios_writes_one_version(tmp_path):
    result = generate(tmp_path, scenarios=False, **SMALL)
    assert "_v2" not in result.index.read_text(encoding="utf-8")


def test_ground_truth_names_rules_of_the_contract(small_set):
    for file, rows in small_set.truth.items():
        contract = load_contract(file.split("/")[1].split("_")[0])
        for rule_ids, defect in rows.values():
            assert all(contract.rule(r) for r in rule_ids), (file, rule_ids)
            assert defect


def test_first_version_of_a_rejected_premium_file_breaks_the_threshold(small_set):
    s = next(s for s in small_set.submissions(dataset="policy", version=1) if s["expect"] == "rejected")
    contract = load_contract("policy")
    errors = [ids for ids, _ in small_set.truth[s["file"]].values()
              if any(contract.rule(r).severity != "warn" for r in ids)]
    share = len(errors) / small_set.manifest(s)["row_count"]
    assert 0.05 < share < 0.15


def test_index_gives_arrival_times_after_the_quarter_mostly_on_time(small_set):
    subs = small_set.index["submissions"]
    days_after = [(dt.datetime.fromisoformat(s["submitted_at"]).date() - parse_period(s["period"]).end).days
                  for s in subs]
    assert min(days_after) > 0
    on_time = sum(d <= load_contract(s["dataset"]).due_days for d, s in zip(days_after, subs, strict=True))
    assert 0.6 * len(subs) < on_time < len(subs)
    when = {(s["member_id"], s["dataset"], s["period"], s["version"]): s["submitted_at"] for s in subs}
    for (member, dataset, period, version), at in when.items():
        if version == 2:
            assert at > when[(member, dataset, period, 1)]
        if dataset == "claim" and version == 1:
            assert at >= when[(member, "policy", period, 1)]


def test_corrected_version_keeps_the_rows_and_drops_defects(small_set, read_rows):
    first = next(s for s in small_set.submissions(version=1) if s["expect"] == "superseded")
    second = small_set.submissions(member_id=first["member_id"], dataset=first["dataset"],
                                   period=first["period"], version=2)[0]
    before, after = small_set.truth[first["file"]], small_set.truth.get(second["file"], {})
    assert set(after.items()) < set(before.items())
    rows_before = read_rows(small_set.out_dir / first["file"])
    rows_after = read_rows(small_set.out_dir / second["file"])
    assert len(rows_before) == len(rows_after)
    assert [r for n, r in enumerate(rows_before, 1) if n not in before] == \
        [r for n, r in enumerate(rows_after, 1) if n not in before]
