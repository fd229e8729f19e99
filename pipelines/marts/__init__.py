"""Marts: industry and member aggregates built from the accepted rows of the lake.

The flow of a build (``build.build_marts``, ``insurshare build-marts``, DAG ``build_marts``):

    source       which snapshot the marts read (the last one that changed policy or claim data)
    experience   premium, exposure and losses by period, line and province; frequency, severity,
                 pure premium, loss ratio                            (uses ``premium`` for earning)
    triangles    development triangles from the claim snapshots
    development  chain ladder in SQL: age-to-age factors, CDFs, ultimates, IBNR
    benchmark    each member next to the industry, with its rank
    build        computes all of them, then publishes them in one lake transaction

``cells`` holds the SQL shared by all (missing-aware ratios, rollups, disclosure columns);
``reserving`` and ``formats`` serve one triangle to ``insurshare triangle`` and ``pipelines.api``;
``export`` writes a mart to CSV, Parquet or Excel.
"""
