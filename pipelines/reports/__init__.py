"""Reports: what the platform tells its members and the regulator about data quality.

``build_reports`` regenerates, from one snapshot of the lake, a report per submission (HTML
and JSON, with its quarantined rows as CSV and XLSX; GX's Data Docs only on request), a scorecard per
member and the platform dashboard under ``settings.reports_dir``. The scores are computed in
DuckDB SQL (``scoring``); pages are rendered by ``html`` from the templates in ``templates/``.

    lake -> scoring (slots, scores) -> submission / scorecard / dashboard (data)
         -> html (self-contained pages) + JSON, quarantine (CSV/XLSX), gxdocs (GX Data Docs, opt-in)
"""

from pipelines.reports.build import Built, build_reports
from pipelines.reports.options import ReportOptions
from pipelines.reports.quarantine import export_quarantine

__all__ = ["Built", "ReportOptions", "build_reports", "export_quarantine"]
