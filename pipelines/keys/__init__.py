"""The platform's three secrets: the pseudonymisation key (HMAC), the archive key (AES-GCM) and
the audit key (HMAC of the audit chain and its anchor).

All live outside the repository and the lake; ``create_keys`` makes whichever is missing, but
never silently replaces a lost key that the lake or the archive still depends on: a new key
would get a new id (ids are fingerprints), old archives would no longer open, new tokens would
no longer link to old ones and the audit log would no longer verify. It then refuses and says
how to restore the key from backup; ``force_new`` is for a deliberate new key. No key is ever
written to a log, the lake, a report or an error message.

Key management lives in this package: ``create_keys`` here, the pseudonymisation key's
rotation in ``pipelines.keys.rotation``. The key files' format, writer and reader are
``pipelines.core.secrets``; each key's use stays with its stage (``privacy.tokens`` makes
tokens, ``archive`` encrypts, ``audit.key`` keys the chain).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines import archive
from pipelines.audit import key as audit_key
from pipelines.config import Settings
from pipelines.core.sql import ident
from pipelines.errors import ConfigError
from pipelines.privacy import tokens

_FORCE = "If the key is lost for good, `insurshare keygen --force-new` makes a new one"


def create_keys(settings: Settings, *, force_new: bool = False) -> list[str]:
    """Create the missing keys; return a line per key created."""
    made = []
    if not settings.pseudonym_key and not Path(settings.key_file).exists():
        if not force_new:
            _refuse_if_used(settings, "pseudonymisation key", Path(settings.key_file), _token_key_ids(settings),
                            "Tokens made with a new key would never link to the lake's tokens.",
                            f"{_FORCE}; then `insurshare keys rotate` re-tokenises the lake from the raw archive.")
        key = tokens.create_key(Path(settings.key_file))
        made.append(f"pseudonymisation key {key.key_id} at {settings.key_file}")
    path = archive.key_file(settings)
    if not path.exists():
        if not force_new:
            _refuse_if_used(settings, "archive key", path, archive.key_ids_in_archive(settings),
                            "The archived files cannot be read without it.",
                            f"{_FORCE} for new files; the files of the old key stay unreadable.")
        key = archive.create_key(path)
        made.append(f"archive key {key.key_id} at {path}")
    path = audit_key.key_file(settings)
    if not path.exists():
        if not force_new:
            _refuse_if_used(settings, "audit key", path, _audit_key_ids(settings),
                            "The audit log and its anchor cannot be verified without it.",
                            f"{_FORCE}; every entry keyed before will then fail `insurshare audit verify`.")
        key = audit_key.create_key(path)
        made.append(f"audit key {key.key_id} at {path}")
    return made


def _refuse_if_used(settings: Settings, what: str, path: Path, used: set[str], why: str, force: str) -> None:
    if used:
        raise ConfigError(
            f"No {what} at {path}, but the platform at {settings.home} holds data made with key "
            f"{', '.join(sorted(used))}. {why}",
            hint=f"Restore the key file from backup to {path} (or point the key's environment variable at it). "
                 f"{force}")


def _lake(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    from pipelines import store

    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return None
    try:
        return store.connect(settings, read_only=True)
    except ConfigError:
        return None
    except duckdb.Error as exc:   # a PostgreSQL catalog that holds no lake yet
        if "does not exist" in str(exc):
            return None
        raise


def _token_key_ids(settings: Settings) -> set[str]:
    """Ids of the keys that made the lake's tokens ("unknown" for a lake with submissions but none found)."""
    from pipelines import store
    from pipelines.contracts import datasets, load_contract

    con = _lake(settings)
    if con is None:
        return set()
    try:
        tables, found = store.lake_tables(con), set()
        for dataset in datasets(settings.schemas_dir):
            contract = load_contract(dataset, None, settings.schemas_dir)
            for column in contract.identifier_columns if dataset in tables else ():
                found |= {r[0] for r in con.execute(
                    f"SELECT DISTINCT split_part({ident(column)}, ':', 1) FROM (SELECT {ident(column)} "
                    f"FROM {store.LAKE}.{ident(dataset)} WHERE {ident(column)} LIKE '%:%' LIMIT 100000)").fetchall()}
        if not found and "submissions" in tables and con.execute(
                f"SELECT count(*) FROM {store.LAKE}.submissions").fetchone()[0]:
            found.add("unknown (the lake holds submissions)")
        return found
    finally:
        con.close()


def _audit_key_ids(settings: Settings) -> set[str]:
    """Ids of the audit keys of the lake's keyed entries and anchor lines."""
    from pipelines import store
    from pipelines.audit.anchor import read_lines

    found = {line["mac"].split(":", 1)[0] for line in read_lines(settings) if isinstance(line.get("mac"), str)}
    con = _lake(settings)
    if con is not None:
        try:
            if "audit_log" in store.lake_tables(con):
                found |= {r[0] for r in con.execute(
                    f"SELECT DISTINCT split_part(entry_sha256, ':', 1) FROM {store.LAKE}.audit_log "
                    "WHERE entry_sha256 LIKE '%:%'").fetchall()}
        finally:
            con.close()
    if not found and audit_key.anchor_exists(settings):
        found.add("unknown (the anchor file exists)")
    return found
