"""A corpus of 200+ malformed files goes through one worker: each gets a recorded verdict
with a clear message within bounded time and memory, and none stops the worker."""

from __future__ import annotations

import resource
import time

import pytest

from pipelines.config import Settings
from pipelines.errors import InsurShareError
from pipelines.ingest import process_submission
from pipelines.intake import Manifest, receive, refuse_file
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import TODAY
from tests.hostile.corpus import build_corpus

SECONDS_PER_FILE = 60


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    settings = Settings(home=tmp / "home", gx_max_rows=0, duckdb_memory_limit="1GB")
    create_keys(settings)
    add_members(settings, {"M001": "One"})
    corpus = build_corpus(tmp / "corpus")
    results = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for item in corpus:
        start = time.perf_counter()
        try:
            if item.manifest is not None:
                try:
                    manifest = Manifest.from_file(item.manifest)
                except InsurShareError as exc:
                    refuse_file(settings, item.path, exc)
                    raise
            else:
                manifest = Manifest.build(member_id="M001", dataset=item.dataset, period="2024Q1")
            got = receive(settings, item.path, manifest, today=TODAY)
            outcome = process_submission(settings, got.submission.submission_id)
            results.append((item, outcome.status, " ".join(outcome.reasons), time.perf_counter() - start))
        except InsurShareError as exc:
            results.append((item, "refused", str(exc), time.perf_counter() - start))
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return corpus, results, rss_growth_mb


def test_hostile_corpus_is_large(outcomes):
    corpus, results, _ = outcomes
    assert len(corpus) >= 200 and len(results) == len(corpus)


def test_hostile_every_file_gets_a_recorded_verdict(outcomes):
    _, results, _ = outcomes
    statuses = {status for _, status, _, _ in results}
    assert statuses <= {"rejected", "refused", "accepted", "superseded"}
    refused_or_rejected = [r for r in results if r[1] in ("rejected", "refused")]
    assert len(refused_or_rejected) >= 0.8 * len(results)


def test_hostile_rejections_name_the_check_and_the_file(outcomes):
    _, results, _ = outcomes
    for item, status, message, _ in results:
        if status == "rejected":
            assert message.startswith("SUB-"), (item.label, message)
            assert repr(item.path.name) in message, (item.label, message)
        if status == "refused":
            assert message and "Traceback" not in message, item.label


def test_hostile_accepted_files_are_only_mild_damage(outcomes):
    _, results, _ = outcomes
    for item, status, _, _ in results:
        if status in ("accepted", "superseded"):
            assert any(w in item.label for w in ("flipped", "truncated", "legacy CJK", "(valid)")), item.label


@pytest.mark.parametrize("label,check", [
    ("XLSX zip bomb (1 GB sheet)", "SUB-FILE"),
    ("ten megabyte field", "SUB-FILE"),
    ("hundred thousand columns", "SUB-COLUMNS-"),
    ("CSV in utf-16", "SUB-ENCODING"),
    ("nul bytes", "SUB-"),
    ("empty", "SUB-EMPTY"),
    ("header of the other dataset", "SUB-COLUMNS-MISSING"),
    ("semicolon separated", "SUB-COLUMNS-MISSING"),
])
def test_hostile_known_cases_fail_the_right_check(outcomes, label, check):
    _, results, _ = outcomes
    item, status, message, _ = next(r for r in results if r[0].label == label)
    assert status == "rejected" and message.startswith(check), (status, message)


@pytest.mark.parametrize("label,words", [
    ("manifest: deeply nested", "not valid JSON"),
    ("manifest: huge", "larger than 1 MB"),
    ("manifest: path-like member", "is not a member id"),
    ("manifest: row count not a number", "is not a whole number"),
])
def test_hostile_manifests_are_refused_clearly(outcomes, label, words):
    _, results, _ = outcomes
    _, status, message, _ = next(r for r in results if r[0].label == label)
    assert status == "refused" and words in message


def test_hostile_time_and_memory_are_bounded(outcomes):
    _, results, rss_growth_mb = outcomes
    slowest = max(results, key=lambda r: r[3])
    assert slowest[3] < SECONDS_PER_FILE, (slowest[0].label, slowest[3])
    assert rss_growth_mb < 1500, rss_growth_mb
