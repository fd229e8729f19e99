"""Plaintext hygiene: a decrypted raw file lives only in a private work folder, for as long as
it is read; a killed ingestion's leftovers are swept by the next one, other workers' are not."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from pipelines import workspace
from pipelines.config import PROJECT_ROOT
from pipelines.ingest import process_submission
from tests.conftest import policy_row, submit, write_csv

CHILD = """
import sys
from pipelines.config import Settings
from pipelines.ingest import process_submission
process_submission(Settings.from_env(), sys.argv[1])
"""


def _folders(settings):
    return [p for p in workspace.submissions_dir(settings).iterdir() if p.is_dir()]


def _killed_at(settings, sid, point):
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_FAULTS": point}
    return subprocess.run([sys.executable, "-c", CHILD, sid], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, timeout=600).returncode


def test_plaintext_killed_ingestion_leftovers_are_swept_by_the_next(settings, tmp_path):
    sid = submit(settings, write_csv(tmp_path / "p.csv", [policy_row()])).submission.submission_id
    assert _killed_at(settings, sid, "after-restore") == -9
    [left] = _folders(settings)
    assert (left / "raw.csv").exists()                                   # the plaintext a kill leaves
    assert stat.S_IMODE(left.stat().st_mode) == 0o700
    assert process_submission(settings, sid).status == "accepted"
    assert _folders(settings) == []


def test_plaintext_is_deleted_as_soon_as_it_is_staged(settings, tmp_path):
    sid = submit(settings, write_csv(tmp_path / "p.csv", [policy_row()])).submission.submission_id
    assert _killed_at(settings, sid, "after-staging") == -9
    [left] = _folders(settings)
    assert not any(p.name.startswith(("raw.", "transcoded")) for p in left.iterdir())


def test_plaintext_sweep_leaves_a_folder_another_worker_holds(settings):
    with workspace.claim(settings, "M001-policy-2024Q1-v1") as busy:
        (busy / "raw.csv").write_text("in use")
        assert workspace.sweep(settings) == []
        assert (busy / "raw.csv").exists()
    assert not busy.exists()
