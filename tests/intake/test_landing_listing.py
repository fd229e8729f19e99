"""The landing zone takes one listing instead of a manifest per file: its entries become the
files' manifests (never over one that is there), the listing leaves, and the files are taken."""

from __future__ import annotations

from pipelines import store
from pipelines.landing import landing_dir, receive_landing
from tests.conftest import manifest_json, policy_row, write_csv


def test_landing_listing_declares_the_files_beside_it(settings):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    for name in ("a.csv", "b.csv", "c.csv"):
        write_csv(folder / name, [policy_row(transaction_id=f"T{name[0]}", policy_no=f"P{name[0]}")])
    manifest_json(folder / "c.csv.manifest.json", dataset="policy", period="2023Q3")
    (folder / "history.listing.csv").write_text(
        "file,dataset,period,rows,received_at\n"
        "a.csv,policy,2023Q1,1,2023-04-01\n"
        "b.csv,policy,2023Q2,,\n"
        "c.csv,policy,2023Q4,,\n"
        "../M002/x.csv,policy,2023Q1,,\n", encoding="utf-8")
    said: list[str] = []

    lines = receive_landing(settings, progress=said.append)

    assert said[:3] == ["landing/M001/history.listing.csv: 2 manifest(s) written",
                        "landing/M001/history.listing.csv: c.csv: has a manifest already; the listing's entry was not used",
                        "landing/M001/history.listing.csv: ../M002/x.csv: not a file of this folder; a listing names "
                        "files beside it"]
    assert lines == ["a.csv: received as M001-policy-2023Q1-v1", "b.csv: received as M001-policy-2023Q2-v1",
                     "c.csv: received as M001-policy-2023Q3-v1"]
    assert list(folder.iterdir()) == []
    con = store.connect(settings)
    try:
        rows = con.execute("SELECT file_name, manifest->>'row_count', received_at > TIMESTAMP '2026-01-01' "
                           "FROM lake.submissions ORDER BY file_name").fetchall()
    finally:
        con.close()
    assert rows == [("a.csv", "1", True), ("b.csv", None, True), ("c.csv", None, True)]   # arrival: when taken


def test_landing_listing_that_cannot_be_read_stays_with_a_word_why(settings):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    (folder / "x.listing.json").write_text("{not json", encoding="utf-8")
    said: list[str] = []
    assert receive_landing(settings, progress=said.append) == []
    assert said == ["landing/M001/x.listing.json: not read, left in place - Listing 'x.listing.json' cannot be "
                    "read: Expecting property name enclosed in double quotes: line 1 column 2 (char 1) Give a UTF-8 "
                    "CSV file with a header row, or a JSON list of objects."]
    assert (folder / "x.listing.json").exists()
