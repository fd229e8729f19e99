"""Fault injection for the crash tests: die with SIGKILL at a named point.

``INSURSHARE_FAULTS=publish-before-commit`` (comma-separated names) makes the process kill
itself when it reaches that point, exactly as a power cut or an OOM kill would. Unset (the
default) it does nothing. Points: ``after-staging``, ``after-validation``,
``publish-before-commit``, ``after-publish-commit``, ``marts-before-commit``.
"""

from __future__ import annotations

import os
import signal

from pipelines.config import Settings


def checkpoint(settings: Settings, name: str) -> None:
    wanted = settings.env.get("INSURSHARE_FAULTS", "")
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
