"""Validation stage: contract rules as DuckDB SQL (exact, per row) and as a GX suite (the oracle).

Its entry point is ``validate`` (``pipelines.validation.stage``): a staged file in, its checked
rows (table ``checked``, see ``pipelines.core.checked``), control totals and GX result out.
``validate`` and ``Validation`` are imported from ``stage`` on first use, so that importing a
light module of the package (``context``, ``rules_sql``) does not load pandas and GX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.validation.stage import Validation, validate

__all__ = ["Validation", "validate"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from pipelines.validation import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
