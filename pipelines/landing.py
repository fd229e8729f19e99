"""The landing zone: members (or their transfer jobs) drop a file and then its manifest.

``$INSURSHARE_HOME/landing/**/<file>`` is taken into intake once ``<file>.manifest.json``
exists beside it (the manifest is written last, so a file still being uploaded is left
alone). After intake the raw file is in the archive, and both files leave the landing zone,
whether the submission was received or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.config import Settings
from pipelines.errors import InsurShareError, SubmissionError
from pipelines.intake import Manifest, receive, refuse_file

MANIFEST_SUFFIX = ".manifest.json"


def landing_dir(settings: Settings) -> Path:
    return settings.home / "landing"


def receive_landing(settings: Settings, progress: Callable[[str], None] | None = None) -> list[str]:
    """Take every landed file that has its manifest into intake; return one line per file."""
    root = landing_dir(settings)
    if not root.exists():
        return []
    lines = []
    for manifest_path in sorted(root.rglob(f"*{MANIFEST_SUFFIX}")):
        data = manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)])
        if not data.is_file():
            continue
        line = _take(settings, data, manifest_path)
        data.unlink()
        manifest_path.unlink()
        lines.append(line)
        if progress:
            progress(line)
    return lines


def _take(settings: Settings, data: Path, manifest_path: Path) -> str:
    """Archive and receive one landed file; a refusal is recorded and described, not raised."""
    try:
        manifest = Manifest.from_file(manifest_path)
    except SubmissionError as exc:
        refuse_file(settings, data, exc)
        return f"{data.name}: refused - {exc}"
    try:
        got = receive(settings, data, manifest)
    except InsurShareError as exc:
        if exc.retryable:
            raise
        return f"{data.name}: refused - {exc}"
    verb = "received as" if got.created else "already received as"
    return f"{data.name}: {verb} {got.submission.submission_id}"
