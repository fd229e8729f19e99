"""Settings resolved once at the edges (CLI entry, DAG task) and passed down frozen.

Library code never reads the environment: ``Settings.from_env()`` is called by the CLI
and the DAG tasks only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
DAGS_DIR = PROJECT_ROOT / "dags"

DEFAULT_GX_MAX_ROWS = 1_000_000
DEFAULT_QUERY_TIMEOUT = 300.0   # seconds
DEFAULT_QUERY_MEMORY = "2GB"
DEFAULT_QUERY_TEMP = "4GB"


@dataclass(frozen=True)
class Settings:
    """Where the platform keeps its things, and the knobs that change behaviour."""

    home: Path
    catalog: str = ""
    data_path: Path | None = None
    key_file: Path | None = None
    schemas_dir: Path = SCHEMAS_DIR
    gx_max_rows: int = DEFAULT_GX_MAX_ROWS
    duckdb_memory_limit: str = "2GB"
    duckdb_threads: int = 0
    query_timeout: float = DEFAULT_QUERY_TIMEOUT   # a user's query is killed after this many seconds
    query_memory: str = DEFAULT_QUERY_MEMORY       # ... or when its process grows by more than this
    query_temp: str = DEFAULT_QUERY_TEMP           # ... or when it spills more than this to disk
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        home = Path(self.home).absolute()
        object.__setattr__(self, "home", home)
        if not self.catalog:
            object.__setattr__(self, "catalog", str(home / "lake" / "catalog.sqlite"))
        if self.data_path is None:
            object.__setattr__(self, "data_path", home / "lake" / "files")
        if self.key_file is None:
            object.__setattr__(self, "key_file", home / "secrets" / "pseudonym.key")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``INSURSHARE_*`` variables; unset ones take the embedded defaults."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {
            "home": Path(env.get("INSURSHARE_HOME") or "data"),
            "catalog": env.get("INSURSHARE_CATALOG", ""),
            "env": env,
        }
        if env.get("INSURSHARE_DATA_PATH"):
            values["data_path"] = Path(env["INSURSHARE_DATA_PATH"])
        if env.get("INSURSHARE_KEY_FILE"):
            values["key_file"] = Path(env["INSURSHARE_KEY_FILE"])
        if env.get("INSURSHARE_GX_MAX_ROWS"):
            values["gx_max_rows"] = int(env["INSURSHARE_GX_MAX_ROWS"])
        if env.get("INSURSHARE_DUCKDB_MEMORY"):
            values["duckdb_memory_limit"] = env["INSURSHARE_DUCKDB_MEMORY"]
        if env.get("INSURSHARE_QUERY_TIMEOUT"):
            values["query_timeout"] = _seconds(env["INSURSHARE_QUERY_TIMEOUT"], "INSURSHARE_QUERY_TIMEOUT")
        if env.get("INSURSHARE_QUERY_MEMORY"):
            values["query_memory"] = env["INSURSHARE_QUERY_MEMORY"]
        if env.get("INSURSHARE_QUERY_TEMP"):
            values["query_temp"] = env["INSURSHARE_QUERY_TEMP"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def query_memory_bytes(self) -> int:
        return parse_bytes(self.query_memory, "INSURSHARE_QUERY_MEMORY")

    @property
    def query_temp_bytes(self) -> int:
        return parse_bytes(self.query_temp, "INSURSHARE_QUERY_TEMP")

    @property
    def archive_dir(self) -> Path:
        """Raw files as received, addressed by sha256, never modified."""
        return self.home / "archive"

    @property
    def work_dir(self) -> Path:
        """Scratch space for staging databases; safe to delete between runs."""
        return self.home / "work"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def pseudonym_key(self) -> str | None:
        """The key given inline through ``INSURSHARE_PSEUDONYM_KEY`` (``id:hex``), if any."""
        return self.env.get("INSURSHARE_PSEUDONYM_KEY") or None

    @property
    def catalog_is_postgres(self) -> bool:
        return self.catalog.startswith(("postgres:", "postgresql:", "dbname=", "host="))


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str, name: str = "size") -> int:
    """``"2GB"``, ``"512 MiB"`` or ``"1000000"`` as a number of bytes (DuckDB's spelling of sizes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m[2].lower() if m else ""
    if not m or unit not in _UNITS or float(m[1]) <= 0:
        raise ConfigError(f"{name}={text!r} is not a size.", hint="Write it like 2GB, 512MB or 1GiB.")
    return int(float(m[1]) * _UNITS[unit])


def _seconds(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name}={text!r} is not a number of seconds.", hint="Write it like 300 or 2.5.")
    return value
