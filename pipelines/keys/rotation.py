"""Rotating the pseudonymisation key: every token in the lake is made again with the new key.

Tokens cannot be turned into new tokens without the identifiers, and the lake holds none; the
encrypted raw archive does. ``rotate`` re-reads the raw file of every submission that has rows
in the lake (published rows or quarantined ones), computes the new tokens of its identifier
columns by source row, and replaces them in one lake transaction, so readers see the lake
either all under the old key or all under the new one, and the same person or vehicle keeps
one token everywhere (linkage survives). The procedure, resumable at every step:

1. the new key is written to ``<key file>.next``;
2. one transaction re-tokenises the lake and appends a ``key-rotation`` audit entry;
3. ``<key file>.next`` replaces the key file and the old key is destroyed.

While ``<key file>.next`` exists, ``load_key`` refuses to work ("run `insurshare keys rotate
--resume`"), so no submission can be tokenised with a key that is on its way out; and a
publish checks, inside its transaction, that no rotation committed since it tokenised.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import archive, audit, store
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import ident, literal
from pipelines.errors import ConfigError
from pipelines.lake import Lake, write_transaction
from pipelines.privacy.tokens import (
    PseudonymKey,
    bind_key,
    create_key,
    latest_rotation,
    next_key_path,
    parse_key,
    token_sql,
)
from pipelines.staging import stage_file, staging_connection
from pipelines.workspace import claim

L = store.LAKE


@dataclass(frozen=True)
class Rotation:
    old_key_id: str
    new_key_id: str
    submissions: int
    rows: int
    quarantined: int


def rotate(settings: Settings, new_key_id: str | None = None, *, resume: bool = False,
           progress: Callable[[str], None] | None = None) -> Rotation:
    """Rotate the key (or finish an interrupted rotation with ``resume``)."""
    say = progress or (lambda _: None)
    key_path, nxt = Path(settings.key_file), next_key_path(settings)
    if settings.pseudonym_key:
        raise ConfigError("The key is given in INSURSHARE_PSEUDONYM_KEY; rotate it where it is kept.")
    old = parse_key(key_path.read_text(encoding="ascii"), str(key_path))
    if nxt.exists() and not resume:
        raise ConfigError(f"A rotation is already under way ({nxt} exists).",
                          hint="Finish it with `insurshare keys rotate --resume`.")
    new = parse_key(nxt.read_text(encoding="ascii"), str(nxt)) if nxt.exists() else \
        create_key(nxt, new_key_id)
    if new.key_id == old.key_id:
        raise ConfigError(f"The new key must have another id than {old.key_id!r}.")
    with Lake(settings, read_only=False, database=str(_work(settings) / "rotation.duckdb")) as lake:
        con = lake.con
        done = latest_rotation(con) == new.key_id
        result = Rotation(old.key_id, new.key_id, 0, 0, 0) if done else _retokenise(con, settings, old, new, say)
        shutil.rmtree(_work(settings), ignore_errors=True)
    os.replace(nxt, key_path)          # step 3: the new key becomes the key; the old one is gone
    say(f"key {new.key_id} is now the pseudonymisation key; key {old.key_id} destroyed")
    return result


def _work(settings: Settings) -> Path:
    path = settings.work_dir / "key-rotation"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _retokenise(con: duckdb.DuckDBPyConnection, settings: Settings, old: PseudonymKey,
                new: PseudonymKey, say: Callable[[str], None]) -> Rotation:
    subs = con.execute(f"""
        SELECT s.submission_id, s.dataset, s.contract_version, s.sha256, s.file_format, s.file_name
        FROM {L}.submissions s
        WHERE s.status = {Status.ACCEPTED.sql} OR EXISTS (SELECT 1 FROM {L}.quarantine q WHERE q.submission_id = s.submission_id)
        ORDER BY s.submission_id""").fetchall()
    con.execute("CREATE OR REPLACE TABLE new_tokens (submission_id VARCHAR, dataset VARCHAR, source_row BIGINT, "
                "tokens MAP(VARCHAR, VARCHAR), record VARCHAR)")
    for n, (sid, dataset, version, sha, fmt, name) in enumerate(subs, 1):
        _tokens_of(con, settings, new, sid, dataset, version, sha, fmt, name)
        say(f"[{n}/{len(subs)}] new tokens for {sid}")
    counts, _ = write_transaction(con, settings, lambda c: _apply(c, old, new, len(subs)),
                                        message=f"rotate pseudonymisation key {old.key_id} -> {new.key_id}")
    return Rotation(old.key_id, new.key_id, len(subs), *counts)


def _tokens_of(con: duckdb.DuckDBPyConnection, settings: Settings, new: PseudonymKey, sid: str, dataset: str,
               version: str, sha: str, fmt: str, name: str) -> None:
    """The new tokens of one submission's rows, computed in an isolated staging database from
    its raw file and appended to ``new_tokens`` (only tokens and the pseudonymised record leave it)."""
    contract = load_contract(dataset, version, settings.schemas_dir)
    with claim(settings, f"rotation-{sid}") as work, staging_connection(settings, work) as st:
        raw = archive.restore(settings, sha, work / f"raw.{fmt}")
        try:
            stage_file(st, raw, file_name=name, file_format=fmt, contract=contract, work_dir=work)
        finally:
            raw.unlink(missing_ok=True)
        bind_key(st, new)
        idents = contract.identifier_columns
        mapping = ", ".join(f"{literal(c)}: {token_sql('upper(' + ident(c) + ')')}" for c in idents)
        record = ", ".join(f"{ident(c.name)} := {token_sql('upper(' + ident(c.name) + ')')}" if c.identifier
                           else f"{ident(c.name)} := {ident(c.name)}" for c in contract.columns)
        rows = st.execute(f"SELECT ?::VARCHAR, ?::VARCHAR, __row, MAP {{{mapping}}}, "
                          f"CAST(to_json(struct_pack({record})) AS VARCHAR) FROM raw", [sid, dataset]).to_arrow_table()
    con.register("_new_tokens", rows)
    try:
        con.execute("INSERT INTO new_tokens SELECT * FROM _new_tokens")
    finally:
        con.unregister("_new_tokens")


def _apply(con: duckdb.DuckDBPyConnection, old: PseudonymKey, new: PseudonymKey,
           submissions: int) -> tuple[int, int]:
    rows = 0
    for dataset in ("policy", "claim"):
        idents = load_contract(dataset).identifier_columns
        sets = ", ".join(f"{ident(c)} = t.tokens[{literal(c)}]" for c in idents)
        rows += con.execute(
            f"UPDATE {L}.{dataset} SET {sets} FROM new_tokens t WHERE t.dataset = {literal(dataset)} "
            f"AND {L}.{dataset}.submission_id = t.submission_id AND {L}.{dataset}.source_row = t.source_row"
        ).fetchone()[0]
    quarantined = con.execute(
        f"UPDATE {L}.quarantine SET record = t.record FROM new_tokens t "
        f"WHERE {L}.quarantine.submission_id = t.submission_id AND {L}.quarantine.source_row = t.source_row"
    ).fetchone()[0]
    audit.append(con, "key-rotation", f"{old.key_id}->{new.key_id}",
                 {"old_key_id": old.key_id, "new_key_id": new.key_id, "submissions": submissions,
                  "rows": rows, "quarantined": quarantined})
    return rows, quarantined
