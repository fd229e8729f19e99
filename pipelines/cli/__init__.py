"""The ``insurshare`` command line: a thin layer over the ``pipelines`` functions.

Commands live in modules of this package by subject (``commands`` for intake, ingestion and
queries); each registers itself on ``main`` with ``command``.

Every command resolves the settings once (``--home`` or ``INSURSHARE_HOME``, default ./data),
calls one library function and prints its result. Errors of the platform are shown as one
message that says what to do next; no traceback for bad input.
"""

from __future__ import annotations

# The subject modules register their commands on ``main`` when imported.
from pipelines.cli import (  # noqa: E402,F401,I001
    calendars,
    commands,
    lake,
    marts,
    notices,
    ops,  # noqa: E402,F401
    portal,
    privacy,
    products,  # noqa: E402,F401
    reports,
)
from pipelines.cli.base import command, main

__all__ = ["command", "main"]
