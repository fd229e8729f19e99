"""Fault injection for the crash and fault-isolation tests.

``INSURSHARE_FAULTS=publish-before-commit`` (comma-separated names) makes the process kill
itself with SIGKILL when it reaches that point, exactly as a power cut or an OOM kill would;
``error@after-staging`` raises ``InjectedFault`` there instead, as a bug in the platform would;
``error@after-staging:M001-policy-2024Q1-v1`` only for that subject (a submission id, or the
name of a landed file at ``landing-take``). ``wait@publish-before-commit`` makes the process stop
there as a hung machine would: it writes ``$INSURSHARE_HOME/work/faults/<point>.waiting`` (so that a
test knows it is there, to kill it) and sleeps.
Unset (the default) it does nothing. Points: ``after-restore``, ``after-staging``,
``after-validation``, ``publish-before-commit``, ``after-publish-commit``, ``marts-before-commit``,
``landing-take``.
"""

from __future__ import annotations

import os
import signal
import time

from pipelines.config import Settings


class InjectedFault(RuntimeError):
    """A failure raised on purpose by ``INSURSHARE_FAULTS=error@<point>``."""


def checkpoint(settings: Settings, name: str, subject: str | None = None) -> None:
    wanted = settings.raw("INSURSHARE_FAULTS")
    if not wanted:
        return
    names = wanted.split(",")
    if name in names:
        os.kill(os.getpid(), signal.SIGKILL)
    if f"error@{name}" in names or (subject and f"error@{name}:{subject}" in names):
        raise InjectedFault(f"fault injected at {name}")
    if f"wait@{name}" in names:
        marker = settings.work_dir / "faults" / f"{name}.waiting"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{os.getpid()} {subject or ''}\n")
        time.sleep(3600)
