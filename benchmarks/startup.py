"""Start-up: the command line answers without importing Airflow or GX; DAG files parse fast."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from pipelines.config import DAGS_DIR, PROJECT_ROOT

_IMPORTS = ("import sys, pipelines.cli; print(sorted(m for m in ('airflow', 'great_expectations', 'duckdb', "
            "'pandas', 'chainladder') if m in sys.modules))")

_DAG_PARSE = r"""
import json, sys, time, runpy
import airflow.sdk  # the dag-processor has Airflow loaded already
out = {}
for path in sys.argv[1:]:
    t = time.perf_counter()
    runpy.run_path(path)
    out[path.rsplit('/', 1)[-1]] = round(time.perf_counter() - t, 3)
print(json.dumps(out))
"""


def _wall(cmd: list[str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, check=True)
        best = min(best, time.perf_counter() - t)
    return round(best, 3)


def startup_figures(say: Callable[[str], None]) -> dict:
    say("start-up: insurshare --help, insurshare members list, imports, DAG parse times ...")
    exe = [sys.executable, "-m", "pipelines"]
    imported = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True,
                              cwd=PROJECT_ROOT).stdout.strip()
    dags = sorted(str(p) for p in DAGS_DIR.glob("*.py"))
    parse = json.loads(subprocess.run([sys.executable, "-c", _DAG_PARSE, *dags], capture_output=True, text=True,
                                      check=True, cwd=PROJECT_ROOT).stdout.strip().splitlines()[-1])
    result = {"help_seconds": _wall([*exe, "--help"]), "heavy_modules_at_cli_import": imported,
              "dag_parse_seconds": parse}
    say(f"start-up: --help {result['help_seconds']} s; heavy modules loaded by the CLI: {imported}; "
        f"DAG parse {parse}")
    return result
