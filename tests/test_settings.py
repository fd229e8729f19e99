"""The settings registry (``pipelines.config.SETTINGS``): every ``INSURSHARE_*`` variable the code
reads is registered and documented in README's table, and ``Settings.from_env`` reads each one
with its default (as datasette's ``test_docs.py`` does for its ``SETTINGS``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from pipelines.cli import main
from pipelines.config import PROJECT_ROOT, SETTINGS, Settings, setting
from pipelines.errors import ConfigError
from pipelines.faults import InjectedFault, checkpoint

SOURCE_DIRS = ("pipelines", "dags", "benchmarks", "scripts")
NAME = re.compile(r"\bINSURSHARE_[A-Z0-9_]*[A-Z0-9]\b")
# Read by the tests only (never by the platform), so not settings: INSURSHARE_DOCS_SCREENSHOT
# (tests/reports/test_browser.py writes the README's dashboard screenshot when it is set).
TEST_ONLY = {"INSURSHARE_DOCS_SCREENSHOT"}


def _sources() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (PROJECT_ROOT / d).rglob("*.py"))


def _readme_table() -> dict[str, tuple[str, str]]:
    """README's configuration table: variable -> (default, meaning), as a reader sees it."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.fullmatch(r"\| `(INSURSHARE_[A-Z0-9_]+)` \| (.*?) \| (.*) \|", line)
        if m:
            rows[m[1]] = (m[2], m[3])
    return rows


def test_the_registry_holds_each_variable_once_and_each_field_once():
    names = [s.env for s in SETTINGS]
    fields = [s.attr for s in SETTINGS if s.parse]
    assert len(names) == len(set(names)) and len(fields) == len(set(fields))
    assert all(NAME.fullmatch(n) for n in names)
    assert set(fields) == {"home", "catalog", "data_path", "key_file", "gx_max_rows", "gx_at_ingest", "duckdb_memory_limit",
                           "query_timeout", "query_memory", "query_temp", "storage", "s3_attempts"}


def test_every_setting_is_documented_in_the_readme_table():
    table = _readme_table()
    assert list(table) == [s.env for s in SETTINGS]   # each once, in the registry's order
    for s in SETTINGS:
        default, meaning = table[s.env]
        assert default == s.default_markdown and meaning == s.meaning.replace("|", "\\|"), s.env
        assert meaning.strip(), f"{s.env} has no meaning in README"


def test_every_insurshare_variable_in_the_code_is_a_setting():
    """A regex walk over the platform's source (code, docstrings and messages alike)."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(PROJECT_ROOT)))
    unknown = {name: sorted(where) for name, where in found.items() if name not in {s.env for s in SETTINGS}}
    assert unknown == {}, "add these to pipelines.config.SETTINGS (and run `insurshare docs`)"
    assert not TEST_ONLY & set(found), "a variable the platform reads is a setting, not test-only"
    # the walk does see them: the names the CLI, the DAGs, the archive and the faults read
    assert {"INSURSHARE_DISCLOSURE", "INSURSHARE_INGEST_SCHEDULE", "INSURSHARE_ARCHIVE_KEY_FILE",
            "INSURSHARE_FAULTS", "INSURSHARE_HOME"} <= set(found)


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module reads an ``INSURSHARE_*`` variable itself: ``x.get("INSURSHARE_…")``,
    ``x["INSURSHARE_…"]`` (not as an assignment target) or ``os.getenv("INSURSHARE_…")``."""
    def named(node: ast.AST | None) -> str | None:
        is_name = isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value)
        return node.value if is_name else None

    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "getenv") and node.args and named(node.args[0])):
            out.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and named(node.slice):
            out.append((node.lineno, node.slice.value))
    return out


def test_no_module_but_the_registry_reads_an_insurshare_variable_itself():
    """Outside ``pipelines/config.py`` a setting is read through ``Settings`` (a field, a property
    or ``settings.raw``) or ``setting(name).read(environ)``, never with ``environ.get`` or ``[...]``."""
    direct = {}
    for path in _sources():
        if path == PROJECT_ROOT / "pipelines" / "config.py":
            continue
        reads = _reads(ast.parse(path.read_text(encoding="utf-8")))
        if reads:
            direct[str(path.relative_to(PROJECT_ROOT))] = reads
    assert direct == {}
    # the walk finds such a read when there is one
    assert _reads(ast.parse('import os\nos.environ.get("INSURSHARE_HOME")\nenv["INSURSHARE_FAULTS"]\n'
                            'env["INSURSHARE_KEY_FILE"] = "x"')) == [(2, "INSURSHARE_HOME"), (3, "INSURSHARE_FAULTS")]


