"""The platform's key files: one format, one writer, one reader.

A key file holds one line ``<key id>:<secret as hex>``. It is created with mode 0600 and never
over an existing file (a lost key is a loss to report, not a file to recreate silently). The
pseudonymisation key (``privacy.tokens``), the archive key (``archive``) and the audit key
(``audit.key``) all live in files of this form; ``pipelines.keys`` creates them and rotates
the pseudonymisation key.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from pipelines.errors import ConfigError

_KEY_ID = r"(?P<id>[A-Za-z0-9_-]{1,16})"
EXACT = re.compile(_KEY_ID + r":(?P<secret>[0-9a-fA-F]{64})")          # a 256-bit secret
AT_LEAST = re.compile(_KEY_ID + r":(?P<secret>[0-9a-fA-F]{64,256})")   # 256 to 1024 bits


def fingerprint_id(prefix: str, secret: bytes) -> str:
    """A key id unique to the key: ``<prefix>-<first 8 hex digits of a hash of the secret>``.

    Two keys made at different times never share an id (as ``k1`` did when a lost key was
    replaced by a new ``k1``), so a token, an archive file or an audit entry always names the
    key that made it. The hash is domain-separated and reveals nothing usable of the secret.

    >>> fingerprint_id("k", bytes(32))
    'k-11d7428b'
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


def parse_secret(text: str, form: re.Pattern[str], malformed: str, hint: str = "") -> tuple[str, bytes]:
    """``(key id, secret)`` of a key line; ``ConfigError(malformed, hint)`` if it is not one."""
    m = form.fullmatch(text.strip())
    if not m:
        raise ConfigError(malformed, hint=hint)
    return m["id"], bytes.fromhex(m["secret"])


def read_secret(path: Path, form: re.Pattern[str], *, missing: str, missing_hint: str,
                malformed: str, malformed_hint: str = "") -> tuple[str, bytes]:
    """``(key id, secret)`` from the key file at ``path``; a clear error when absent or malformed."""
    if not path.exists():
        raise ConfigError(missing, hint=missing_hint)
    return parse_secret(path.read_text(encoding="ascii", errors="replace"), form, malformed, malformed_hint)
