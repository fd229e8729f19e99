"""When members send their files: most within the due days after the quarter, some late.

Each member has a habit (the share of quarters it is late); a quarter's claim file follows
its premium file by a few days, and a corrected version follows the first one by days to
weeks. The times are part of the index (``submitted_at``, UTC) so that timeliness can be
measured against the platform's due days; they never come from the clock.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import replace

from pipelines.contracts import load_contract
from pipelines.generate.outputs import Written
from pipelines.generate.randomness import rng

LATE_SHARES = (0.04, 0.1, 0.05, 0.2, 0.3)     # members 1, 2, 3, ... cycling


def with_arrival_times(written: Sequence[Written], seed: int) -> list[Written]:
    """``written`` with ``submitted_at`` set on every file."""
    firsts: dict[tuple[str, str], dt.datetime] = {}
    out: list[Written] = []
    for w in sorted(written, key=lambda w: (w.member_id, w.period.start, w.dataset != "policy", w.version)):
        r = rng(seed, w.member_id, w.period.label, w.dataset, w.version, "arrival")
        key = (w.member_id, w.period.label)
        if w.version > 1 and out:
            when = out[-1].submitted_at + dt.timedelta(days=r.randint(2, 12), minutes=r.randint(0, 300))
        elif key in firsts:
            when = firsts[key] + dt.timedelta(days=r.randint(0, 6), minutes=r.randint(0, 300))
        else:
            when = _first_arrival(w, r)
            firsts[key] = when
        out.append(replace(w, submitted_at=when))
    return out


def _first_arrival(w: Written, r: random.Random) -> dt.datetime:
    due = load_contract(w.dataset).due_days
    number = int(w.member_id.lstrip("M") or 1) - 1
    late = r.random() < LATE_SHARES[number % len(LATE_SHARES)]
    days = due + r.randint(1, 40) if late else r.randint(min(12, due), max(due - 2, 1))
    day = w.period.end + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(8, 30)) + dt.timedelta(minutes=r.randint(0, 600))
