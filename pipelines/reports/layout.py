"""Where the reports go under ``settings.reports_dir``, and how pages link to each other.

```
reports/
  index.html, dashboard.json                    the platform dashboard
  members/<member>/scorecard.html, .json        one scorecard per member
  submissions/<submission>/report.html, .json   one report per submission,
                           quarantine.csv, .xlsx   with its quarantined rows when it has some
  gx/                                           GX's own Data Docs (a file context), with --gx-docs
```

Every link between pages is relative, so the folder can be moved, zipped or served as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def dashboard(self) -> Path:
        return self.root / "index.html"

    @property
    def dashboard_json(self) -> Path:
        return self.root / "dashboard.json"

    def member_dir(self, member_id: str) -> Path:
        return self.root / "members" / _safe(member_id)

    def scorecard(self, member_id: str) -> Path:
        return self.member_dir(member_id) / "scorecard.html"

    def scorecard_json(self, member_id: str) -> Path:
        return self.member_dir(member_id) / "scorecard.json"

    def submission_dir(self, submission_id: str) -> Path:
        return self.root / "submissions" / _safe(submission_id)

    def submission(self, submission_id: str) -> Path:
        return self.submission_dir(submission_id) / "report.html"

    def submission_json(self, submission_id: str) -> Path:
        return self.submission_dir(submission_id) / "report.json"

    def quarantine_file(self, submission_id: str, suffix: str) -> Path:
        return self.submission_dir(submission_id) / f"quarantine.{suffix}"

    @property
    def gx_root(self) -> Path:
        return self.root / "gx"

    def link(self, page: Path, target: Path) -> str:
        """``target`` relative to the folder of ``page``, with forward slashes."""
        return Path(os.path.relpath(target, page.parent)).as_posix()


def _safe(name: str) -> str:
    """A file-system-safe folder name (submission and member ids already are)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
