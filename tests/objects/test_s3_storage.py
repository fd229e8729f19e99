"""The lake's data files and the raw archive on S3 object storage (``INSURSHARE_STORAGE``).

The same generated data set is run through the platform twice, once with local folders and once
with everything durable in a real S3 store (SeaweedFS): the lake, the verdicts, the marts and the
audit trail must be the same, and no durable file may be left in the S3 home's folders."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil

import pytest
from click.testing import CliRunner

from pipelines import archive, objects, store
from pipelines.audit import anchor
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.products import open_product, query_product
from pipelines.products import remote as remote_products
from pipelines.reports import ReportOptions, build_reports
from tests.conftest import lake_rows, policy_row, write_csv


def _cli(home, *args, ok: bool = True, env: dict | None = None):
    result = CliRunner().invoke(main, ["--home", str(home), *args], env=env)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _run(home, incoming) -> None:
    _cli(home, "keygen", "--if-missing")
    index = incoming / "index.json"
    _cli(home, "members", "add", "--from-index", str(index))
    _cli(home, "submit-index", str(index))
    _cli(home, "ingest")
    _cli(home, "build-marts")


def _contents(settings: Settings) -> dict[str, list]:
    return lake_rows(settings, {
        "verdicts": "SELECT submission_id, status, verdict, rows_total, rows_accepted, rows_quarantined, sha256 "
                    "FROM lake.submissions ORDER BY submission_id",
        "policy": "SELECT * FROM lake.policy ORDER BY ALL",
        "claim": "SELECT * FROM lake.claim ORDER BY ALL",
        "quarantine": "SELECT * FROM lake.quarantine ORDER BY ALL",
        "triangle": "SELECT * FROM lake.mart_triangle ORDER BY ALL",
        "audit": "SELECT seq, kind, subject, content_sha256 FROM lake.audit_log "
                 "WHERE kind IN ('verdict', 'publish') ORDER BY seq",
    })


@pytest.fixture(scope="module")
def incoming(tmp_path_factory):
    folder = tmp_path_factory.mktemp("incoming")
    _cli(tmp_path_factory.mktemp("gen"), "generate", "--members", "3", "--quarters", "2", "--seed", "11",
         "--scale", "0.3", "--out", str(folder))
    return folder


@pytest.fixture
def two_runs(incoming, tmp_path, s3_env, monkeypatch):
    local = tmp_path / "local"
    _run(local, incoming)
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copytree(local / "secrets", remote / "secrets")   # the same keys: the same tokens in both lakes
    monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
    _run(remote, incoming)
    return Settings.from_env(home=local, storage=""), Settings.from_env(home=remote)


def test_lake_and_archive_on_s3_equal_a_local_run(two_runs, s3_env):
    local, remote = two_runs
    assert remote.storage == s3_env and remote.data_is_remote
    assert str(remote.data_path) == f"{s3_env}/lake/files"
    ours, theirs = _contents(remote), _contents(local)
    assert ours["verdicts"] and ours["policy"] and ours["triangle"]
    assert {s for _, s, *_ in ours["verdicts"]} >= {"accepted", "rejected"}
    for name in ours:
        assert ours[name] == theirs[name], name
    # nothing durable under the S3 home: no data file, no archived file (the catalog, keys and
    # anchor stay local in this profile; they move to PostgreSQL and the secrets store on many machines)
    left = {p.suffix for p in remote.home.rglob("*") if p.is_file()}
    assert ".parquet" not in left
    assert not (remote.home / "archive").exists() or not any((remote.home / "archive").rglob("*"))
    assert not any(p.is_file() for p in (remote.work_dir / "archive").rglob("*")) if (remote.work_dir / "archive").exists() else True
    files = list(objects.list_urls(remote, f"{s3_env}/lake/files"))
    assert files and all(u.endswith(".parquet") for u in files)
    # the audit anchor too: one write-once object per line, the same lines as the local file's
    assert not (remote.home / "audit").exists()
    lines = list(objects.list_urls(remote, f"{s3_env}/audit/anchor"))
    assert lines == [f"{s3_env}/audit/anchor/{n:012d}.json" for n in range(1, len(lines) + 1)]
    local_lines = anchor.read_lines(local)
    assert [line["snapshot"] for line in anchor.read_lines(remote)] == [line["snapshot"] for line in local_lines]
    assert len(lines) == len(local_lines) > 5


def test_archived_files_are_encrypted_before_upload_and_restore(two_runs, s3_env, tmp_path):
    local, remote = two_runs
    con = store.connect(remote, read_only=True)
    try:
        sha, path, name = con.execute("SELECT sha256, archive_path, file_name FROM lake.submissions "
                                      "WHERE file_format = 'csv' ORDER BY submission_id LIMIT 1").fetchone()
    finally:
        con.close()
    assert path == f"{s3_env}/archive/sha256/{sha[:2]}/{sha}"
    with objects.open_read(remote, path) as f:
        stored = f.read()
    plain = archive.restore(remote, sha, tmp_path / "back.csv").read_bytes()
    assert stored.startswith(archive.MAGIC) and plain[:40] not in stored
    assert plain == archive.restore(local, sha, tmp_path / "local.csv").read_bytes()


def test_audit_verify_holds_and_names_an_object_removed_from_the_bucket(two_runs, s3_env):
    _, remote = two_runs
    ok = _cli(remote.home, "audit", "verify")
    assert "TAMPERED" not in ok.output
    lines = list(objects.list_urls(remote, f"{s3_env}/audit/anchor"))
    assert objects.put_once(remote, lines[1], b"{}") is False   # a line object cannot be overwritten...
    objects.delete(remote, lines[1])                            # ...but one can be removed out of band
    victim = next(u for u in objects.list_urls(remote, f"{s3_env}/lake/files/main/policy") if u.endswith(".parquet"))
    objects.delete(remote, victim)
    bad = _cli(remote.home, "audit", "verify", ok=False)
    assert bad.exit_code == 1
    rel = victim[len(f"{s3_env}/lake/files/"):]
    assert f"data file {rel} of table policy is missing" in bad.output
    assert "anchor line 2 (snapshot" in bad.output and "anchor lines were removed or reordered" in bad.output
    build = _cli(remote.home, "build-marts", "--force", ok=False)
    assert build.exit_code == 1 and isinstance(build.exception, SystemExit), build.output   # no traceback
    assert f"Error: A data file of the lake is missing: {victim}. It holds rows of table policy." in build.output, build.output


def test_an_unreachable_store_is_a_clear_error_and_records_nothing(tmp_path, s3_env, monkeypatch):
    monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
    home = tmp_path / "home"
    _cli(home, "keygen")
    _cli(home, "members", "add", "M001", "--name", "One")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")     # the store goes away: nothing listens there
    monkeypatch.setenv("INSURSHARE_S3_ATTEMPTS", "2")
    data = write_csv(tmp_path / "p.csv", [policy_row()])
    got = _cli(home, "submit", str(data), "--member", "M001", "--dataset", "policy", "--period", "2024Q1", ok=False)
    assert got.exit_code == 1 and isinstance(got.exception, SystemExit), got.output   # no traceback
    assert f"Writing {s3_env}/archive/sha256/" in got.output and "could not be reached" in got.output
    assert "SECRET" not in got.output.upper().replace("INSURSHARE-LOCAL-SECRET", "")
    assert data.exists()                                                  # the member's file is untouched
    con = store.connect(Settings.from_env(home=home), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM lake.submissions").fetchone() == (0,)   # nothing recorded
    finally:
        con.close()


def test_two_machines_sealing_at_once_make_one_chain(tmp_path, s3_env, monkeypatch):
    """The anchor on S3 has no lock between machines: a line is written only if its object does
    not exist yet. A writer that loses the race reads the winner's line and goes on from it."""
    monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
    home = tmp_path / "home"
    _cli(home, "keygen")
    _cli(home, "members", "add", "M001", "--name", "One")
    settings = Settings.from_env(home=home)
    before = len(list(objects.list_urls(settings, f"{s3_env}/audit/anchor")))
    assert before >= 1
    made = anchor._line
    raced = []

    def line_with_a_rival(con, settings_, key, snapshot, last, **kw):
        line = made(con, settings_, key, snapshot, last, **kw)
        if not raced:   # "another machine" seals this snapshot first, between our look and our write
            _, last_url = anchor._last_line(settings_)
            assert objects.put_once(settings_, anchor._next_url(str(settings_.audit_anchor_file), last_url),
                                    (json.dumps(line, separators=(",", ":")) + "\n").encode())
            raced.append(snapshot)
        return line

    monkeypatch.setattr(anchor, "_line", line_with_a_rival)
    _cli(home, "submit", str(write_csv(tmp_path / "p.csv", [policy_row()])), "--member", "M001", "--dataset",
         "policy", "--period", "2024Q1")
    assert raced
    monkeypatch.setattr(anchor, "_line", made)
    lines = anchor.read_lines(settings)
    snapshots = [line["snapshot"] for line in lines]
    assert len(snapshots) == len(set(snapshots)) > before and raced[0] in snapshots   # each commit sealed once
    assert "TAMPERED" not in _cli(home, "audit", "verify").output


