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
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.errors import ConfigError
from pipelines.privacy.checkdigits import normalise

_KEY_RE = re.compile(r"(?P<id>[A-Za-z0-9_-]{1,16}):(?P<secret>[0-9a-fA-F]{64,256})")
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
    m = _KEY_RE.fullmatch(text.strip())
    if not m:
        raise ConfigError(
            f"The pseudonymisation key in {where} is not in the form <key id>:<hex secret of 32+ bytes>.",
            hint="Create one with `insurshare keygen`.")
    return PseudonymKey(m["id"], bytes.fromhex(m["secret"]))


def load_key(settings: Settings) -> PseudonymKey:
    """The key from ``INSURSHARE_PSEUDONYM_KEY`` or the key file; a clear error when absent."""
    if settings.pseudonym_key:
        return parse_key(settings.pseudonym_key, "INSURSHARE_PSEUDONYM_KEY")
    path = Path(settings.key_file)
    if Path(str(path) + ".next").exists():
        raise ConfigError(f"A rotation of the pseudonymisation key is under way ({path}.next exists).",
                          hint="Finish it with `insurshare keys rotate --resume` before processing submissions.")
    if not path.exists():
        raise ConfigError(
            f"No pseudonymisation key at {path}.",
            hint="Create one with `insurshare keygen` (or set INSURSHARE_KEY_FILE or "
                 "INSURSHARE_PSEUDONYM_KEY); keep it out of the repository and back it up.")
    return parse_key(path.read_text(encoding="ascii", errors="replace"), str(path))


def create_key(path: Path, key_id: str | None = None) -> PseudonymKey:
    """Write a new random key to ``path`` (mode 0600); refuse to overwrite an existing key.

    Its id is ``k-`` and the key's fingerprint unless one is given.
    """
    key_id, secret = write_new_secret(path, key_id, prefix="k", what="A key",
                                      hint="Tokens made with it would no longer link; rotate instead.")
    return PseudonymKey(key_id, secret)


def fingerprint_id(prefix: str, secret: bytes) -> str:
    """A key id unique to the key: ``<prefix>-<first 8 hex digits of a hash of the secret>``.

    Two keys made at different times never share an id (as ``k1`` did when a lost key was
    replaced by a new ``k1``), so a token, an archive file or an audit entry always names the
    key that made it. The hash is domain-separated and reveals nothing usable of the secret.
    """
    return f"{prefix}-{hashlib.sha256(b'insurshare key id:' + secret).hexdigest()[:8]}"


def write_new_secret(path: Path, key_id: str | None, *, prefix: str, what: str, hint: str) -> tuple[str, bytes]:
    """Write ``<key_id>:<64 hex digits>`` of a new random 256-bit secret to ``path``, created
    with mode 0600 and never over an existing file (``what`` and ``hint`` say why not); return
    the key id (the fingerprint id with ``prefix`` unless ``key_id`` is given) and the secret."""
    if path.exists():
        raise ConfigError(f"{what} already exists at {path}; refusing to overwrite it.", hint=hint)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    key_id = key_id or fingerprint_id(prefix, secret)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"{key_id}:{secret.hex()}\n")
    return key_id, secret


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
