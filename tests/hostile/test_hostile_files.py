"""A corpus of 300+ hostile, damaged and careless files goes through one worker: each ends in the
outcome the corpus states for it (refused with the words named, rejected with the check named,
or accepted with so many rows quarantined), with a clear message, never a traceback, never stuck
in ``received``; no file the corpus calls hostile is accepted; the lake stays consistent."""

from __future__ import annotations

import resource
import time
from collections import Counter

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import load_submission_rules
from pipelines.errors import InsurShareError
from pipelines.ingest import pending, process_submission
from pipelines.intake import Manifest, receive, refuse_file
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import TODAY
from tests.hostile.corpus import CARELESS, DAMAGED, HOSTILE, VALID, build_corpus

SECONDS_PER_FILE = 60   # a guard against a hang, not a performance target


def _manifest(item):
    if item.manifest is not None:
        return Manifest.from_file(item.manifest)
    fields = {"member_id": item.member, "dataset": item.dataset, "period": "2024Q1", **item.fields}
    return Manifest.build(**fields)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    settings = Settings(home=tmp / "home", gx_max_rows=0, duckdb_memory_limit="1GB")
    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two"})
    corpus = build_corpus(tmp / "corpus")
    results = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for item in corpus:
        start = time.perf_counter()
        try:
            try:
                manifest = _manifest(item)
            except InsurShareError as exc:
                refuse_file(settings, item.path, exc)
                raise
            got = receive(settings, item.path, manifest, today=TODAY)
            outcome = process_submission(settings, got.submission.submission_id)
            results.append((item, outcome.status, " ".join(outcome.reasons), time.perf_counter() - start,
                            outcome.rows_quarantined))
        except InsurShareError as exc:
            results.append((item, "refused", str(exc), time.perf_counter() - start, None))
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return settings, corpus, results, rss_growth_mb


def test_hostile_corpus_is_large_and_states_every_outcome(outcomes):
    _, corpus, results, _ = outcomes
    assert len(corpus) >= 300 and len(results) == len(corpus)
    expects = Counter(item.expect for item in corpus)
    assert expects["refused"] >= 50 and expects["rejected"] >= 80, expects
    kinds = Counter(item.kind for item in corpus)
    assert set(kinds) == {HOSTILE, DAMAGED, CARELESS, VALID}
    assert kinds[HOSTILE] >= 80 and kinds[DAMAGED] >= 150, kinds
    checks = {c.id for c in load_submission_rules().checks} - {"SUB-PROCESSING", "SUB-HELD"}
    for item in corpus:
        assert item.expect in ("refused", "rejected", "accepted"), item.label
        assert bool(item.words) == (item.expect == "refused"), item.label
        assert (item.check in checks if item.expect == "rejected" else item.check == ""), item.label


def test_hostile_corpus_calls_no_accepted_file_hostile(outcomes):
    _, corpus, results, _ = outcomes
    assert [i.label for i in corpus if i.kind == HOSTILE and i.expect == "accepted"] == []
    assert [i.label for i, status, *_ in results if i.kind == HOSTILE and status in ("accepted", "superseded")] == []
    accepted = Counter(i.kind for i in corpus if i.expect == "accepted")
    assert accepted == {VALID: 6, DAMAGED: 5, CARELESS: 2}, accepted


def test_hostile_every_file_ends_as_the_corpus_says(outcomes):
    _, _, results, _ = outcomes
    wrong = []
    for item, status, message, _, quarantined in results:
        final = "accepted" if status == "superseded" else status    # a later accepted file replaced it
        ok = final == item.expect
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


def test_hostile_nothing_is_stuck_and_nothing_crashed(outcomes):
    settings, _, results, _ = outcomes
    assert pending(settings) == []
    for item, _, message, *_ in results:
        assert "Traceback" not in message and "SUB-PROCESSING" not in message, (item.label, message)
    con = store.connect(settings)
    try:
        statuses = dict(con.execute("SELECT status, count(*) FROM lake.submissions GROUP BY ALL").fetchall())
    finally:
        con.close()
    assert "received" not in statuses


def test_hostile_rejections_name_the_file(outcomes):
    _, _, results, _ = outcomes
    for item, status, message, *_ in results:
        if status == "rejected":
            assert repr(item.path.name) in message, (item.label, message)


def test_hostile_lake_holds_only_whole_accepted_slices(outcomes):
    settings, _, _, _ = outcomes
    con = store.connect(settings)
    try:
        accepted = con.execute("SELECT submission_id, rows_accepted FROM lake.submissions "
                               "WHERE status = 'accepted'").fetchall()
        published = dict(con.execute("SELECT submission_id, count(*) FROM lake.policy GROUP BY ALL").fetchall())
    finally:
        con.close()
    assert len(accepted) <= 1 and published == {sid: n for sid, n in accepted if n}


def test_hostile_time_and_memory_are_bounded(outcomes):
    _, _, results, rss_growth_mb = outcomes
    slowest = max(results, key=lambda r: r[3])
    assert slowest[3] < SECONDS_PER_FILE, (slowest[0].label, slowest[3])
    assert rss_growth_mb < 1500, rss_growth_mb
