"""The platform's two secrets: the pseudonymisation key (HMAC) and the archive key (AES-GCM).

Both live outside the repository; ``create_keys`` makes whichever is missing. Neither is ever
written to a log, the lake, a report or an error message.
"""

from __future__ import annotations

from pathlib import Path

from pipelines import archive
from pipelines.config import Settings
from pipelines.privacy import tokens


def create_keys(settings: Settings) -> list[str]:
    """Create the missing keys; return a line per key created."""
    made = []
    if not settings.pseudonym_key and not Path(settings.key_file).exists():
        key = tokens.create_key(Path(settings.key_file))
        made.append(f"pseudonymisation key {key.key_id} at {settings.key_file}")
    path = archive.key_file(settings)
    if not path.exists():
        key = archive.create_key(path)
        made.append(f"archive key {key.key_id} at {path}")
    return made
