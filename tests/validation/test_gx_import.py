"""GX is imported only when first used, and always with its usage analytics off.

Importing the validation modules must not import GX (seconds) nor change the environment;
the first use sets ``GX_ANALYTICS_ENABLED=False`` (unless the operator set it) before GX is
imported, which is when GX versions with analytics read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.config import PROJECT_ROOT

PROBE = r"""
import importlib.abc, json, os, sys

seen = []   # the variable's value at the moment great_expectations is first imported

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "great_expectations" and not seen:
            seen.append(os.environ.get("GX_ANALYTICS_ENABLED"))
        return None

sys.meta_path.insert(0, Watch())
import pipelines.validation.expectations
import pipelines.validation.gx_results
from pipelines.reports import gxdocs  # noqa: F401
after_import = {"gx": "great_expectations" in sys.modules, "var": os.environ.get("GX_ANALYTICS_ENABLED")}
module, function = sys.argv[1].split(":")
getattr(sys.modules[module], function)()
print("RESULT" + json.dumps({"after_import": after_import, "at_gx_import": seen,
                             "after_use": os.environ.get("GX_ANALYTICS_ENABLED")}))
"""


def _probe(use: str, analytics: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    if analytics is not None:
        env["GX_ANALYTICS_ENABLED"] = analytics
    res = subprocess.run([sys.executable, "-c", PROBE, use], env=env, cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    return json.loads(line[len("RESULT"):])


@pytest.mark.parametrize("use, analytics, expected", [   # each probe imports GX once (~10 s)
    ("pipelines.validation.gx_results:_ensure_context", None, "False"),
    ("pipelines.validation.expectations:import_gx", "True", "True"),
], ids=["unset", "operator's"])
def test_gx_is_imported_on_first_use_with_analytics_off(use, analytics, expected):
    out = _probe(use, analytics)
    assert out == {"after_import": {"gx": False, "var": analytics},
                   "at_gx_import": [expected], "after_use": expected}
