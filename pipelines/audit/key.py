"""The audit key: the HMAC key of the audit chain and of the anchor file, kept apart from the lake.

Whoever can write the lake (its catalog and data files) can edit an audit entry, but cannot
compute the entry's HMAC without this key, so the edit shows. The key lives beside the other
keys (``INSURSHARE_AUDIT_KEY_FILE``, default ``$INSURSHARE_HOME/secrets/audit.key``), never in
the lake, a log or a message; its id (``au-`` and its fingerprint) is in every keyed entry.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.core.secrets import EXACT, read_secret, write_new_secret


@dataclass(frozen=True)
class AuditKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:   # never print the secret
        return f"AuditKey(key_id={self.key_id!r}, secret=<hidden>)"

    def mac(self, text: str) -> str:
        """``<key id>:<HMAC-SHA-256 of text, hex>``: what a keyed entry or anchor line stores."""
        return f"{self.key_id}:{hmac.new(self.secret, text.encode('utf-8'), hashlib.sha256).hexdigest()}"

    def check(self, text: str, stored: str) -> bool:
        return hmac.compare_digest(self.mac(text), stored)


def key_file(settings: Settings) -> Path:
    return settings.audit_key_file


def anchor_file(settings: Settings) -> Path | str:
    """The append-only anchor of the chain's head and the data files' seals (outside the catalog):
    a file, or the ``s3://`` prefix of its line objects."""
    return settings.audit_anchor_file


def anchor_exists(settings: Settings) -> bool:
    """Whether the anchor has a line (a file that exists, or a line object under its prefix)."""
    where = anchor_file(settings)
    if isinstance(where, str):
        from pipelines import objects

        return objects.last_under(settings, where) is not None
    return where.exists()


def create_key(path: Path, key_id: str | None = None) -> AuditKey:
    """Write a new random audit key to ``path`` (mode 0600); refuse to overwrite one."""
    key_id, secret = write_new_secret(path, key_id, prefix="au", what="An audit key",
                                      hint="The audit log keyed with it could no longer be verified.")
    return AuditKey(key_id, secret)


def load_key(settings: Settings) -> AuditKey:
    path = key_file(settings)
    return AuditKey(*read_secret(
        path, EXACT, missing=f"No audit key at {path}.", missing_hint=_restore_hint(settings),
        malformed=f"The audit key in {path} is not in the form <key id>:<64 hex digits>.",
        malformed_hint=_restore_hint(settings)))


def load_or_create_key(settings: Settings) -> AuditKey:
    """The audit key; made on a lake's first audited write, refused once the lake was anchored.

    A lake whose anchor file exists was keyed with a key that is now missing: making a new
    one would hide the loss (every older entry would then fail to verify), so this refuses.
    """
    if key_file(settings).exists() or anchor_exists(settings):
        return load_key(settings)
    return create_key(key_file(settings))


def _restore_hint(settings: Settings) -> str:
    return (f"The audit log of this lake (anchor {anchor_file(settings)}) was keyed with it: restore the "
            "key file from backup (or point INSURSHARE_AUDIT_KEY_FILE at it). A new key cannot verify "
            "the entries made before; see `insurshare keygen --help` for a deliberate new start.")