def test_every_setting_that_is_not_a_field_is_read_somewhere():
    """A registered variable that nothing reads would be documented but do nothing."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in _sources())
    for s in SETTINGS:
        if not s.parse:
            assert re.search(rf"""(raw|setting)\("{s.env}"\)""", text), f"nothing reads {s.env}"


# ---- Settings.from_env -----------------------------------------------------------------------

FIELD_VALUES = {   # variable -> (text, the value from_env makes of it)
    "INSURSHARE_HOME": ("/srv/insurshare", Path("/srv/insurshare")),
    "INSURSHARE_CATALOG": ("postgres:dbname=lake host=db", "postgres:dbname=lake host=db"),
    "INSURSHARE_STORAGE": ("s3://lake/insurshare/", "s3://lake/insurshare"),
    "INSURSHARE_DATA_PATH": ("/srv/lake/files", Path("/srv/lake/files")),
    "INSURSHARE_S3_ATTEMPTS": ("3", 3),
    "INSURSHARE_KEY_FILE": ("/srv/keys/pseudonym.key", Path("/srv/keys/pseudonym.key")),
    "INSURSHARE_GX_MAX_ROWS": ("25", 25),
    "INSURSHARE_GX_AT_INGEST": ("on", True),
    "INSURSHARE_DUCKDB_MEMORY": ("1500MB", "1500MB"),
    "INSURSHARE_QUERY_TIMEOUT": ("2.5", 2.5),
    "INSURSHARE_QUERY_MEMORY": ("700MB", "700MB"),
    "INSURSHARE_QUERY_TEMP": ("1GiB", "1GiB"),
}


def test_every_field_setting_has_a_case_here():
    assert set(FIELD_VALUES) == {s.env for s in SETTINGS if s.parse}


@pytest.mark.parametrize("var", sorted(FIELD_VALUES))
def test_from_env_reads_each_setting_from_its_variable(tmp_path, var):
    text, value = FIELD_VALUES[var]
    base = {"INSURSHARE_HOME": str(tmp_path)}
    settings = Settings.from_env({**base, var: text})
    assert getattr(settings, setting(var).attr) == value
    # and from nowhere else: every other field keeps its default
    plain = Settings.from_env(base)
    for s in SETTINGS:
        moved = (var == "INSURSHARE_HOME" and s.shown) or (var == "INSURSHARE_STORAGE" and s.env == "INSURSHARE_DATA_PATH")
        if s.parse and s.env != var and not moved:   # paths under home (and the lake's under storage) move
            assert getattr(settings, s.attr) == getattr(plain, s.attr), s.env


def test_from_env_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    home = tmp_path / "data"
    assert (s.home, s.catalog, s.data_path, s.key_file) == (
        home, str(home / "lake" / "catalog.sqlite"), home / "lake" / "files", home / "secrets" / "pseudonym.key")
    assert (s.gx_max_rows, s.gx_at_ingest, s.duckdb_memory_limit, s.duckdb_threads) == (1_000_000, False, "2GB", 0)
    assert (s.query_timeout, s.query_memory, s.query_temp) == (300.0, "2GB", "4GB")
    assert (s.archive_key_file, s.audit_key_file, s.audit_anchor_file, s.pseudonym_key) == (
        home / "secrets" / "archive.key", home / "secrets" / "audit.key", home / "audit" / "anchor.jsonl", None)
    assert Settings.from_env({}) == Settings(home="data")   # the dataclass's defaults are the registry's


def test_an_empty_variable_takes_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({var: "" for var in (x.env for x in SETTINGS)})
    assert s == Settings(home=tmp_path / "data")
    assert (s.pseudonym_key, s.raw("INSURSHARE_FAULTS"), s.archive_key_file) == (
        None, None, tmp_path / "data" / "secrets" / "archive.key")


def test_overrides_win_over_the_environment_and_none_is_no_override(tmp_path):
    s = Settings.from_env({"INSURSHARE_HOME": "/elsewhere", "INSURSHARE_GX_MAX_ROWS": "5"},
                          home=tmp_path, gx_max_rows=None)
    assert (s.home, s.gx_max_rows) == (tmp_path, 5)


@pytest.mark.parametrize("var, attr", [
    ("INSURSHARE_ARCHIVE_KEY_FILE", "archive_key_file"),
    ("INSURSHARE_AUDIT_KEY_FILE", "audit_key_file"),
    ("INSURSHARE_AUDIT_ANCHOR", "audit_anchor_file"),
])
def test_key_and_anchor_paths_come_from_their_variables(tmp_path, var, attr):
    assert setting(var).attr == attr
    given = tmp_path / "elsewhere" / "k"
    assert getattr(Settings.from_env({"INSURSHARE_HOME": str(tmp_path), var: str(given)}), attr) == given


def test_the_anchor_follows_the_storage_onto_s3_unless_it_is_set(tmp_path):
    on_s3 = {"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_STORAGE": "s3://b/p"}
    assert Settings.from_env(on_s3).audit_anchor_file == "s3://b/p/audit/anchor"
    assert Settings.from_env({**on_s3, "INSURSHARE_AUDIT_ANCHOR": "s3://worm/anchor/"}).audit_anchor_file == "s3://worm/anchor"
    assert Settings.from_env({**on_s3, "INSURSHARE_AUDIT_ANCHOR": "/var/a.jsonl"}).audit_anchor_file == Path("/var/a.jsonl")


def test_a_default_under_the_home_is_what_the_readme_says(tmp_path):
    settings = Settings(home=tmp_path)
    under_home = [s for s in SETTINGS if s.shown.startswith("`$INSURSHARE_HOME/")]
    assert len(under_home) == 8
    for s in under_home:
        assert str(getattr(settings, s.attr)) == s.default_text.replace("$INSURSHARE_HOME", str(tmp_path)), s.env


def test_pseudonym_key_is_read_inline():
    assert Settings.from_env({"INSURSHARE_PSEUDONYM_KEY": "k1:" + "ab" * 32}).pseudonym_key == "k1:" + "ab" * 32


@pytest.mark.parametrize("var, text, message", [
    ("INSURSHARE_QUERY_TIMEOUT", "0", "INSURSHARE_QUERY_TIMEOUT='0' is not a number of seconds."),
    ("INSURSHARE_QUERY_TIMEOUT", "soon", "INSURSHARE_QUERY_TIMEOUT='soon' is not a number of seconds."),
    ("INSURSHARE_GX_AT_INGEST", "yes", "INSURSHARE_GX_AT_INGEST='yes' is neither on nor off."),
])
def test_a_bad_value_is_refused_with_its_variable_named(var, text, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: text})
    assert str(info.value).startswith(message)


def test_gx_max_rows_is_parsed_as_an_integer():
    with pytest.raises(ValueError, match="invalid literal for int"):
        Settings.from_env({"INSURSHARE_GX_MAX_ROWS": "a million"})


def test_sizes_are_checked_when_used_with_their_variable_named(tmp_path):
    s = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_QUERY_MEMORY": "lots"})
    assert s.query_temp_bytes == 4 * 10**9
    with pytest.raises(ConfigError, match=r"INSURSHARE_QUERY_MEMORY='lots' is not a size\."):
        _ = s.query_memory_bytes


def test_raw_refuses_a_variable_that_is_not_a_setting(tmp_path):
    settings = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_TYPO": "x"})
    with pytest.raises(KeyError, match="INSURSHARE_TYPO is not a setting"):
        settings.raw("INSURSHARE_TYPO")


def test_setting_read_gives_the_default_when_unset_or_empty():
    schedule = setting("INSURSHARE_INGEST_SCHEDULE")
    assert (schedule.read({}), schedule.read({"INSURSHARE_INGEST_SCHEDULE": ""})) == ("*/15 * * * *",) * 2
    assert schedule.read({"INSURSHARE_INGEST_SCHEDULE": "none"}) == "none"
    assert setting("INSURSHARE_DISCLOSURE").read({}) is None   # the profile's own default applies


def test_faults_are_read_from_the_settings(tmp_path):
    quiet = Settings.from_env({"INSURSHARE_HOME": str(tmp_path)})
    armed = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_FAULTS": "error@after-staging:S1"})
    checkpoint(quiet, "after-staging", "S1")
    checkpoint(armed, "after-staging", "S2")
    with pytest.raises(InjectedFault, match="after-staging"):
        checkpoint(armed, "after-staging", "S1")


# ---- the CLI's options -----------------------------------------------------------------------

def _options_with_a_variable():
    found = []

    def walk(cmd: click.Command, path: str) -> None:
        found.extend((path, p) for p in cmd.params if isinstance(p, click.Option) and p.envvar)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(main, "insurshare")
    return found


def test_every_cli_option_that_reads_a_variable_reads_a_setting_and_says_its_default():
    options = _options_with_a_variable()
    assert {p.envvar for _, p in options} == {"INSURSHARE_HOME", "INSURSHARE_DISCLOSURE",
                                              "INSURSHARE_DISCLOSURE_MIN_MEMBERS", "INSURSHARE_DISCLOSURE_MAX_SHARE"}
    for path, p in options:
        s = setting(p.envvar)
        assert p.help.endswith(f"[env {s.env}; default: {s.default_text}]."), (path, p.name)
    home = next(p for _, p in options if p.name == "home")
    assert home.help.endswith("[env INSURSHARE_HOME; default: ./data].")


def test_storage_puts_the_lake_files_under_its_prefix_and_refuses_what_is_not_s3(tmp_path):
    s = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_STORAGE": "s3://bucket/platform/"})
    assert s.storage == "s3://bucket/platform" and s.data_is_remote
    assert s.data_path == "s3://bucket/platform/lake/files"
    assert not Settings(home=tmp_path).data_is_remote
    with pytest.raises(ConfigError, match="is not an S3 location"):
        Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_STORAGE": "/mnt/share"})
