"""Hostile, damaged and careless files (``tests/hostile``'s corpus) pre-checked: each ends as the
corpus says ingestion ends it (refused with the words named, rejected with the check named, or
accepted with so many rows quarantined), with a report and never a traceback; nothing is recorded."""

from __future__ import annotations

import pytest

from pipelines.config import Settings
from pipelines.errors import InsurShareError
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.precheck import BANNER, precheck
from tests.conftest import TODAY
from tests.hostile.corpus import build_corpus
from tests.hostile.test_hostile_files import _manifest
from tests.precheck.test_precheck import recorded

EVERY = 4   # a quarter of the corpus (every kind of damage is spread over it); the corpus test runs it all


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("precheck-hostile")
    settings = Settings(home=tmp / "home", gx_max_rows=0, duckdb_memory_limit="1GB")
    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two"})
    corpus = build_corpus(tmp / "corpus")[::EVERY]
    before = recorded(settings)
    results = []
    for item in corpus:
        try:
            got = precheck(settings, item.path, _manifest(item), out_dir=tmp / "out", today=TODAY)
            results.append((item, got.verdict, " ".join(got.reasons), got.rows_quarantined, got.report))
        except InsurShareError as exc:
            results.append((item, "refused", str(exc), None, None))
    return settings, before, results


def test_precheck_ends_every_file_as_ingestion_does(checked):
    _, _, results = checked
    assert len(results) >= 75
    wrong = []
    for item, status, message, quarantined, _ in results:
        ok = status == item.expect
        if ok and item.expect == "rejected":
            ok = message.split(":")[0] == item.check and "SUB-PROCESSING" not in message
        if ok and item.expect == "refused":
            ok = item.words in message
        if ok and item.expect == "accepted":
            ok = quarantined == item.quarantined
        if not ok:
            wrong.append((item.label, item.expect, item.check or item.words or item.quarantined, status,
                          quarantined, message[:200]))
    assert wrong == []
    assert {status for _, status, *_ in results} == {"accepted", "rejected", "refused"}


def test_precheck_of_hostile_files_reports_and_records_nothing(checked):
    settings, before, results = checked
    for item, status, message, _, report in results:
        assert "Traceback" not in message, item.label
        if status != "refused":
            html = report.read_text(encoding="utf-8")
            assert BANNER in html and "Traceback" not in html, item.label
        if status == "rejected":
            assert repr(item.path.name) in message, (item.label, message)
    assert recorded(settings) == before
