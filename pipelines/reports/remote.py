"""Reports on S3 storage (``INSURSHARE_STORAGE``): built in scratch, published to ``<storage>/reports/``.

Reports are made again from the lake by every build, on whichever machine runs it, so they are not
written once like the lake's objects: a build copies each file it made to the same relative name
under ``<storage>/reports/``, replacing the older copy, and skips a file whose object already holds
the same bytes (its ETag is the MD5 of what was put). Only what this build made is copied, never
other files of the scratch folder: they may be older than what another machine published since.
The prefix can be served as a static site (``INSURSHARE_REPORTS_URL``); pages link relatively.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from pathlib import Path

from pipelines import objects
from pipelines.config import Settings


def reports_url(settings: Settings) -> str:
    return f"{settings.storage}/reports"


def publish(settings: Settings, root: Path, files: Iterable[Path]) -> list[str]:
    """Copy ``files`` (under ``root``) to the reports prefix where they differ; the names copied."""
    base = reports_url(settings)
    stored = objects.etags(settings, base)
    copied = []
    for path in sorted(set(files)):
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        if stored.get(name) == hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest():
            continue
        objects.put(settings, f"{base}/{name}", path, content_type=mimetypes.guess_type(name)[0])
        copied.append(name)
    return copied
