"""Settings resolved once at the edges (CLI entry, DAG task) and passed down frozen.

Library code never reads the environment: ``Settings.from_env()`` is called by the CLI
and the DAG tasks only. Every ``INSURSHARE_*`` variable is registered once in ``SETTINGS`` (its
name, default and meaning); ``from_env``, the CLI's options, the scheduler's environment and
README's configuration table are derived from that registry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.core.domain import Period, parse_period
from pipelines.errors import ConfigError, SubmissionError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
DAGS_DIR = PROJECT_ROOT / "dags"


@dataclass(frozen=True)
class Setting:
    """One ``INSURSHARE_*`` variable: what it means, its default, and where its value is kept.

    ``SETTINGS`` below lists every one the platform reads; ``Settings.from_env``, the scheduler's
    environment, the CLI's options that take a variable and README's configuration table
    (``insurshare docs``) are all made from it, so a new variable is added there and nowhere else.
    """

    env: str                  # the variable's name
    meaning: str              # README's "meaning" column (Markdown)
    default: str | None = None
    """The text it takes when unset or empty; None when it has none (or it is derived: see ``shown``)."""
    shown: str = ""
    """How the default reads (Markdown) when it is not ``default`` itself, e.g. a path under the home."""
    attr: str | None = None
    """The ``Settings`` attribute that holds its value: a field (``parse`` set) or a property."""
    parse: Callable[[str, str], Any] | None = None
    """``(text, name) -> value`` of the ``Settings`` field; None when it is not a field (its users
    read the text with ``Settings.raw`` or a property)."""

    @property
    def default_markdown(self) -> str:
        """The default as README's table shows it."""
        return self.shown or (f"`{self.default}`" if self.default is not None else "unset")

    @property
    def default_text(self) -> str:
        """The default as ``--help`` shows it (plain text)."""
        return self.default_markdown.replace("`", "")

    def read(self, environ: Mapping[str, str]) -> str | None:
        """The variable's text in ``environ``, or its default when unset or empty."""
        return environ.get(self.env) or self.default


def _path(text: str, name: str) -> Path:
    return Path(text)


def _storage(text: str, name: str) -> str:
    if not text.startswith("s3://") or not text[5:].strip("/"):
        raise ConfigError(f"{name}={text!r} is not an S3 location.",
                          hint="Write it like s3://bucket/prefix, or unset it to keep files under the home.")
    return text.rstrip("/")


def _location(text: str, name: str) -> Path | str:
    """A folder, or an ``s3://`` prefix kept as text (a ``Path`` would fold its ``//``)."""
    return text.rstrip("/") if text.startswith("s3://") else Path(text)


def _text(text: str, name: str) -> str:
    return text


def _int(text: str, name: str) -> int:
    return int(text)


