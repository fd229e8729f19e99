"""Keyed-hash pseudonymisation: identifiers become HMAC-SHA-256 tokens.

The key never enters SQL text (which DuckDB may echo in an error message): it is bound as a
parameter into two session variables, the HMAC inner and outer pads, and the token
expression reads them with ``getvariable``. A token names the key that made it:
``<key id>:<64 hex digits>``, so that a rotation can tell old tokens from new.

Key file format: one line ``<key id>:<secret as hex>``, at least 32 bytes of secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.core.secrets import AT_LEAST, parse_secret, write_new_secret
from pipelines.errors import ConfigError, LakeBusy
from pipelines.privacy.checkdigits import normalise
from pipelines.store import LAKE

_BLOCK = 64


@dataclass(frozen=True)
class PseudonymKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"PseudonymKey(key_id={self.key_id!r}, secret=<hidden>)"

    def token(self, value: str | None) -> str | None:
        """The token of one identifier, computed in Python (the reference for the SQL)."""
        if value is None or not normalise(value):
            return None
        digest = hmac.new(self.secret, normalise(value).encode("utf-8"), hashlib.sha256)
        return f"{self.key_id}:{digest.hexdigest()}"

    def _pads(self) -> tuple[bytes, bytes]:
        k = self.secret if len(self.secret) <= _BLOCK else hashlib.sha256(self.secret).digest()
        k = k.ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def parse_key(text: str, where: str) -> PseudonymKey:
    return PseudonymKey(*parse_secret(
        text, AT_LEAST, f"The pseudonymisation key in {where} is not in the form <key id>:<hex secret of 32+ bytes>.",
        "Create one with `insurshare keygen`."))


def load_key(settings: Settings) -> PseudonymKey:
    """The key from ``INSURSHARE_PSEUDONYM_KEY`` or the key file; a clear error when absent."""
    if settings.pseudonym_key:
        return parse_key(settings.pseudonym_key, "INSURSHARE_PSEUDONYM_KEY")
    path = Path(settings.key_file)
    if next_key_path(settings).exists():
        raise ConfigError(f"A rotation of the pseudonymisation key is under way ({path}.next exists).",
                          hint="Finish it with `insurshare keys rotate --resume` before processing submissions.")
    if not path.exists():
        raise ConfigError(
            f"No pseudonymisation key at {path}.",
            hint="Create one with `insurshare keygen` (or set INSURSHARE_KEY_FILE or "
                 "INSURSHARE_PSEUDONYM_KEY); keep it out of the repository and back it up.")
    return parse_key(path.read_text(encoding="ascii", errors="replace"), str(path))


def next_key_path(settings: Settings) -> Path:
    """Where a rotation keeps the new key until it has re-tokenised the lake."""
    return Path(str(settings.key_file) + ".next")


def latest_rotation(con: duckdb.DuckDBPyConnection) -> str | None:
    """The key id the last committed rotation switched to (None if the key never rotated)."""
    row = con.execute(f"SELECT json_extract_string(details, '$.new_key_id') FROM {LAKE}.audit_log "
                      "WHERE kind = 'key-rotation' ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None


def check_key_current(con: duckdb.DuckDBPyConnection, key_id: str) -> None:
    """Inside a publishing transaction: refuse tokens made with a key rotated away meanwhile."""
    current = latest_rotation(con)
    if current is not None and current != key_id:
        raise LakeBusy(f"The pseudonymisation key was rotated to {current} while this submission was "
                       f"tokenised with {key_id}; it will be processed again.")


def create_key(path: Path, key_id: str | None = None) -> PseudonymKey:
    """Write a new random key to ``path`` (mode 0600); refuse to overwrite an existing key.

    Its id is ``k-`` and the key's fingerprint unless one is given.
    """
    key_id, secret = write_new_secret(path, key_id, prefix="k", what="A key",
                                      hint="Tokens made with it would no longer link; rotate instead.")
    return PseudonymKey(key_id, secret)




def bind_key(con: duckdb.DuckDBPyConnection, key: PseudonymKey) -> None:
    """Put the HMAC pads of ``key`` into session variables of ``con`` (bound, not in SQL text)."""
    ipad, opad = key._pads()
    con.execute("SET VARIABLE insurshare_ipad = ?::BLOB", [ipad])
    con.execute("SET VARIABLE insurshare_opad = ?::BLOB", [opad])
    con.execute("SET VARIABLE insurshare_key_id = ?", [key.key_id])


def token_sql(expr: str) -> str:
    """SQL for the token of ``expr`` (already normalised) with the key bound by ``bind_key``."""
    inner = f"unhex(sha256(getvariable('insurshare_ipad') || encode({expr})))"
    return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE getvariable('insurshare_key_id') || ':' || "
            f"sha256(getvariable('insurshare_opad') || {inner}) END")
