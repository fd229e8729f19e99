"""`insurshare airflow start` also starts the portal as a recorded component: `stop` ends it, and a
portal that does not come up is reported without stopping Airflow (checked on stand-in portals)."""

from __future__ import annotations

import http.server
import sys
import threading
from pathlib import Path

import pytest

from pipelines.airflow import scheduler
from pipelines.airflow.scheduler import FIRST_OPERATOR, free_port, logs_dir, pids_dir, recorded, start_portal, stop
from pipelines.config import Settings

SERVING = """#!{python}
import http.server, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""
FAILING = """#!{python}
import sys
print("Error: the portal cannot start: boom", file=sys.stderr)
sys.exit(1)
"""


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings.from_env({"INSURSHARE_HOME": str(tmp_path / "home"),
                                  "INSURSHARE_PORTAL_PORT": str(free_port())})
    for folder in (pids_dir(settings), logs_dir(settings)):
        folder.mkdir(parents=True)
    return settings


def _stand_in(tmp_path: Path, monkeypatch, script: str) -> None:
    """Make ``<dir of sys.executable>/insurshare`` a stand-in (the scheduler starts that path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "insurshare"
    fake.write_text(script.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(scheduler.sys, "executable", str(bin_dir / "python"))


def test_portal_is_started_recorded_and_stopped(home, tmp_path, monkeypatch):
    _stand_in(tmp_path, monkeypatch, SERVING)

    portal = start_portal(home, {}, [], timeout=30)

    try:
        assert portal.problem == "" and portal.component is not None and portal.component.alive
        assert [c.name for c in recorded(home)] == ["portal"]
        assert portal.url == f"http://127.0.0.1:{home.portal_port}"
        assert FIRST_OPERATOR in "\n".join(portal.lines()) and portal.url in portal.lines()[0]
        other = Settings.from_env({"INSURSHARE_HOME": str(home.home), "INSURSHARE_PORTAL_PORT": "1"})
        again = start_portal(other, {}, recorded(home), timeout=5)   # already running: the same one, where it runs
        assert again.component.pid == portal.component.pid and again.url == portal.url
    finally:
        stopped = stop(home, grace=5)
    assert list(stopped.pids) == ["portal"] and not portal.component.alive
    assert recorded(home) == []


def test_portal_that_fails_is_reported_not_raised(home, tmp_path, monkeypatch):
    _stand_in(tmp_path, monkeypatch, FAILING)

    portal = start_portal(home, {}, [], timeout=30)

    assert portal.component is None and "exited while starting" in portal.problem and "boom" in portal.problem
    assert portal.lines()[0].startswith("PORTAL NOT RUNNING") and "Airflow runs without it" in portal.lines()[1]
    assert recorded(home) == []


def test_portal_port_taken_by_another_server_is_reported(home, tmp_path, monkeypatch):
    _stand_in(tmp_path, monkeypatch, SERVING)
    other = http.server.HTTPServer(("127.0.0.1", home.portal_port), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        portal = start_portal(home, {}, [], timeout=5)
    finally:
        other.shutdown()
        other.server_close()
    assert portal.component is None and "something else already answers" in portal.problem
    assert recorded(home) == []