def _on_off(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off", "true", "false"):
        raise ConfigError(f"{name}={text!r} is neither on nor off.", hint="Write on or off.")
    return value in ("on", "true")


def _seconds(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name}={text!r} is not a number of seconds.", hint="Write it like 300 or 2.5.")
    return value


# The fields are parsed by ``Settings.from_env`` in this order (the first bad one is reported).
SETTINGS: tuple[Setting, ...] = (
    Setting("INSURSHARE_HOME", "working folder: `landing/`, `archive/`, `lake/`, `work/`, `airflow/`, `secrets/`",
            default="./data", attr="home", parse=_path),
    Setting("INSURSHARE_CATALOG",
            "SQLite path, or a PostgreSQL connection string (`postgres:dbname=lake host=...`)",
            shown="`$INSURSHARE_HOME/lake/catalog.sqlite`", attr="catalog", parse=_text),
    Setting("INSURSHARE_STORAGE",
            "where durable files live: unset for folders under the home, or `s3://bucket/prefix` for S3 object "
            "storage (the lake's data files under `lake/files/`, the encrypted raw archive under `archive/`); "
            "credentials, region and endpoint come from the usual AWS variables (`AWS_ACCESS_KEY_ID`, "
            "`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, ...) or the AWS config files, never from this setting",
            shown="unset (local folders)", attr="storage", parse=_storage),
    Setting("INSURSHARE_DATA_PATH", "where DuckLake writes Parquet files (a folder, or an `s3://` prefix; "
            "`lake/files` under `INSURSHARE_STORAGE` when that is set)",
            shown="`$INSURSHARE_HOME/lake/files`", attr="data_path",
            parse=_location),
    Setting("INSURSHARE_S3_ATTEMPTS", "tries of each S3 request (with a growing pause between) before it fails",
            default="5", attr="s3_attempts", parse=_int),
    Setting("INSURSHARE_KEY_FILE", "the HMAC key (`<key id>:<hex>`)",
            shown="`$INSURSHARE_HOME/secrets/pseudonym.key`", attr="key_file", parse=_path),
    Setting("INSURSHARE_ARCHIVE_KEY_FILE", "the AES-256-GCM key of the raw archive",
            shown="`$INSURSHARE_HOME/secrets/archive.key`", attr="archive_key_file"),
    Setting("INSURSHARE_AUDIT_KEY_FILE", "the HMAC key of the audit chain and its anchor, kept apart from the lake",
            shown="`$INSURSHARE_HOME/secrets/audit.key`", attr="audit_key_file"),
    Setting("INSURSHARE_AUDIT_ANCHOR", "the append-only anchor of the audit chain's head, outside the catalog: "
            "a file, or an `s3://` prefix (one write-once object per line; with `INSURSHARE_STORAGE` the default is "
            "`<storage>/audit/anchor`)",
            shown="`$INSURSHARE_HOME/audit/anchor.jsonl`",
            attr="audit_anchor_file"),
    Setting("INSURSHARE_PSEUDONYM_KEY", "the key itself, instead of a file", attr="pseudonym_key"),
    Setting("INSURSHARE_GX_MAX_ROWS", "largest batch GX's pandas engine validates",
            default="1000000", attr="gx_max_rows", parse=_int),
    Setting("INSURSHARE_GX_AT_INGEST",
            "`on`: GX's pandas engine also validates each batch at ingestion (up to `INSURSHARE_GX_MAX_ROWS` rows) "
            "and its own result is stored; `off`: the GX-format result is made from the platform's counts, "
            "which the tests check against GX's engine",
            default="off", attr="gx_at_ingest", parse=_on_off),
    Setting("INSURSHARE_DUCKDB_MEMORY", "DuckDB memory limit per process (it spills to `work/` beyond)",
            default="2GB", attr="duckdb_memory_limit", parse=_text),
    Setting("INSURSHARE_QUERY_TIMEOUT", "seconds an `insurshare query` may run before it is stopped",
            default="300", attr="query_timeout", parse=_seconds),
    Setting("INSURSHARE_QUERY_MEMORY",
            "memory an `insurshare query` may take (its process's growth; DuckDB gets this less 512 MB)",
            default="2GB", attr="query_memory", parse=_text),
    Setting("INSURSHARE_QUERY_TEMP", "disk an `insurshare query` may spill to under `work/queries/`",
            default="4GB", attr="query_temp", parse=_text),
    Setting("INSURSHARE_SNAPSHOT_RETENTION_DAYS",
            "days of lake snapshots `insurshare lake maintain` keeps for `--as-of` reads (older ones expire)",
            default="30"),
    Setting("INSURSHARE_INGEST_SCHEDULE",
            "how often `ingest_submissions` polls (cron), or `none` for on-demand runs only "
            "(read when the DAG file is parsed)", default="*/15 * * * *"),
    Setting("INSURSHARE_DISCLOSURE",
            "disclosure profile of the products: `default` (3 members, 50%) or `strict` (5, 25%)",
            shown="`default`"),
    Setting("INSURSHARE_DISCLOSURE_MIN_MEMBERS", "fewest members a published cell may have (overrides the profile's)",
            shown="the profile's"),
    Setting("INSURSHARE_DISCLOSURE_MAX_SHARE",
            "largest member's share a published cell may have, e.g. `0.5` (overrides the profile's)",
            shown="the profile's"),
    Setting("INSURSHARE_NOTICE_CHANNELS", "the notice channels (webhooks, e-mail addresses) per member, kept by "
            "`insurshare notices configure`", shown="`$INSURSHARE_HOME/notices/channels.json`",
            attr="notice_channels_file"),
    Setting("INSURSHARE_NOTICE_KEY_FILE", "the key that signs webhook notices (each member's signing secret is "
            "derived from it: `insurshare notices secret`)", shown="`$INSURSHARE_HOME/secrets/notices.key`",
            attr="notice_key_file"),
    Setting("INSURSHARE_EARLIEST_PERIOD",
            "the earliest period a submission may be for (`YYYYQn` or `YYYY`): older history is refused as a "
            "likely typo; a member's reporting calendar says from when it reports", default="1980Q1",
            attr="earliest_period"),
    Setting("INSURSHARE_NOTICE_DUE_DAYS", "days before a due date that a member who has not sent the slice is reminded",
            default="7"),
    Setting("INSURSHARE_NOTICE_TIMEOUT", "seconds a webhook or the SMTP server may take to answer", default="10"),
    Setting("INSURSHARE_NOTICE_ATTEMPTS", "tries per notice and run (with a growing pause) before it is logged failed",
            default="3"),
    Setting("INSURSHARE_REPORTS_URL", "where `reports/` is served, so that notices link to a report by URL",
            shown="unset (notices give the report's path)"),
    Setting("INSURSHARE_SMTP_HOST", "the SMTP server that sends e-mail notices", shown="unset (no e-mail is sent)"),
    Setting("INSURSHARE_SMTP_PORT", "its port", default="587"),
    Setting("INSURSHARE_SMTP_TLS", "`starttls`, `ssl` (SMTPS) or `none`", default="starttls"),
    Setting("INSURSHARE_SMTP_FROM", "the sender of e-mail notices", default="insurshare@localhost"),
    Setting("INSURSHARE_SMTP_USER", "the SMTP login, if the server needs one"),
    Setting("INSURSHARE_SMTP_PASSWORD_FILE", "a file holding the SMTP password (never the password itself)"),
    Setting("INSURSHARE_PORTAL_HOST", "the address the portal and API listen on (`insurshare portal serve`)",
            default="127.0.0.1"),
    Setting("INSURSHARE_PORTAL_PORT", "the portal's port", default="8300"),
    Setting("INSURSHARE_PORTAL_URL", "the portal's external address, as users reach it (behind a TLS proxy: "
            "`https://...`, which also marks the session cookie Secure)", shown="`http://HOST:PORT`"),
    Setting("INSURSHARE_PORTAL_MAX_UPLOAD", "largest file the portal accepts in one upload (larger: 413)",
            default="2GB"),
    Setting("INSURSHARE_IDENTITY_DB",
            "where the portal's users, tokens, sessions and access spool live: a SQLite path or a PostgreSQL "
            "connection string", shown="the catalog's PostgreSQL database, else `$INSURSHARE_HOME/lake/identity.sqlite`"),
    Setting("INSURSHARE_FAULTS",
            "for the crash and fault-isolation tests only: points where the process kills itself or raises "
            "(`pipelines/faults.py`); never set it in production"),
)
_BY_ENV = {s.env: s for s in SETTINGS}


def setting(env: str) -> Setting:
    """The registered setting of variable ``env``; KeyError for a variable not in ``SETTINGS``."""
    try:
        return _BY_ENV[env]
    except KeyError:
        raise KeyError(f"{env} is not a setting: add it to pipelines.config.SETTINGS") from None


def _default(env: str) -> Any:
    s = setting(env)
    return s.parse(s.default, s.env)


@dataclass(frozen=True)
class Settings:
    """Where the platform keeps its things, and the knobs that change behaviour (see ``SETTINGS``)."""

    home: Path
    catalog: str = ""
    data_path: Path | str | None = None     # a folder, or an s3:// prefix
    storage: str = ""                       # "" (under the home) or s3://bucket/prefix
    key_file: Path | None = None
    schemas_dir: Path = SCHEMAS_DIR
    gx_max_rows: int = _default("INSURSHARE_GX_MAX_ROWS")
    gx_at_ingest: bool = _default("INSURSHARE_GX_AT_INGEST")
    duckdb_memory_limit: str = _default("INSURSHARE_DUCKDB_MEMORY")
    duckdb_threads: int = 0
    s3_attempts: int = _default("INSURSHARE_S3_ATTEMPTS")
    query_timeout: float = _default("INSURSHARE_QUERY_TIMEOUT")  # a user's query is killed after this many seconds
    query_memory: str = _default("INSURSHARE_QUERY_MEMORY")      # ... or when its process grows by more than this
    query_temp: str = _default("INSURSHARE_QUERY_TEMP")          # ... or when it spills more than this to disk
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        home = Path(self.home).absolute()
        object.__setattr__(self, "home", home)
        if not self.catalog:
            object.__setattr__(self, "catalog", str(home / "lake" / "catalog.sqlite"))
        if self.data_path is None:
            object.__setattr__(self, "data_path", f"{self.storage}/lake/files" if self.storage
                               else home / "lake" / "files")
        if self.key_file is None:
            object.__setattr__(self, "key_file", home / "secrets" / "pseudonym.key")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``INSURSHARE_*`` variables; unset ones take the embedded defaults."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {"env": env}
        for s in SETTINGS:
            text = s.read(env) if s.parse else None
            if text:
                values[s.attr] = s.parse(text, s.env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def raw(self, env: str) -> str | None:
        """The text of setting ``env`` (a variable of ``SETTINGS``) in these settings' environment,
        or None when it is unset or empty."""
        return self.env.get(setting(env).env) or None

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def query_memory_bytes(self) -> int:
        return parse_bytes(self.query_memory, "INSURSHARE_QUERY_MEMORY")

    @property
    def query_temp_bytes(self) -> int:
        return parse_bytes(self.query_temp, "INSURSHARE_QUERY_TEMP")

    @property
    def data_is_remote(self) -> bool:
        """Whether the lake's data files are in S3 object storage (``data_path`` an ``s3://`` prefix)."""
        return str(self.data_path).startswith("s3://")

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
        """Where the reports are written: under the home; with S3 storage, in scratch (each build
        then copies its pages to ``<storage>/reports/``, see ``pipelines.reports.remote``)."""
        return self.work_dir / "reports" if self.storage else self.home / "reports"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def pseudonym_key(self) -> str | None:
        """The key given inline through ``INSURSHARE_PSEUDONYM_KEY`` (``id:hex``), if any."""
        return self.raw("INSURSHARE_PSEUDONYM_KEY")

    @property
    def archive_key_file(self) -> Path:
        """The raw archive's key (``INSURSHARE_ARCHIVE_KEY_FILE``), separate from the pseudonymisation key."""
        return Path(self.raw("INSURSHARE_ARCHIVE_KEY_FILE") or self.home / "secrets" / "archive.key")

    @property
    def audit_key_file(self) -> Path:
        """The audit chain's HMAC key (``INSURSHARE_AUDIT_KEY_FILE``)."""
        return Path(self.raw("INSURSHARE_AUDIT_KEY_FILE") or self.home / "secrets" / "audit.key")

    @property
    def audit_anchor_file(self) -> Path | str:
        """The audit chain's append-only anchor (``INSURSHARE_AUDIT_ANCHOR``), outside the catalog:
        a local file, or an ``s3://`` prefix of write-once line objects (the default on S3 storage,
        so that every machine of a many-machines platform seals into the same anchor)."""
        text = self.raw("INSURSHARE_AUDIT_ANCHOR")
        if text:
            return text.rstrip("/") if text.startswith("s3://") else Path(text)
        return f"{self.storage}/audit/anchor" if self.storage else self.home / "audit" / "anchor.jsonl"

    @property
    def notice_channels_file(self) -> Path:
        """Where the notice channels are kept (``INSURSHARE_NOTICE_CHANNELS``; see ``pipelines.notices``)."""
        return Path(self.raw("INSURSHARE_NOTICE_CHANNELS") or self.home / "notices" / "channels.json")

    @property
    def notice_key_file(self) -> Path:
        """The key that signs webhook notices (``INSURSHARE_NOTICE_KEY_FILE``)."""
        return Path(self.raw("INSURSHARE_NOTICE_KEY_FILE") or self.home / "secrets" / "notices.key")

    @property
    def portal_host(self) -> str:
        """The address the portal listens on (``INSURSHARE_PORTAL_HOST``)."""
        return self.raw("INSURSHARE_PORTAL_HOST") or setting("INSURSHARE_PORTAL_HOST").default or "127.0.0.1"

    @property
    def portal_port(self) -> int:
        """The portal's port (``INSURSHARE_PORTAL_PORT``)."""
        text = self.raw("INSURSHARE_PORTAL_PORT") or setting("INSURSHARE_PORTAL_PORT").default or "8300"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigError(f"INSURSHARE_PORTAL_PORT={text!r} is not a port.", hint="Write it like 8300.")
        return int(text)

    @property
    def portal_url(self) -> str:
        """The portal's external address (``INSURSHARE_PORTAL_URL``), without a trailing slash."""
        return (self.raw("INSURSHARE_PORTAL_URL") or f"http://{self.portal_host}:{self.portal_port}").rstrip("/")

    @property
    def portal_max_upload_bytes(self) -> int:
        """The largest upload the portal accepts (``INSURSHARE_PORTAL_MAX_UPLOAD``)."""
        return parse_bytes(self.raw("INSURSHARE_PORTAL_MAX_UPLOAD") or setting("INSURSHARE_PORTAL_MAX_UPLOAD").default
                           or "2GB", "INSURSHARE_PORTAL_MAX_UPLOAD")

    @property
    def earliest_period(self) -> Period:
        """The first period submissions may be for (``INSURSHARE_EARLIEST_PERIOD``, default 1980Q1).

        History of any age is welcome: the default reaches back before the oldest histories
        members have brought (a 1990s public data set of insurance groups), and a period before it
        is much likelier a typo (``1024Q4``) than a real quarter; an operator lowers it for older data.
        """
        text = self.raw("INSURSHARE_EARLIEST_PERIOD") or setting("INSURSHARE_EARLIEST_PERIOD").default
        try:
            return parse_period(text)
        except SubmissionError:
            raise ConfigError(f"INSURSHARE_EARLIEST_PERIOD={text!r} is not a period like 1980Q1 or 1980.",
                              hint="Set it to a quarter (YYYYQn) or a year (YYYY).") from None

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

