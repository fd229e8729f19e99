"""Rebuild the audiences' data products after every mart build.

Scheduled on the ``insurshare://marts`` asset that ``build_marts`` updates (and runnable on
demand: ``insurshare run-dag build_products``). The one task runs the same
``pipelines.products.build_products`` as ``insurshare products build``: it pins the lake's
current snapshot, applies disclosure control to the industry marts and writes one read-only
DuckDB file per audience (regulator, public, each member) under ``$INSURSHARE_HOME/products``,
with an audit entry. The disclosure rules come from the ``profile``, ``min_members`` and
``max_share`` params, else from ``INSURSHARE_DISCLOSURE`` (and ``..._MIN_MEMBERS``,
``..._MAX_SHARE``) in the worker's environment. It updates the ``insurshare://products`` asset.
Only transient errors (a busy catalog, I/O) are retried.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from pipelines.airflow.dags import MARTS, PRODUCTS, dag_arguments, retry_aware
from pipelines.airflow.orchestration import task_settings


def _rules(settings, params: dict):
    from pipelines.products.disclosure import resolve_rules

    return resolve_rules(params.get("profile") or settings.raw("INSURSHARE_DISCLOSURE"),
                         min_members=params.get("min_members") or settings.raw("INSURSHARE_DISCLOSURE_MIN_MEMBERS"),
                         max_share=params.get("max_share") or settings.raw("INSURSHARE_DISCLOSURE_MAX_SHARE"))


@dag(
    dag_id="build_products",
    schedule=[MARTS],
    **dag_arguments("products", "disclosure"),
    params={"profile": None, "min_members": None, "max_share": None},
    doc_md=__doc__,
)
def build_products():
    @task(outlets=[PRODUCTS])
    @retry_aware
    def build() -> dict:
        """Rebuild every product from the lake's current snapshot with disclosure control."""
        from pipelines.products import build_products as run

        settings = task_settings()
        result = run(settings, _rules(settings, get_current_context()["params"]))
        print("\n".join(result.lines()))
        return {"lake_snapshot": result.lake_snapshot, "marts_snapshot": result.marts_snapshot,
                "products": sorted(result.rows), "withheld": result.control.withheld}

    build()


dag_object = build_products()
