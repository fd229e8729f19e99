"""Settings resolved once at the edges (CLI entry, DAG task) and passed down frozen.

Library code never reads the environment: ``Settings.from_env()`` is called by the CLI
and the DAG tasks only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
DAGS_DIR = PROJECT_ROOT / "dags"

DEFAULT_GX_MAX_ROWS = 1_000_000


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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

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
