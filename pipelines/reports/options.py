"""What a report run is asked for: the reference date, the movement band, sample sizes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DEFAULT_MOVEMENT_BAND = 0.25


@dataclass(frozen=True)
class ReportOptions:
    """Knobs of a report run, resolved at the edge (CLI, DAG task) and passed down.

    ``today`` is the date timeliness is judged on (a slot past its due date without accepted
    data is late or missing); ``movement_band`` the relative change against the member's
    previous period above which a count or an amount is flagged; ``sample_rows`` how many
    failing rows a report shows per rule; ``top_rules`` how many rules the dashboard ranks;
    ``gx_docs`` whether GX's own Data Docs are also written (off: they need scripts from a CDN
    to show anything, and the submission report carries what they show).
    """

    today: dt.date
    movement_band: float = DEFAULT_MOVEMENT_BAND
    sample_rows: int = 3
    top_rules: int = 10
    gx_docs: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.movement_band < 10:
            raise ValueError(f"movement band {self.movement_band!r} must be a share such as 0.25 (25%)")
        if self.sample_rows < 0 or self.top_rules < 1:
            raise ValueError("sample_rows must be >= 0 and top_rules >= 1")