def _product_tables(settings: Settings, audience: str) -> dict[str, list]:
    """The product's tables, but those that record when (or how long) something ran, and the audit
    chain's head (a hash over such times): those differ between two runs; their row counts are
    compared through ``catalog``."""
    con = open_product(settings, audience)
    try:
        timed = {r[0] for r in con.execute("SELECT table_name FROM duckdb_columns() WHERE data_type LIKE 'TIMESTAMP%' "
                                           "OR column_name = 'seconds'").fetchall()} | {"audit_head"}
        names = [r[0] for r in con.execute("SELECT table_name FROM catalog ORDER BY table_name").fetchall()]
        assert "catalog" in names and "industry_triangle" in names
        return {n: con.execute(f"SELECT * FROM {n} ORDER BY ALL").fetchall() for n in names if n not in timed}
    finally:
        con.close()


def test_products_on_s3_are_written_once_and_read_through_the_audit_trail(two_runs, s3_env, tmp_path):
    local, remote = two_runs
    _cli(local.home, "products", "build", env={"INSURSHARE_STORAGE": None})
    built = _cli(remote.home, "products", "build")
    assert f"under {s3_env}/products" in built.output
    vouched = remote_products.current(remote)
    assert vouched and set(vouched) == set(remote_products.current(local)) >= {"regulator", "public", "member_M001"}
    for name, sha in vouched.items():   # each object holds exactly the file the audit entry vouches for
        with objects.open_read(remote, f"{s3_env}/products/{name}/{sha}.duckdb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha
    assert not (remote.home / "products").exists()   # nothing durable in the home: only scratch copies
    for audience in ("regulator", "public", "member:M001"):
        assert _product_tables(remote, audience) == _product_tables(local, audience), audience
    assert "up to date" in _cli(remote.home, "products", "build").output   # the objects are still the vouched ones
    listed = _cli(remote.home, "products", "list").output
    assert f"{s3_env}/products/member_M001/{vouched['member_M001']}.duckdb" in listed

    # another machine, with an empty scratch folder, fetches the product and reads it as the member
    other = remote.with_(home=tmp_path / "other")
    shutil.copytree(remote.home / "secrets", other.home / "secrets")
    shutil.copy(remote.catalog, tmp_path / "catalog.sqlite")
    other = other.with_(catalog=str(tmp_path / "catalog.sqlite"))
    sql = "SELECT count(*), sum(rows_accepted) FROM submissions"
    assert query_product(other, "member:M001", sql) == query_product(local, "member:M001", sql)

    # an object altered in the bucket is refused by a machine that fetches it, with a clear message
    url = f"{s3_env}/products/public/{vouched['public']}.duckdb"
    objects.delete(remote, url)
    assert objects.put_once(remote, url, b"not the product")
    shutil.rmtree(other.work_dir / "products")
    with pytest.raises(remote_products.ProductFileError, match="not the file the audit trail vouches for"):
        open_product(other, "public")
    objects.delete(remote, url)
    with pytest.raises(remote_products.ProductFileError, match="is missing from the store"):
        open_product(other, "public")
    assert "built" in _cli(remote.home, "products", "build").output   # a build notices and writes it again


def test_reports_on_s3_are_built_in_scratch_and_published_to_the_bucket(two_runs, s3_env):
    local, remote = two_runs
    _cli(local.home, "report", "--gx-docs", env={"INSURSHARE_STORAGE": None})
    first = _cli(remote.home, "report", "--gx-docs")
    assert not (remote.home / "reports").exists() and remote.reports_dir == remote.work_dir / "reports"
    published = {u[len(f"{s3_env}/reports/"):] for u in objects.list_urls(remote, f"{s3_env}/reports")}
    made = {p.relative_to(local.reports_dir).as_posix() for p in local.reports_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.name != "insurshare-stamps.json"}
    made = {n for n in made if not n.startswith("gx/") or "/data_docs/" in n}   # GX's own store is not served
    run = re.compile(r"/\d{8}T\d{6}\.\d+Z/")   # a GX validation page's folder is named by its run's time
    assert "index.html" in published and len(published) == len(made) > 20
    assert {run.sub("/<run>/", n) for n in published} == {run.sub("/<run>/", n) for n in made}   # as on one machine
    assert f"{len(published)} file(s) copied to {s3_env}/reports/" in first.output
    for name in ("index.html", next(n for n in published if n.startswith("submissions/"))):
        assert objects.read_bytes(remote, f"{s3_env}/reports/{name}") == (remote.reports_dir / name).read_bytes()
    # a second build over the same lake copies nothing; a machine with empty scratch copies only what
    # differs byte for byte: GX's pages of a new validation run (named by its time) and the XLSX files
    # (which carry their time of writing), never a page of the platform's own
    assert "0 file(s) copied" in _cli(remote.home, "report", "--gx-docs").output
    shutil.rmtree(remote.reports_dir)
    again = build_reports(remote, ReportOptions(today=dt.date.today(), gx_docs=True))
    assert again.published and all(n.endswith(".xlsx") or n.startswith("gx/") for n in again.published), again.published


def test_a_large_file_goes_up_in_parts_once(s3_env, tmp_path, monkeypatch):
    """One PUT takes at most 5 GB on S3: a file over the part size is sent as a multipart upload
    (here with 5 MB parts instead of 256 MB), and the same key is not written twice."""
    monkeypatch.setattr(objects, "_MULTIPART", 5 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (12 * 4096))   # 12 MB: three parts
    settings = Settings(home=tmp_path / "home")
    url = f"{s3_env}/archive/big"
    assert objects.put_once(settings, url, big) is True
    assert objects.read_bytes(settings, url) == big.read_bytes()
    assert objects.etags(settings, f"{s3_env}/archive")["big"].endswith("-3")   # an ETag of 3 parts
    assert objects.put_once(settings, url, big) is False
