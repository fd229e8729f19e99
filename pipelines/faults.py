"""Fault injection for the crash and fault-isolation tests.

``INSURSHARE_FAULTS=publish-before-commit`` (comma-separated names) makes the process kill
itself with SIGKILL when it reaches that point, exactly as a power cut or an OOM kill would;
``error@after-staging`` raises ``InjectedFault`` there instead, as a bug in the platform would;
``error@after-staging:M001-policy-2024Q1-v1`` only for that subject (a submission id, or the
name of a landed file at ``landing-take``).
Unset (the default) it does nothing. Points: ``after-restore``, ``after-staging``,
``after-validation``, ``publish-before-commit``, ``after-publish-commit``, ``marts-before-commit``,
``landing-take``.
"""

from __future__ import annotations

import os
import signal

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
